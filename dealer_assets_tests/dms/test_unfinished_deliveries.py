"""A stalled writer is not a finished file: a delivery cut inside its last record, or still held open for
writing, waits in the drop zone with its reason shown, is taken whole once its writer finishes, and is
quarantined as `incomplete` when it stays unfinished past its source's limit."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from dealer_assets.core.warehouse import engine_for
from dealer_assets.definitions import build_definitions
from dealer_assets.dms.apply_feeds import reconcile
from dealer_assets.dms.defs.checks import quarantine_result
from dealer_assets.dms.ingest import ingest_raw_feeds
from dealer_assets.dms.normalize_feeds import normalize_window
from dealer_assets.dms.settings import load_settings, parse_settings
from dealer_assets_tests.support import HEADER, DataRoot, at, feed_body, feed_name, make_root, vin

START, END = at(0, 0), at(10, 0)
IMMEDIATE = """
sources:
  generic:
    layout: generic
    track_stock_no_and_client: {mode: never}
    auto_close: {mode: immediately}
    client_dealer_mappings:
      - {client: Client One, dealer_id: D1, service_request_type: Recon}
"""
VINS = [vin(n) for n in range(20)]
WRITER = """
import sys
path, first = sys.argv[1], int(sys.argv[2])
body = sys.stdin.buffer.read(int(sys.argv[3]))
with open(path, "wb") as out:
    out.write(body[:first])
    out.flush()
    print("stalled", flush=True)
    sys.stdin.buffer.readline()
    out.write(body[first:])
"""


def process(root: DataRoot, received_at: datetime | None = None) -> dict:
    """The three DMS steps over the window, as a run started at `received_at` (default: now) does them."""
    settings = load_settings(root.paths.settings_file)
    engine = engine_for(root.paths.warehouse_url)
    cfg = settings.sources["generic"]
    received_at = received_at or datetime.now(UTC)
    raw = ingest_raw_feeds(root.paths, "generic", cfg, set(settings.sources), engine, START, END, received_at)
    normalize_window(root.paths, "generic", cfg, engine, START, END)
    rec = reconcile(root.paths, "generic", cfg, engine, start=START, end=END, mode="incremental")
    return {"raw": raw, "reconcile": rec}


def rows(root: DataRoot, sql: str) -> list[tuple]:
    with engine_for(root.paths.warehouse_url).connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]


def closed(root: DataRoot) -> list[str]:
    return [v for (v,) in rows(root, "SELECT vin FROM service_requests WHERE status = 'closed' ORDER BY vin")]


@pytest.fixture
def root(tmp_path: Path) -> DataRoot:
    """Day 1 applied: 20 active SRs of D1. Day 2's complete feed lists 19 of them."""
    root = make_root(tmp_path, settings=IMMEDIATE)
    root.drop_feed("generic", at(1), [("D1", v, "S", "U") for v in VINS])
    process(root)
    return root


DAY2 = feed_body([("D1", v, "S", "U") for v in VINS[:19]]).encode()
MID_LINE = int(len(DAY2) * 0.85)
MID_FILE = DAY2.rindex(b"\n", 0, MID_LINE) + 1


def assert_waits(root: DataRoot, name: str, reason: str) -> None:
    report = process(root)
    assert report["raw"].archived == [] and report["reconcile"].applied == []
    ((left, detail),) = [(x.file_name, x.detail) for x in report["raw"].left]
    assert left == name and detail.startswith(
        f"unfinished: {reason}; quarantined as incomplete if still so at "
    )
    check = quarantine_result(report["raw"])
    assert not check.passed and f"{name}: left in the drop zone (unfinished: {reason}" in check.description
    assert closed(root) == [], "nothing of a partial feed is applied"
    assert (root.incoming / name).exists()


def assert_taken_whole(root: DataRoot, name: str) -> None:
    report = process(root)
    assert report["raw"].archived == [name] and report["raw"].left == []
    assert (root.paths.archive / "generic" / "2026" / "11" / "03" / name).read_bytes() == DAY2
    assert closed(root) == [VINS[19]], "only the vehicle missing from the whole feed closes"


def test_a_writer_stalled_mid_line_waits_then_its_whole_file_is_taken(root: DataRoot) -> None:
    assert DAY2[MID_LINE - 1 : MID_LINE] != b"\n"
    stalled = root.drop(feed_name("generic", at(2)), DAY2[:MID_LINE])
    assert_waits(root, stalled.name, "its last record has no line ending")
    with open(stalled, "ab") as resumed:
        resumed.write(DAY2[MID_LINE:])
    assert_taken_whole(root, stalled.name)


@contextmanager
def held_by_a_child(path: Path):
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(MID_FILE), str(len(DAY2))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        child.stdin.write(DAY2)
        child.stdin.flush()
        assert child.stdout.readline() == b"stalled\n"
        yield child.pid
        child.stdin.write(b"go on\n")
        child.stdin.flush()
        assert child.wait(30) == 0
    finally:
        child.kill()
        child.wait()


@contextmanager
def held_by_this_process(path: Path):
    with open(path, "wb") as out:
        out.write(DAY2[:MID_FILE])
        out.flush()
        yield os.getpid()
        out.write(DAY2[MID_FILE:])


@pytest.mark.slow
@pytest.mark.parametrize("holder", [held_by_a_child, held_by_this_process])
def test_a_writer_stalled_mid_file_waits_while_it_holds_the_file(root: DataRoot, holder) -> None:
    path = root.incoming / feed_name("generic", at(2))
    with holder(path) as pid:
        assert path.read_bytes().endswith(b"\n"), "stalled between records: only the open handle tells"
        assert_waits(root, path.name, f"process {pid} still holds it open for writing")
    assert_taken_whole(root, path.name)


def test_an_unfinished_delivery_past_its_limit_is_quarantined_as_incomplete(root: DataRoot) -> None:
    now = datetime.now(UTC)
    stalled = root.drop(feed_name("generic", at(2)), DAY2[:MID_LINE])
    last_write = (now - timedelta(minutes=59)).timestamp()
    os.utime(stalled, (last_write, last_write))
    assert [x.file_name for x in process(root, now)["raw"].left] == [stalled.name], "59 minutes: it waits"
    report = process(root, now + timedelta(minutes=2))
    assert [(q.file_name, q.reason) for q in report["raw"].quarantined] == [(stalled.name, "incomplete")]
    assert "nothing was written to it for 60 min" in report["raw"].quarantined[0].detail
    assert "ends_with_newline: false" in report["raw"].quarantined[0].detail
    assert rows(root, "SELECT file_name, reason FROM quarantined_files") == [(stalled.name, "incomplete")]
    assert list(root.incoming.iterdir()) == [] and closed(root) == []
    kept = [p for p in root.paths.quarantine.iterdir() if not p.name.endswith(".json")]
    assert [p.read_bytes() for p in kept] == [DAY2[:MID_LINE]]

    root.drop(stalled.name, DAY2)
    assert_taken_whole(root, stalled.name)


def test_a_layout_whose_files_do_not_end_a_line_is_taken_at_once(root: DataRoot) -> None:
    columns = "{dealer_id: DealerID, vin: VIN, stock_no: StockNo, system_code: SystemCode}"
    no_final_newline = f"layout: {{ends_with_newline: false, columns: {columns}}}"
    root.settings(IMMEDIATE.replace("layout: generic", no_final_newline))
    name = root.drop(feed_name("generic", at(2)), DAY2.rstrip(b"\n")).name
    assert process(root)["raw"].archived == [name]
    assert closed(root) == [VINS[19]]


def test_layout_line_endings_follow_the_encoding() -> None:
    def layout(extra: str):
        text = IMMEDIATE.replace(
            "layout: generic", f"layout: {{{extra}columns: {{dealer_id: D, vin: V, system_code: C}}}}"
        )
        return parse_settings(text).sources["generic"].file_layout

    assert layout("").line_endings == (b"\n", b"\r")
    assert layout("encoding: utf-16-le, ").line_endings == (b"\n\x00", b"\r\x00")
    assert layout("ends_with_newline: false, ").line_endings == ()
    assert parse_settings(IMMEDIATE).sources["generic"].incomplete_after_minutes == 60
    assert HEADER.endswith("\n")


def test_the_sensor_asks_for_no_run_while_a_writer_holds_the_file(root: DataRoot, tmp_path: Path) -> None:
    defs = build_definitions(root.dealer_env())
    sensor = defs.resolve_sensor_def("dms_drop_zone_sensor")
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor: str | None) -> dg.SensorResult:
        ctx = dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
        )
        return sensor.evaluate_tick(ctx)

    path = root.incoming / feed_name("generic", at(2))
    with held_by_this_process(path):
        waiting = tick(None)
        assert waiting.run_requests == [], "held open for writing: no run yet"
    done = tick(waiting.cursor)
    assert [r.job_name for r in done.run_requests] == ["dms_generic_feeds_job"]
