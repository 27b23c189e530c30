"""Booking over real HTTP against the fake, with the ledger in a SQLite warehouse: at most once, whatever
answers are lost, runs killed or re-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dealer_assets.xtime import store
from dealer_assets.xtime.book_appointments import Booker
from dealer_assets.xtime.intake import RequestPaths, ingest_files
from dealer_assets.xtime.refresh_catalog import refresh_catalogs
from dealer_assets_tests.support import wait_for
from dealer_assets_tests.xtime.support import CREDENTIALS, NOW, control, make_client

VIN = "1FTFW1E50NFA00001"


def request(rid: str, **kw) -> dict:
    return {
        "request_id": rid,
        "dealership": "d100",
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@example.com",
        "phone": "555-201-3344",
        "earliest": "2026-12-01T09:00",
    } | kw


def drop(data_dir: Path, name: str, rows: list[dict | str]) -> None:
    incoming = RequestPaths(data_dir).incoming
    incoming.mkdir(parents=True, exist_ok=True)
    (incoming / name).write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def booker(engine, settings, **kw) -> Booker:
    return Booker(engine, make_client(settings, **kw), settings, now=lambda: NOW)


def fetch_catalogs(b: Booker) -> None:
    refresh_catalogs(b.engine, b.client, b.settings, NOW)


def statuses(engine) -> dict[str, str]:
    return dict(store.read_requests(engine).select("request_id", "status").iter_rows())


@pytest.mark.slow
def test_requests_are_booked_in_the_first_slot_of_their_window(fake, settings, engine, tmp_path):
    drop(tmp_path, "a.jsonl", [request("r1", vin=VIN), request("r2", earliest="2026-12-01T09:00")])
    ingest_files(engine, settings, RequestPaths(tmp_path), NOW)
    b = booker(engine, settings)
    fetch_catalogs(b)
    b.run()
    assert statuses(engine) == {"r1": "booked", "r2": "booked"}
    bookings = store.read_bookings(engine).sort("request_id")
    assert bookings["appointment_local"].to_list() == ["2026-12-01T09:00-0800", "2026-12-01T09:30-0800"]
    assert bookings["appointment_at"].dt.strftime("%H:%M").to_list() == ["17:00", "17:30"]
    assert bookings["opcode"].to_list() == ["TUM"] * 2  # settings name "Tell Us More"; the value is sent
    labels = {a["label"]: a for a in fake.state.appointments}
    assert set(labels) == {"r1", "r2"} and labels["r1"]["services"] == [{"opcode": "TUM"}]
    b.run()
    assert fake.state.calls["/service/appointments-bookings"] == 2


@pytest.mark.slow
def test_a_lost_answer_is_looked_up_and_the_rerun_books_nothing(fake, settings, engine, tmp_path):
    drop(tmp_path, "a.jsonl", [request("r1", vin=VIN)])
    ingest_files(engine, settings, RequestPaths(tmp_path), NOW)
    b = booker(engine, settings)
    fetch_catalogs(b)
    control(fake, "failures", {"kind": "lost", "path": "/service/appointments-bookings", "delay": 1.5})
    b.run()
    b.run()
    assert statuses(engine) == {"r1": "booked"}
    booking = store.read_bookings(engine).row(0, named=True)
    assert booking["found_by"] == "lookup"
    assert [a["appointmentId"] for a in fake.state.appointments] == [booking["appointment_id"]]
    assert fake.state.calls["/service/appointments-bookings"] == 1


@pytest.mark.slow
def test_a_lost_answer_whose_lookup_also_fails_is_looked_up_next_run_never_resent(
    fake, settings, engine, tmp_path
):
    drop(tmp_path, "a.jsonl", [request("r1", vin=VIN)])
    ingest_files(engine, settings, RequestPaths(tmp_path), NOW)
    b = booker(engine, settings, max_attempts=2)
    fetch_catalogs(b)
    control(fake, "failures", {"kind": "lost", "path": "/service/appointments-bookings", "delay": 1.5})
    control(fake, "failures", {"kind": "500", "path": "/service/appointments", "count": 2})
    first = b.run()
    assert statuses(engine) == {"r1": "pending"} and first.errors
    b.run()
    assert statuses(engine) == {"r1": "booked"}
    assert len(fake.state.appointments) == 1 and fake.state.calls["/service/appointments-bookings"] == 1


@pytest.mark.slow
def test_a_lost_answer_without_vin_is_unconfirmed_and_never_resent(fake, settings, engine, tmp_path):
    drop(tmp_path, "a.jsonl", [request("r1")])
    ingest_files(engine, settings, RequestPaths(tmp_path), NOW)
    b = booker(engine, settings)
    fetch_catalogs(b)
    control(fake, "failures", {"kind": "lost", "path": "/service/appointments-bookings", "delay": 1.5})
    b.run()
    b.run()
    row = store.read_requests(engine).row(0, named=True)
    assert row["status"] == "unconfirmed" and "labelled 'r1'" in row["reason"]
    assert fake.state.calls["/service/appointments-bookings"] == 1
    assert store.read_bookings(engine).is_empty()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["500", "timeout"])
def test_a_failed_booking_goes_through_lookup_and_is_sent_again_only_on_the_next_run(
    fake, settings, engine, tmp_path, kind
):
    drop(tmp_path, "a.jsonl", [request("r1", vin=VIN)])
    ingest_files(engine, settings, RequestPaths(tmp_path), NOW)
    b = booker(engine, settings)
    fetch_catalogs(b)
    control(fake, "failures", {"kind": kind, "path": "/service/appointments-bookings", "delay": 1.0})
    b.run()
    assert statuses(engine) == {"r1": "pending"}
    assert fake.state.calls["/service/appointments"] == 1 and not fake.state.appointments
    b.run()
    assert statuses(engine) == {"r1": "booked"}
    attempts = store.read_attempts(engine).sort("attempt_no")
    assert attempts["outcome"].to_list() == ["not_found", "booked"]


def test_holds_opcode_missing_no_slot_and_rejections(fake, settings, engine, tmp_path):
    drop(
        tmp_path,
        "a.jsonl",
        [
            request("held", dealership="d300"),
            request("opcode", dealership="d200"),
            request("late", earliest="2026-12-01T16:31", latest="2026-12-01T17:00"),
            request("refused", vin=VIN),
            "{not json",
        ],
    )
    ingest_files(engine, settings, RequestPaths(tmp_path), NOW)
    b = booker(engine, settings)
    fetch_catalogs(b)
    control(
        fake,
        "failures",
        {
            "kind": "success_false",
            "path": "/service/appointments-bookings",
            "code": "CUSTOMER_BLOCKED",
            "message": "customer may not book online",
        },
    )
    b.run()
    rows = {r["request_id"]: r for r in store.read_requests(engine).to_dicts()}
    assert rows["held"]["status"] == "held_not_enrolled" and "not completed yet" in rows["held"]["reason"]
    assert rows["opcode"]["status"] == "pending"
    assert rows["opcode"]["reason"] == "opcode 'DataClover Appt' is not in the catalog of dealership d200"
    assert rows["late"]["status"] == "no_slot"
    assert rows["refused"]["status"] == "rejected"
    assert rows["refused"]["reason"] == "CUSTOMER_BLOCKED: customer may not book online"
    assert rows["a.jsonl#5"]["status"] == "invalid" and rows["a.jsonl#5"]["reason"].startswith(
        "not valid JSON"
    )
    assert fake.state.calls["/service/appointments-bookings"] == 1


def test_never_a_slot_that_has_begun_and_a_request_whose_window_passed_is_no_slot(
    fake, settings, engine, tmp_path
):
    fake.state.dealerships["X100"].open_hour, fake.state.dealerships["X100"].close_hour = 0, 24
    drop(
        tmp_path,
        "a.jsonl",
        [
            request("begun", earliest="2026-11-26T03:00"),  # NOW is 04:00 in Los Angeles
            request("ended", earliest="2026-11-20T09:00", latest="2026-11-26T04:00"),
        ],
    )
    ingest_files(engine, settings, RequestPaths(tmp_path), NOW)
    b = booker(engine, settings)
    fetch_catalogs(b)
    b.run()
    rows = {r["request_id"]: r for r in store.read_requests(engine).to_dicts()}
    assert (rows["begun"]["status"], rows["ended"]["status"]) == ("booked", "no_slot")
    assert rows["ended"]["reason"] == (
        "the window ended at 2026-11-26T04:00:00 (America/Los_Angeles) before the request could be booked"
    )
    assert store.read_bookings(engine)["appointment_local"].to_list() == ["2026-11-26T04:30-0800"]
    assert fake.state.calls["/service/appointments-availabilities"] == 1


def test_an_opcode_naming_two_services_books_nothing_and_says_which(fake, settings, engine, tmp_path):
    fake.state.dealerships["X100"].extra_services = (("TUM2", " tell us more"),)
    drop(tmp_path, "a.jsonl", [request("r1", vin=VIN)])
    ingest_files(engine, settings, RequestPaths(tmp_path), NOW)
    b = booker(engine, settings)
    fetch_catalogs(b)
    b.run()
    row = store.read_requests(engine).row(0, named=True)
    assert (row["status"], row["reason"]) == (
        "pending",
        "opcode 'Tell Us More' names 2 services in the catalog of dealership d100: 'Tell Us More' (TUM), "
        "' tell us more' (TUM2); set the opcode to one of their values",
    )
    assert fake.state.calls["/service/appointments-availabilities"] == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("earliest", "latest", "expected"),
    [
        ("2027-03-13T23:50", None, "2027-03-14T00:00-0800"),
        ("2027-03-14T01:45", None, "2027-03-14T03:00-0700"),  # spring forward: 02:00-03:00 does not exist
        ("2027-03-14T02:30", None, "2027-03-14T03:00-0700"),  # a skipped time means the end of the gap
        ("2027-03-14T01:45", "2027-03-14T03:00", None),  # strictly before latest: 03:00 PDT is excluded
        ("2027-11-07T01:10", None, "2027-11-07T01:30-0700"),  # fall back: an ambiguous time is the first
        ("2027-11-07T01:40", None, "2027-11-07T01:00-0800"),  # 01:40 PDT is before 01:00 PST
        ("2027-11-07T02:00", None, "2027-11-07T02:00-0800"),
    ],
)
def test_local_time_with_offset_across_both_dst_changes(
    fake, settings, engine, tmp_path, earliest, latest, expected
):
    fake.state.dealerships["X100"].open_hour, fake.state.dealerships["X100"].close_hour = 0, 24
    drop(tmp_path, "a.jsonl", [request("r1", earliest=earliest) | ({"latest": latest} if latest else {})])
    ingest_files(engine, settings, RequestPaths(tmp_path), NOW)
    b = booker(engine, settings)
    fetch_catalogs(b)
    b.run()
    if expected is None:
        assert statuses(engine) == {"r1": "no_slot"} and not fake.state.appointments
        return
    booking = store.read_bookings(engine).row(0, named=True)
    assert booking["appointment_local"] == expected
    assert fake.state.appointments[0]["appointmentDateTimeLocal"] == expected
    offset = int(expected[-5:-2]) * 3600
    local = booking["appointment_at"].timestamp() + offset
    assert time.strftime("%Y-%m-%dT%H:%M", time.gmtime(local)) == expected[:16]


KILLED_RUN = """
import sys
import sqlalchemy as sa
from dealer_assets.xtime.book_appointments import Booker
from dealer_assets.xtime.defs.resources import XtimeResource
from dealer_assets.xtime.settings import settings_from_document
import json
settings = settings_from_document(json.loads(sys.argv[2]), "test.yaml")
client = XtimeResource.from_environment(settings, timeout_seconds=60).client()
Booker(sa.create_engine(sys.argv[1]), client, settings).run()
"""


@pytest.mark.e2e
@pytest.mark.parametrize("with_vin", [True, False])
def test_a_run_killed_after_booking_is_rerun_and_books_nothing_twice(
    fake, settings, engine, tmp_path, with_vin
):
    drop(tmp_path, "a.jsonl", [request("r1", **({"vin": VIN} if with_vin else {})), request("r2", vin=VIN)])
    ingest_files(engine, settings, RequestPaths(tmp_path), NOW)
    fetch_catalogs(booker(engine, settings))
    control(fake, "failures", {"kind": "lost", "path": "/service/appointments-bookings", "delay": 60})
    env = os.environ | CREDENTIALS | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    document = json.dumps({"xtime": settings.model_dump(mode="json")})
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(engine.url), document], env=env)
    wait_for(lambda: bool(fake.state.appointments), "the fake booking r1 (its answer held back)", seconds=30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [a["label"] for a in fake.state.appointments] == ["r1"]
    attempts = store.read_attempts(engine)
    assert attempts.select("request_id", "outcome").rows() == [("r1", None)]
    b = booker(engine, settings)
    b.run()
    b.run()
    assert statuses(engine) == {"r1": "booked" if with_vin else "unconfirmed", "r2": "booked"}
    assert sorted(a["label"] for a in fake.state.appointments) == ["r1", "r2"]
    assert fake.state.calls["/service/appointments-bookings"] == 2


@pytest.mark.slow
def test_throttling_or_refused_credentials_never_reject_a_request(fake, settings, engine, tmp_path):
    drop(tmp_path, "a.jsonl", [request("r1", vin=VIN)])
    ingest_files(engine, settings, RequestPaths(tmp_path), NOW)
    fetch_catalogs(booker(engine, settings))
    control(
        fake,
        "failures",
        {"kind": "429", "path": "/service/appointments-bookings", "count": 2, "retry_after": 0},
    )
    first = booker(engine, settings, max_attempts=2).run()
    assert statuses(engine) == {"r1": "pending"} and first.errors
    wrong = settings.model_copy(update={"token_url": settings.token_url + "-wrong"})
    second = booker(engine, wrong).run()
    assert statuses(engine) == {"r1": "pending"} and second.errors
    booker(engine, settings).run()
    assert statuses(engine) == {"r1": "booked"}
    assert store.read_attempts(engine).sort("attempt_no")["outcome"].to_list() == ["not_sent", "booked"]


def test_a_garbled_answer_to_a_booking_is_looked_up(fake, settings, engine, tmp_path):
    drop(tmp_path, "a.jsonl", [request("r1", vin=VIN)])
    ingest_files(engine, settings, RequestPaths(tmp_path), NOW)
    b = booker(engine, settings)
    fetch_catalogs(b)
    control(fake, "failures", {"kind": "garbled", "path": "/service/appointments-bookings"})
    b.run()
    assert statuses(engine) == {"r1": "booked"}
    assert store.read_bookings(engine)["found_by"].to_list() == ["lookup"]
    assert len(fake.state.appointments) == 1
