"""The Xtime checks over frames: what each result says, without running Dagster."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from dealer_assets.xtime.defs.checks import enrollment_checks, opcode_check
from dealer_assets.xtime.domain.enrollment import enrollment_states
from dealer_assets.xtime.settings import settings_from_document
from dealer_assets_tests.xtime.support import NOW, settings_document


def test_a_late_opt_in_fails_the_invitation_check_saying_a_new_code_is_needed():
    doc = settings_document("http://127.0.0.1:1")
    doc["xtime"]["dealerships"]["d300"]["invitation"] = {
        "code": "CC33",
        "issued_at": NOW - timedelta(hours=110),
        "completed_at": NOW - timedelta(hours=10),
    }
    expired, confirmation = enrollment_checks(enrollment_states(settings_from_document(doc, "t.yaml"), NOW))
    assert not expired.passed
    assert expired.description == (
        "d300: invitation CC33 issued at 2026-11-21T22:00:00Z expired at 2026-11-24T22:00:00Z; the opt-in "
        "completed at 2026-11-26T02:00:00Z came too late: a new invitation code is needed"
    )
    assert confirmation.passed, "a late opt-in awaits a new code, not Xtime's confirmation"


def test_an_opcode_naming_two_services_fails_the_check_naming_both():
    settings = settings_from_document(settings_document("http://127.0.0.1:1"), "t.yaml")
    services = pl.DataFrame(
        {
            "dealership": ["d100", "d100", "d200", "d300"],
            "opcode": ["TUM", "TUM2", "DCAPPT", "TUM"],
            "name": ["Tell Us More", " tell us more", "DataClover Appt", "Tell Us More"],
        }
    )
    result = opcode_check(enrollment_states(settings, NOW), services)
    assert not result.passed
    assert result.description == (
        "d100: opcode 'Tell Us More' names 2 services in its Xtime catalog: 'Tell Us More' (TUM), "
        "' tell us more' (TUM2)"
    )
    by_name = opcode_check(enrollment_states(settings, NOW), services.filter(pl.col("opcode") != "TUM2"))
    assert by_name.passed and by_name.description == "every dealership's opcode is published in its catalog"
