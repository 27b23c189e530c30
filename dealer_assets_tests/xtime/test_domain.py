"""The pure rules: request lines, service-request requests, enrollment against a given clock, opcodes, slots,
the plan."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from dealer_assets.xtime.domain.booking import ATTEMPT_SCHEMA, plan, readiness
from dealer_assets.xtime.domain.enrollment import enrollment_states
from dealer_assets.xtime.domain.opcodes import resolve_opcodes
from dealer_assets.xtime.domain.requests import (
    EXISTING_SCHEMA,
    LINES_SCHEMA,
    SERVICE_REQUEST_SCHEMA,
    parse_request_lines,
    requests_from_service_requests,
)
from dealer_assets.xtime.domain.slots import SLOT_SCHEMA, choose_slot
from dealer_assets.xtime.settings import settings_from_document
from dealer_assets_tests.xtime.support import settings_document

SETTINGS = settings_from_document(settings_document("http://127.0.0.1:1"), "t.yaml")
GOOD = {
    "request_id": "r1",
    "dealership": "d100",
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann@example.com",
    "phone": "+1 (555) 201-3344",
    "earliest": "2026-12-01T09:30",
}


def lines(*rows: object, name: str = "in.jsonl") -> pl.DataFrame:
    text = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    return pl.DataFrame(
        {"source_file": name, "line_number": range(1, len(text) + 1), "line": text}, schema=LINES_SCHEMA
    )


NO_EXISTING = pl.DataFrame(schema=EXISTING_SCHEMA)


def by_key(frame: pl.DataFrame) -> dict[str, dict]:
    return {r["request_id"]: r for r in frame.to_dicts()}


def test_good_lines_default_the_window_and_normalize_the_vin():
    out = by_key(
        parse_request_lines(
            lines(
                GOOD,
                GOOD
                | {
                    "request_id": "r2",
                    "vin": "1ftfw1e5-0nfa 00001",
                    "latest": "2026-12-02 08:00:15",
                    "comment": " brakes ",
                },
            ),
            SETTINGS,
            NO_EXISTING,
        )
    )
    assert (out["r1"]["status"], out["r1"]["earliest"], out["r1"]["latest"], out["r1"]["reason"]) == (
        "pending",
        "2026-12-01T09:30:00",
        "2026-12-08T09:30:00",
        None,
    )
    assert (out["r2"]["vin"], out["r2"]["latest"], out["r2"]["comment"]) == (
        "1FTFW1E50NFA00001",
        "2026-12-02T08:00:15",
        "brakes",
    )
    assert out["r1"]["origin"] == "file" and out["r1"]["line_number"] == 1


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{oops", "not valid JSON (Expecting property name enclosed in double quotes)"),
        ("[1, 2]", "not a JSON object"),
        (GOOD | {"colour": "red"}, "unknown key 'colour'"),
        (GOOD | {"phone": 5551234567}, "phone must be a string; phone is required"),
        ({k: v for k, v in GOOD.items() if k != "email"}, "email is required"),
        (GOOD | {"email": "ann at example"}, "email is not an address"),
        (GOOD | {"phone": "call me"}, "phone is not a number"),
        (GOOD | {"dealership": "d999"}, "dealership 'd999' is not configured"),
        (GOOD | {"vin": "1FTFW1E50NFA0000I"}, "vin is not 17 characters of A-H J-N P R-Z 0-9"),
        (GOOD | {"earliest": "2026-12-01T09:30-08:00"}, "earliest must be a local time without offset"),
        (GOOD | {"latest": "2026-12-01T09:30"}, "latest is not after earliest"),
        (GOOD | {"request_id": "sr-123"}, "request ids starting with 'sr-' are reserved"),
        (GOOD | {"request_id": " "}, "request_id is required"),
    ],
)
def test_a_bad_line_is_kept_with_its_reason_and_the_rest_flows(line, reason):
    out = parse_request_lines(lines(GOOD | {"request_id": "ok"}, line), SETTINGS, NO_EXISTING)
    bad = out.filter(pl.col("status") == "invalid").row(0, named=True)
    assert bad["request_id"] == "in.jsonl#2"
    assert bad["reason"].startswith(reason)
    assert out.filter(pl.col("status") == "pending")["request_id"].to_list() == ["ok"]


def test_duplicates_within_a_batch_and_against_what_is_stored():
    existing = pl.DataFrame(
        {"request_id": ["r1"], "source_file": ["old.jsonl"], "line_number": [4]}, schema=EXISTING_SCHEMA
    )
    out = by_key(
        parse_request_lines(
            lines(GOOD, GOOD | {"request_id": "r2"}, GOOD | {"request_id": "r2"}), SETTINGS, existing
        )
    )
    assert out["in.jsonl#1"]["reason"] == "duplicate request_id 'r1' (already received)"
    assert out["in.jsonl#3"]["reason"] == "duplicate request_id 'r2' (earlier in this batch)"
    assert out["r2"]["status"] == "pending"


def test_a_reread_of_stored_lines_adds_nothing():
    existing = pl.DataFrame(
        {"request_id": ["r1", "in.jsonl#2"], "source_file": ["in.jsonl"] * 2, "line_number": [1, 2]},
        schema=EXISTING_SCHEMA,
    )
    assert parse_request_lines(lines(GOOD, "bad"), SETTINGS, existing).is_empty()


def test_service_requests_of_listed_types_at_linked_dealerships_become_requests():
    created = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    srs = pl.DataFrame(
        [
            {
                "sr_id": "a1",
                "source": "generic",
                "vin": "V1",
                "dealer_id": "D100",
                "client": "Riverside",
                "stock_no": "S1",
                "service_request_type": "Mechanical Recon",
                "status": "active",
                "created_at": created,
            },
            {
                "sr_id": "a2",
                "source": "generic",
                "vin": "V2",
                "dealer_id": "D200",
                "client": "Summit",
                "stock_no": None,
                "service_request_type": "Mechanical Recon",
                "status": "active",
                "created_at": created + timedelta(days=9),
            },
            {
                "sr_id": "a3",
                "source": "generic",
                "vin": "V3",
                "dealer_id": "D100",
                "client": "Riverside",
                "stock_no": "S3",
                "service_request_type": "Used Recon",
                "status": "active",
                "created_at": created,
            },
            {
                "sr_id": "a4",
                "source": "generic",
                "vin": "V4",
                "dealer_id": "D100",
                "client": "Riverside",
                "stock_no": "S4",
                "service_request_type": "Mechanical Recon",
                "status": "closed",
                "created_at": created,
            },
            {
                "sr_id": "a5",
                "source": "generic",
                "vin": "V5",
                "dealer_id": "D999",
                "client": "Other",
                "stock_no": "S5",
                "service_request_type": "Mechanical Recon",
                "status": "active",
                "created_at": created,
            },
        ],
        schema=SERVICE_REQUEST_SCHEMA,
    )
    now = datetime(2026, 11, 26, 12, 0, 30, tzinfo=UTC)
    out = by_key(requests_from_service_requests(srs, SETTINGS, now))
    assert set(out) == {"sr-a1", "sr-a2"}
    assert (out["sr-a1"]["dealership"], out["sr-a1"]["earliest"], out["sr-a1"]["latest"]) == (
        "d100",
        "2026-11-26T04:00:00",
        "2026-12-03T04:00:00",
    )
    assert (out["sr-a2"]["dealership"], out["sr-a2"]["earliest"]) == ("d200", "2026-11-29T11:00:00")
    assert out["sr-a1"]["origin"] == "service_request" and out["sr-a1"]["sr_id"] == "a1"
    assert out["sr-a1"]["comment"] == "Mechanical Recon for stock S1 (service request a1)"
    unconfirmed = settings_document("http://127.0.0.1:1")
    unconfirmed["xtime"]["dealerships"]["d200"]["invitation"]["confirmed_at"] = None
    waiting = requests_from_service_requests(srs, settings_from_document(unconfirmed, "t.yaml"), now)
    assert waiting["request_id"].to_list() == ["sr-a1"]


def _settings_with(invitation: dict):
    doc = settings_document("http://127.0.0.1:1")
    doc["xtime"]["dealerships"]["d300"]["invitation"] = invitation
    return settings_from_document(doc, "t.yaml")


ISSUED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("invitation", "now", "state", "detail"),
    [
        ({"code": "C", "issued_at": ISSUED}, ISSUED + timedelta(hours=71), "invited", "is not completed yet"),
        (
            {"code": "C", "issued_at": ISSUED},
            ISSUED + timedelta(hours=72, seconds=1),
            "expired",
            "invitation C issued at 2026-11-20T15:00:00Z expired at 2026-11-23T15:00:00Z without being completed: "
            "a new invitation code is needed",
        ),
        (
            {"code": "C", "issued_at": ISSUED, "completed_at": ISSUED + timedelta(hours=72)},
            ISSUED + timedelta(hours=80),
            "awaiting_confirmation",
            "Xtime may take until 2026-11-24T15:00:00Z",
        ),
        (
            {"code": "C", "issued_at": ISSUED, "completed_at": ISSUED + timedelta(hours=100)},
            ISSUED + timedelta(hours=101),
            "expired",
            "invitation C issued at 2026-11-20T15:00:00Z expired at 2026-11-23T15:00:00Z; the opt-in completed "
            "at 2026-11-24T19:00:00Z came too late: a new invitation code is needed",
        ),
        (
            {
                "code": "C",
                "issued_at": ISSUED,
                "completed_at": ISSUED + timedelta(hours=100),
                "confirmed_at": ISSUED + timedelta(hours=110),
            },
            ISSUED + timedelta(days=30),
            "expired",
            "came too late: a new invitation code is needed",
        ),
        (
            {"code": "C", "issued_at": ISSUED, "completed_at": ISSUED + timedelta(hours=70)},
            ISSUED + timedelta(hours=90),
            "awaiting_confirmation",
            "Xtime may take until 2026-11-24T13:00:00Z",
        ),
        (
            {"code": "C", "issued_at": ISSUED, "completed_at": ISSUED + timedelta(hours=70)},
            ISSUED + timedelta(hours=95),
            "confirmation_overdue",
            "has not confirmed it within 24 hours",
        ),
        (
            {
                "code": "C",
                "issued_at": ISSUED,
                "completed_at": ISSUED + timedelta(hours=1),
                "confirmed_at": ISSUED + timedelta(hours=30),
            },
            ISSUED + timedelta(days=30),
            "confirmed",
            "confirmed at",
        ),
    ],
)
def test_enrollment_is_judged_against_the_given_clock(invitation, now, state, detail):
    row = (
        enrollment_states(_settings_with(invitation), now)
        .filter(pl.col("dealership") == "d300")
        .row(0, named=True)
    )
    assert row["state"] == state
    assert detail in row["detail"]
    assert row["confirmed"] is (state == "confirmed")


def test_the_plan_resolves_doubt_before_anything_else():
    requests = pl.DataFrame(
        {
            "request_id": ["booked", "doubt_vin", "doubt_novin", "held", "noop", "go", "retry"],
            "dealership": ["d100", "d100", "d100", "d300", "d200", "d100", "d100"],
            "vin": [None, "V", None, None, None, None, None],
            "status": ["booked", "pending", "pending", "pending", "pending", "pending", "pending"],
            "reason": [None] * 7,
        }
    )
    attempts = pl.DataFrame(
        [
            {
                "request_id": "doubt_vin",
                "attempt_no": 1,
                "dealership": "d100",
                "appointment_local": "s",
                "opcode": "o",
                "sent_at": ISSUED,
                "outcome": None,
                "detail": None,
            },
            {
                "request_id": "doubt_novin",
                "attempt_no": 1,
                "dealership": "d100",
                "appointment_local": "s",
                "opcode": "o",
                "sent_at": ISSUED,
                "outcome": None,
                "detail": None,
            },
            {
                "request_id": "retry",
                "attempt_no": 1,
                "dealership": "d100",
                "appointment_local": "s",
                "opcode": "o",
                "sent_at": ISSUED,
                "outcome": "not_found",
                "detail": None,
            },
        ],
        schema=ATTEMPT_SCHEMA,
    )
    catalog = pl.DataFrame(
        {"dealership": ["d100", "d300"], "opcode": ["TUM", "TUM"], "name": ["Tell Us More", "Tell Us More"]}
    )
    now = ISSUED + timedelta(days=6)
    ready = readiness(enrollment_states(SETTINGS, now), catalog)
    out = by_key(
        plan(requests.with_columns(pl.lit("2026-12-08T09:00:00").alias("latest")), attempts, ready, now)
    )
    assert {k: v["action"] for k, v in out.items()} == {
        "booked": "none",
        "doubt_vin": "lookup",
        "doubt_novin": "unconfirm",
        "held": "hold",
        "noop": "wait_opcode",
        "go": "book",
        "retry": "book",
    }
    assert out["retry"]["next_attempt_no"] == 2 and out["go"]["next_attempt_no"] == 1
    assert (out["go"]["opcode"], out["doubt_vin"]["opcode"]) == ("TUM", "o")
    assert out["doubt_novin"]["status"] == "unconfirmed"
    assert out["held"]["status"] == "held_not_enrolled"
    assert out["noop"]["reason"] == "opcode 'DataClover Appt' is not in the catalog of dealership d200"


def test_a_late_opt_in_holds_requests_and_makes_none_from_service_requests():
    doc = settings_document("http://127.0.0.1:1")
    doc["xtime"]["dealerships"]["d100"]["invitation"] = {
        "code": "AA11",
        "issued_at": ISSUED,
        "completed_at": ISSUED + timedelta(hours=100),
        "confirmed_at": ISSUED + timedelta(hours=101),
    }
    settings = settings_from_document(doc, "t.yaml")
    now = ISSUED + timedelta(days=5)
    requests = pl.DataFrame(
        {
            "request_id": ["r1"],
            "dealership": ["d100"],
            "vin": [None],
            "status": ["pending"],
            "reason": [None],
            "latest": ["2026-12-08T09:00:00"],
        },
        schema_overrides={"vin": pl.String(), "reason": pl.String()},
    )
    catalog = pl.DataFrame({"dealership": ["d100"], "opcode": ["TUM"], "name": ["Tell Us More"]})
    step = plan(
        requests,
        pl.DataFrame(schema=ATTEMPT_SCHEMA),
        readiness(enrollment_states(settings, now), catalog),
        now,
    )
    assert (step["action"][0], step["status"][0]) == ("hold", "held_not_enrolled")
    assert step["reason"][0].endswith("came too late: a new invitation code is needed")
    srs = pl.DataFrame(
        [
            {
                "sr_id": "a1",
                "source": "generic",
                "vin": "V1",
                "dealer_id": "D100",
                "client": "Riverside",
                "stock_no": "S1",
                "service_request_type": "Mechanical Recon",
                "status": "active",
                "created_at": ISSUED,
            }
        ],
        schema=SERVICE_REQUEST_SCHEMA,
    )
    assert requests_from_service_requests(srs, settings, now).is_empty()


CATALOG = pl.DataFrame(
    {
        "dealership": ["d1", "d1", "d1", "d1", "d2", "d2"],
        "opcode": ["TUM", "DCAPPT", "LOF", "Oil Change", "TUM", "TUM2"],
        "name": [
            "Tell Us More",
            " DataClover Appt ",
            "Oil Change",
            "Oil and filter",
            "Tell Us More",
            "tell us more",
        ],
    }
)


@pytest.mark.parametrize(
    ("dealership", "opcode", "sent", "matched_by", "problem"),
    [
        ("d1", "DCAPPT", "DCAPPT", "value", None),
        ("d1", "dataclover APPT", "DCAPPT", "name", None),
        ("d1", "Tell Us More", "TUM", "name", None),
        ("d1", "Oil Change", "Oil Change", "value", None),  # a value wins over another service's name
        (
            "d2",
            "Tell Us More",
            None,
            None,
            "opcode 'Tell Us More' names 2 services in the catalog of dealership d2: 'Tell Us More' (TUM), "
            "'tell us more' (TUM2); set the opcode to one of their values",
        ),
        ("d3", "Tell Us More", None, None, "opcode 'Tell Us More' is not in the catalog of dealership d3"),
        ("d1", "tum", None, None, "opcode 'tum' is not in the catalog of dealership d1"),  # values are exact
    ],
)
def test_an_opcode_is_a_catalog_value_or_else_exactly_one_service_name(
    dealership, opcode, sent, matched_by, problem
):
    wanted = pl.DataFrame({"dealership": [dealership], "opcode": [opcode]})
    row = resolve_opcodes(wanted, CATALOG).row(0, named=True)
    assert (row["send_opcode"], row["matched_by"], row["problem"]) == (sent, matched_by, problem)


def test_a_slot_that_has_begun_is_never_chosen():
    slots = pl.DataFrame(
        {
            "appointment_local": ["2026-12-01T08:00-0800", "2026-12-01T08:30-0800", "2026-12-01T09:00-0800"],
            "duration_minutes": [30, 30, 30],
        },
        schema=SLOT_SCHEMA,
    )
    now = datetime(2026, 12, 1, 16, 30, tzinfo=UTC)  # 08:30 in Los Angeles: that slot has begun
    chosen = choose_slot(
        "r1", "2026-12-01T08:00:00", "2026-12-08T08:00:00", "America/Los_Angeles", slots, now
    )
    assert chosen["appointment_local"].to_list() == ["2026-12-01T09:00-0800"]


def test_a_request_whose_window_has_passed_is_no_slot_with_the_reason():
    requests = pl.DataFrame(
        {
            "request_id": ["ended", "open", "ended_held", "ended_in_doubt"],
            "dealership": ["d100", "d100", "d300", "d100"],
            "vin": [None, None, None, "V"],
            "status": ["pending"] * 4,
            "reason": [None] * 4,
            "latest": [
                "2026-12-01T17:00:00",
                "2026-12-01T17:01:00",
                "2026-11-30T09:00:00",
                "2026-11-30T09:00:00",
            ],
        },
        schema_overrides={"vin": pl.String(), "reason": pl.String()},
    )
    doubt = pl.DataFrame(
        [
            {
                "request_id": "ended_in_doubt",
                "attempt_no": 1,
                "dealership": "d100",
                "appointment_local": "s",
                "opcode": "TUM",
                "sent_at": ISSUED,
                "outcome": None,
                "detail": None,
            }
        ],
        schema=ATTEMPT_SCHEMA,
    )
    now = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 17:00 on Dec 1 in Los Angeles
    catalog = pl.DataFrame({"dealership": ["d100"], "opcode": ["TUM"], "name": ["Tell Us More"]})
    out = by_key(plan(requests, doubt, readiness(enrollment_states(SETTINGS, now), catalog), now))
    assert {k: (v["action"], v["status"]) for k, v in out.items()} == {
        "ended": ("window_passed", "no_slot"),
        "open": ("book", "pending"),
        "ended_held": ("window_passed", "no_slot"),
        "ended_in_doubt": ("lookup", "pending"),  # a lost answer may have booked: looked up first
    }
    assert out["ended"]["reason"] == (
        "the window ended at 2026-12-01T17:00:00 (America/Los_Angeles) before the request could be booked"
    )
