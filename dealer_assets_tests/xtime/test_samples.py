"""What `make dev` stages for Xtime (`make xtime-samples`): requests ahead of the day it runs, and enrollment
dates that show each state on any day; then the samples book against the fake as the UI shows them."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import polars as pl
import pytest
import yaml

from dealer_assets.core.env import PROJECT_ROOT, STAGED_SETTINGS
from dealer_assets.xtime import store
from dealer_assets.xtime.book_appointments import Booker
from dealer_assets.xtime.domain.enrollment import enrollment_states
from dealer_assets.xtime.fake import FakeState, FakeXtimeServer, seeded_dealerships
from dealer_assets.xtime.fake.samples import stage
from dealer_assets.xtime.intake import RequestPaths, ingest_files
from dealer_assets.xtime.refresh_catalog import refresh_catalogs
from dealer_assets.xtime.settings import load_xtime_settings
from dealer_assets_tests.xtime.support import CREDENTIALS, make_client

SAMPLE_SETTINGS = PROJECT_ROOT / "data" / "config" / "dealer_feeds.yaml"
DAYS = [
    datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
    datetime(2026, 12, 3, 16, 59, tzinfo=UTC),
    datetime(2027, 3, 14, 9, 30, tzinfo=UTC),
    datetime(2031, 2, 28, 23, 59, tzinfo=UTC),
]


def staged(tmp_path, now: datetime):
    settings_file = tmp_path / "config" / "dealer_feeds.yaml"
    settings_file.parent.mkdir()
    shutil.copyfile(SAMPLE_SETTINGS, settings_file)
    stage(tmp_path, settings_file, now)
    assert settings_file.read_text() == SAMPLE_SETTINGS.read_text(), (
        "the settings file itself is never rewritten"
    )
    staged_file = tmp_path / STAGED_SETTINGS
    return staged_file, load_xtime_settings(staged_file)


def without_invitation_dates(document: dict) -> dict:
    for dealer in document["xtime"]["dealerships"].values():
        dealer["invitation"] = dealer["invitation"]["code"]
    return document


@pytest.mark.parametrize("now", DAYS)
def test_each_enrollment_state_shows_on_any_day_and_nothing_else_changes(tmp_path, now):
    settings_file, settings = staged(tmp_path, now)
    states = dict(enrollment_states(settings, now).select("dealership", "state").iter_rows())
    assert states == {
        "d100": "confirmed",
        "d200": "confirmed",
        "d300": "confirmed",
        "ng1": "awaiting_confirmation",
        "d201": "confirmation_overdue",
        "d101": "expired",
    }
    before, after = (yaml.safe_load(p.read_text()) for p in (SAMPLE_SETTINGS, settings_file))
    assert without_invitation_dates(after) == without_invitation_dates(before)
    text = settings_file.read_text()
    assert text.count("#") == SAMPLE_SETTINGS.read_text().count("#"), "comments are kept"


@pytest.mark.parametrize("now", DAYS)
def test_sample_requests_lie_ahead_of_the_day_they_are_staged(tmp_path, now):
    _, settings = staged(tmp_path, now)
    incoming = RequestPaths(tmp_path).incoming
    rows = pl.concat([pl.read_ndjson(p) for p in sorted(incoming.glob("*.jsonl"))]).to_dicts()
    assert len(rows) >= 5
    for row in rows:
        zone = ZoneInfo(settings.dealerships[row["dealership"]].time_zone)
        earliest = datetime.fromisoformat(row["earliest"]).replace(tzinfo=zone)
        assert (earliest - now).days >= 6, row


def test_staging_again_refreshes_what_is_not_taken_in_and_never_redelivers(tmp_path):
    stage_dir = RequestPaths(tmp_path).incoming
    settings_file, _ = staged(tmp_path, DAYS[0])
    first = {p.name: p.read_text() for p in stage_dir.glob("*.jsonl")}
    stage(tmp_path, settings_file, DAYS[1])
    second = {p.name: p.read_text() for p in stage_dir.glob("*.jsonl")}
    assert set(first) == set(second) and first != second, "not taken in yet: staged again, dated anew"
    for path in stage_dir.glob("*.jsonl"):
        path.unlink()  # what the intake does once it stored them
    stage(tmp_path, settings_file, DAYS[2])
    assert not list(stage_dir.glob("*.jsonl"))


@pytest.mark.slow
def test_the_staged_samples_book_as_make_dev_shows_them(tmp_path, engine):
    now = DAYS[1]
    _, settings = staged(tmp_path, now)
    zones = {d.dealer_code: d.time_zone for d in settings.dealerships.values()}
    state = FakeState(seeded_dealerships(zones), *CREDENTIALS.values(), rate_limit=None, clock=lambda: now)
    with FakeXtimeServer(state) as server:
        settings = settings.model_copy(update={"base_url": server.url, "token_url": f"{server.url}/token"})
        with make_client(settings) as client:
            ingest_files(engine, settings, RequestPaths(tmp_path), now)
            refresh_catalogs(engine, client, settings, now)
            Booker(engine, client, settings, now=lambda: now).run()
    requests = dict(store.read_requests(engine).select("request_id", "status").iter_rows())
    assert requests == {
        "web-1001": "booked",
        "web-1002": "booked",
        "web-1003": "booked",
        "web-1004": "pending",
        "web-1005": "held_not_enrolled",
        "web-1006": "held_not_enrolled",
    }
    bookings = store.read_bookings(engine).sort("request_id")
    assert bookings["opcode"].to_list() == ["TUM", "TUM", "DCAPPT"]
    assert (bookings["appointment_at"] > now).all()
