"""What a crash, a tampered archive or checkpoint, or two overlapping commands must not lose or
wedge; and the guard of the amended rule 8."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from dealer_assets.core.warehouse import engine_for
from dealer_assets.dms import ingest as ingest_module
from dealer_assets.dms import normalize_feeds as normalization_module
from dealer_assets.dms import quarantine as quarantine_module
from dealer_assets.dms.apply_feeds import reconcile
from dealer_assets.dms.domain.rules import apply_feeds
from dealer_assets.dms.domain.state import empty_state
from dealer_assets.dms.domain.vehicles import FeedRef
from dealer_assets.dms.ingest import ingest_raw_feeds
from dealer_assets.dms.ledger import pending_partitions
from dealer_assets.dms.normalize_feeds import normalize_window
from dealer_assets.dms.quarantine import triage_misdelivered
from dealer_assets.dms.settings import load_settings, parse_settings
from dealer_assets_tests.support import (
    DataRoot,
    at,
    feed_body,
    feed_name,
    make_root,
    snapshot,
    vin,
    wait_for,
)

FAR = datetime(2030, 1, 1, tzinfo=UTC)
START, END = at(0, 0), at(20, 0)


def steps(root: DataRoot, mode: str = "incremental", replay_from: datetime | None = None):
    settings = load_settings(root.paths.settings_file)
    engine = engine_for(root.paths.warehouse_url)
    cfg = settings.sources["generic"]
    triage_misdelivered(root.paths, settings, engine, FAR)
    raw = ingest_raw_feeds(root.paths, "generic", cfg, set(settings.sources), engine, START, END, FAR)
    normalize_window(root.paths, "generic", cfg, engine, START, END)
    rec = reconcile(
        root.paths, "generic", cfg, engine, start=START, end=END, mode=mode, replay_from=replay_from
    )
    return raw, rec


def rows(root: DataRoot, sql: str) -> list[tuple]:
    with engine_for(root.paths.warehouse_url).connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]


class Killed(BaseException):
    """Stands in for SIGKILL inside the test process: nothing after the crash point runs."""


def test_what_was_moved_to_quarantine_is_recorded_after_a_crash(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_root(tmp_path, warehouse_url)
    root.drop_feed("generic", at(1), [("D1", vin(1), "S1", "U")])
    steps(root)
    root.drop_feed("generic", at(1), [("D1", vin(1), "OTHER", "U")])
    for n in range(5):
        root.drop(f"stray-{n}.txt", f"stray {n}")

    def die(point: str) -> None:
        if point == "ingest:after_archive":
            raise Killed(point)

    def die_on_write(*args, **kwargs):
        raise Killed("before the quarantine rows were written")

    monkeypatch.setattr(quarantine_module, "insert_frame", die_on_write)
    with pytest.raises(Killed):
        triage_misdelivered(
            root.paths, load_settings(root.paths.settings_file), engine_for(warehouse_url), FAR
        )
    monkeypatch.undo()
    monkeypatch.setattr(ingest_module, "crash_point", die)
    with pytest.raises(Killed):
        steps(root)
    monkeypatch.undo()
    assert list(root.incoming.iterdir()) == [], "everything was moved before the crash"

    steps(root)
    got = sorted(rows(root, "SELECT file_name, reason FROM quarantined_files"))
    assert got == [(feed_name("generic", at(1)), "conflicting_redelivery")] + [
        (f"stray-{n}.txt", "bad_file_name") for n in range(5)
    ]


def _tamper(path: Path, body: bytes, *, sidecar: bool) -> None:
    path.chmod(0o644)
    path.write_bytes(body)
    if sidecar:
        path.with_name(path.name + ".sha256").write_text(f"{hashlib.sha256(body).hexdigest()}  {path.name}\n")


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["deleted", "altered_with_its_sidecar"])
def test_replay_stops_naming_a_missing_or_altered_archived_feed(data_root: DataRoot, damage: str) -> None:
    for d in range(3):
        data_root.drop_feed("generic", at(d), [("D1", vin(1), f"S{d}", "U"), ("D1", vin(d + 2), "S", "U")])
    steps(data_root)
    before = snapshot(data_root.paths.warehouse_url)
    victim = data_root.paths.archive / "generic" / "2026" / "11" / "02" / feed_name("generic", at(1))
    if damage == "deleted":
        victim.with_name(victim.name + ".sha256").unlink()
        victim.unlink()
    else:
        _tamper(victim, feed_body([("D1", vin(1), "FORGED", "U")]).encode(), sidecar=True)
    shutil.rmtree(data_root.paths.data_dir / "normalized")
    with pytest.raises(RuntimeError, match=victim.name):
        steps(data_root, mode="replay", replay_from=at(0))
    assert snapshot(data_root.paths.warehouse_url) == before, "nothing was replayed without the feed"


def _history(root: DataRoot, days: range) -> None:
    for d in days:
        root.drop_feed("generic", at(d), [("D1", vin(n), f"S{d}", "U") for n in range(d, d + 4)])
        steps(root)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["stale_copy", "empty", "random_bytes", "flipped_bit"])
def test_a_checkpoint_that_does_not_verify_is_ignored_and_rebuilt(tmp_path: Path, damage: str) -> None:
    reference = make_root(tmp_path / "reference")
    _history(reference, range(6))
    damaged = make_root(tmp_path / "damaged")
    _history(damaged, range(5))
    checkpoints = sorted((damaged.paths.state / "generic").glob("*.parquet"))
    newest = checkpoints[-1]
    data = newest.read_bytes()
    newest.chmod(0o644)
    if damage == "stale_copy":
        newest.write_bytes(checkpoints[0].read_bytes())
    elif damage == "empty":
        newest.write_bytes(b"")
    elif damage == "random_bytes":
        newest.write_bytes(os.urandom(len(data)))
    else:
        newest.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    _history(damaged, range(5, 6))
    assert snapshot(damaged.paths.warehouse_url) == snapshot(reference.paths.warehouse_url)
    assert rows(damaged, "SELECT COUNT(*) FROM service_requests GROUP BY vin HAVING COUNT(*) > 1") == []


def _waits_on_a_lock(engine, thread: threading.Thread, seen: list) -> bool:
    """PostgreSQL: a session of the database waits on a lock. SQLite (whose lock waits are invisible): the
    thread has sat in the same statement since the previous poll."""
    if engine.dialect.name == "postgresql":
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        with engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar() > 0
    frame = sys._current_frames().get(thread.ident)
    while frame is not None and frame.f_code.co_name not in ("do_execute", "do_executemany"):
        frame = frame.f_back
    before, seen[:] = (seen[0] if seen else None), [frame]
    return frame is not None and frame is before


@pytest.mark.slow
def test_overlapping_normalize_steps_write_rejected_rows_once(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_root(tmp_path, warehouse_url)
    root.drop_feed(
        "generic", at(1), [("D1", "BAD", "S", "U"), ("", vin(1), "S", "U"), ("D1", vin(2), "S", "U")]
    )
    settings = load_settings(root.paths.settings_file)
    engine = engine_for(warehouse_url)
    cfg = settings.sources["generic"]
    ingest_raw_feeds(root.paths, "generic", cfg, set(settings.sources), engine, START, END, FAR)
    first_inside, release = threading.Event(), threading.Event()
    owner: list[int] = []

    def hold_first(point: str) -> None:
        if point == "normalize:before_commit" and not owner:
            owner.append(threading.get_ident())
            first_inside.set()
            release.wait(60)

    monkeypatch.setattr(normalization_module, "crash_point", hold_first)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            normalize_window(root.paths, "generic", cfg, engine, START, END)
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=run)
    first.start()
    assert first_inside.wait(60)
    second = threading.Thread(target=run)
    second.start()
    seen: list = []
    wait_for(
        lambda: _waits_on_a_lock(engine, second, seen),
        "the second step waiting in its write on the first's uncommitted rows",
        seconds=60,
    )
    release.set()
    first.join(120)
    second.join(120)
    assert errors == []
    got = rows(root, "SELECT line_number, reason FROM rejected_rows ORDER BY line_number")
    assert got == [(2, "invalid_vin"), (3, "missing_dealer")]


@pytest.mark.slow
def test_a_quarantined_newest_feed_is_reported_once_not_reprocessed(data_root: DataRoot) -> None:
    data_root.drop_feed("generic", at(1), [("D1", vin(1), "S", "U")])
    steps(data_root)
    data_root.drop(feed_name("generic", at(2)), b"DealerID,VIN\n\xff\xfe\n")
    raw, _ = steps(data_root)
    assert [(q.file_name, q.reason) for q in raw.quarantined] == [
        (feed_name("generic", at(2)), "undecodable")
    ]
    engine = engine_for(data_root.paths.warehouse_url)
    assert pending_partitions(data_root.paths, "generic", engine) == []
    again, _ = steps(data_root)
    assert again.quarantined == []
    assert rows(data_root, "SELECT file_name, reason FROM quarantined_files") == [
        (feed_name("generic", at(2)), "undecodable")
    ]


GUARDED = """
sources:
  generic:
    layout: generic
    track_stock_no_and_client: {mode: never}
    auto_close: {mode: after_days, days: 3}
    auto_close_guard: {max_fraction: 0.5, min_active: 10}
    client_dealer_mappings:
      - {client: Client One, dealer_id: D1, service_request_type: Recon}
"""


def _vehicles(vins: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "dealer_id": ["D1"] * len(vins),
            "vin": vins,
            "stock_no": ["S"] * len(vins),
            "system_code": ["U"] * len(vins),
        }
    )


def _apply(history: list[tuple[int, list[str]]]):
    cfg = parse_settings(GUARDED).sources["generic"]
    feeds = [(FeedRef("generic", at(d), feed_name("generic", at(d))), _vehicles(v)) for d, v in history]
    return apply_feeds(empty_state(), feeds, cfg)


def test_rule8_amended_mixed_ages_a_truncated_feed_is_held() -> None:
    old = [vin(n) for n in range(10)]
    young = [vin(n) for n in range(10, 20)]
    out = _apply([(0, old), (2, old + young), (4, old[:1])])
    last = out.guard.filter(pl.col("feed_as_of") == at(4))
    assert last.select("dealer_id", "active", "to_close", "held").rows() == [("D1", 20, 9, True)]
    assert out.events.filter(pl.col("event") == "auto_closed").height == 0
    assert out.events.filter(pl.col("event") == "close_held").height == 9


def test_rule8_amended_new_vins_in_a_truncated_feed_do_not_dilute_the_measure() -> None:
    old = [vin(n) for n in range(20)]
    new = [vin(n, prefix="2FTFW1E5") for n in range(20)]
    out = _apply([(0, old), (4, old[:1] + new)])
    last = out.guard.filter(pl.col("feed_as_of") == at(4))
    assert last.select("dealer_id", "active", "to_close", "held").rows() == [("D1", 20, 19, True)]
    assert out.events.filter(pl.col("event") == "auto_closed").height == 0


def test_rule8_amended_a_feed_that_lacks_few_pre_existing_vins_closes_them() -> None:
    old = [vin(n) for n in range(20)]
    out = _apply([(0, old), (4, old[5:])])
    last = out.guard.filter(pl.col("feed_as_of") == at(4))
    assert last.select("dealer_id", "active", "to_close", "held").rows() == [("D1", 20, 5, False)]
    assert out.events.filter(pl.col("event") == "auto_closed").height == 5
