"""The drop zone under an operator's worst day: files still being written, unreadable files, links,
FIFOs, names of 255 bytes or ending in a newline, NUL bytes. One bad file never holds up the others."""

from __future__ import annotations

import builtins
import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from dealer_assets.core.env import DealerEnv
from dealer_assets.core.warehouse import engine_for
from dealer_assets.dms import tables as t
from dealer_assets.dms.apply_feeds import reconcile
from dealer_assets.dms.domain.feed_names import classify, parse_feed_name
from dealer_assets.dms.ingest import ingest_raw_feeds
from dealer_assets.dms.normalize_feeds import normalize_window
from dealer_assets.dms.quarantine import triage_misdelivered
from dealer_assets.dms.settings import load_settings
from dealer_assets_tests.support import HEADER, DataRoot, at, feed_body, feed_name, make_root, vin

FAR = datetime(2030, 1, 1, tzinfo=UTC)
START, END = at(0, 0), at(10, 0)
IMMEDIATE = """
sources:
  generic:
    layout: generic
    track_stock_no_and_client: {mode: for_days, days: 3}
    auto_close: {mode: immediately}
    vehicle_type_mappings:
      - {system_code: U, vehicle_type: Used, service_request_type: Used Recon}
    client_dealer_mappings:
      - {client: Client One, dealer_id: D1, service_request_type: Recon}
"""


def process(root: DataRoot) -> dict:
    """Triage, then the three DMS steps over the whole window, as catch-up runs them (without Dagster)."""
    settings = load_settings(root.paths.settings_file)
    engine = engine_for(root.paths.warehouse_url)
    cfg = settings.sources["generic"]
    triage_misdelivered(root.paths, settings, engine, FAR)
    raw = ingest_raw_feeds(root.paths, "generic", cfg, set(settings.sources), engine, START, END, FAR)
    normalize_window(root.paths, "generic", cfg, engine, START, END)
    rec = reconcile(root.paths, "generic", cfg, engine, start=START, end=END, mode="incremental")
    return {"raw": raw, "reconcile": rec}


def rows(root: DataRoot, sql: str) -> list[tuple]:
    with engine_for(root.paths.warehouse_url).connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]


def everything_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())


def test_a_file_still_being_written_is_not_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_root(tmp_path, settings=IMMEDIATE)
    monkeypatch.setenv("DEALER_SETTLE_SECONDS", "5")
    located = {"data_dir": root.paths.data_dir, "settings_file": root.paths.settings_file}
    root.paths = DealerEnv.load().model_copy(update=located).paths()
    vins = [vin(n) for n in range(20)]
    root.drop_feed("generic", at(1), [("D1", v, "S", "U") for v in vins])
    old = os.stat(root.incoming / feed_name("generic", at(1))).st_mtime - 60
    os.utime(root.incoming / feed_name("generic", at(1)), (old, old))
    process(root)

    body = feed_body([("D1", v, "S", "U") for v in vins[:19]]).encode()
    growing = root.incoming / feed_name("generic", at(2))
    with open(growing, "wb") as writer:
        writer.write(body[: int(len(body) * 0.85)])
        writer.flush()
        report = process(root)
        assert report["raw"].archived == [] and report["reconcile"].applied == []
        assert growing.exists(), "a file a writer may still hold is never unlinked"
        assert rows(root, "SELECT COUNT(*) FROM service_requests WHERE status = 'closed'") == [(0,)]
        writer.write(body[int(len(body) * 0.85) :])
    settled = os.stat(growing).st_mtime - 60
    os.utime(growing, (settled, settled))
    report = process(root)
    assert report["raw"].archived == [growing.name] and not growing.exists()
    archived = root.paths.archive / "generic" / "2026" / "11" / "03" / growing.name
    assert archived.read_bytes() == body
    assert rows(root, "SELECT vin FROM service_requests WHERE status = 'closed'") == [(vins[19],)]


def test_a_file_that_changes_while_it_is_copied_stays(tmp_path: Path) -> None:
    from dealer_assets.core.landing import ChangedWhileReading, Snapshot, copy_verified

    path = tmp_path / "generic-20261102T120000Z.csv"
    path.write_bytes(b"DealerID,VIN,SystemCode\n")
    listed = Snapshot.of(os.lstat(path))
    with open(path, "ab") as writer:
        writer.write(b"D1,X,U\n")
    with pytest.raises(ChangedWhileReading):
        copy_verified(path, tmp_path / "copy", listed)
    assert Snapshot.of(os.lstat(path)).settled(0.5, now=os.lstat(path).st_mtime + 1)
    assert not Snapshot.of(os.lstat(path)).settled(5, now=os.lstat(path).st_mtime + 1)


def test_a_nul_byte_is_cleaned_the_same_on_both_backends(warehouse_url: str, tmp_path: Path) -> None:
    root = make_root(tmp_path, warehouse_url)
    root.drop_feed("generic", at(1), [("D1", vin(1), "S1", "U")])
    root.drop_feed("generic", at(2), [("D1", vin(1), "S\x002", "U"), ("D\x001", vin(2), "T\x00", "U")])
    root.drop_feed("generic", at(3), [("D1", vin(1), "S3", "U"), ("D1", vin(2), "T", "U")])
    report = process(root)
    assert len(report["reconcile"].applied) == 3
    got = rows(root, "SELECT vin, dealer_id, stock_no FROM service_requests ORDER BY vin")
    assert got == [(vin(1), "D1", "S3"), (vin(2), "D1", "T")]
    details = rows(root, "SELECT details FROM service_request_events WHERE event = 'stock_no_updated'")
    assert sorted(d for (d,) in details) == [
        '{"from":"S1","to":"S2"}',
        '{"from":"S2","to":"S3"}',
    ]


def test_an_unreadable_file_is_left_and_reported_while_the_others_flow(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_root(tmp_path, warehouse_url)
    root.drop_feed("generic", at(1), [("D1", vin(1), "S1", "U")])
    locked = root.drop_feed("generic", at(2), [("D1", vin(2), "S1", "U")])
    root.drop_feed("generic", at(3), [("D1", vin(1), "S1", "U"), ("D1", vin(3), "S1", "U")])
    unreadable = root.drop("odd name.csv", "x")
    for path in (locked, unreadable):
        path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the two files refuse as they would for the service
        denied = {str(locked), str(unreadable)}
        real_open, real_os_open = builtins.open, os.open

        def refuse(path, *args, **kwargs):
            if str(path) in denied:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        def refuse_os(path, *args, **kwargs):
            if str(path) in denied:
                raise PermissionError(13, "Permission denied", str(path))
            return real_os_open(path, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refuse)
        monkeypatch.setattr(os, "open", refuse_os)
    report = process(root)
    assert [Path(f).name for f in report["reconcile"].applied] == [
        feed_name("generic", at(1)),
        feed_name("generic", at(3)),
    ]
    assert [(x.file_name, x.detail) for x in report["raw"].left] == [
        (locked.name, "cannot be read: Permission denied")
    ]
    left: list = []
    settings = load_settings(root.paths.settings_file)
    triage_misdelivered(root.paths, settings, engine_for(root.paths.warehouse_url), FAR, left)
    assert [(x.file_name, x.detail) for x in left] == [("odd name.csv", "cannot be read: Permission denied")]
    assert locked.exists() and unreadable.exists()


def test_names_of_255_bytes_are_quarantined_under_short_names(warehouse_url: str, tmp_path: Path) -> None:
    root = make_root(tmp_path, warehouse_url)
    long_feed = "generic-20261102T120000Z." + "c" * 230
    long_junk = "x" * 251 + ".csv"
    assert len(long_feed.encode()) == len(long_junk.encode()) == 255
    root.drop(long_feed, feed_body([("D1", vin(2), "S", "U")]))
    root.drop(long_junk, "junk")
    root.drop_feed("generic", at(3), [("D1", vin(1), "S", "U")])
    report = process(root)
    assert len(report["reconcile"].applied) == 1
    got = dict(rows(root, "SELECT file_name, reason FROM quarantined_files"))
    assert got == {long_feed: "bad_file_name", long_junk: "bad_file_name"}
    assert list(root.incoming.iterdir()) == []
    assert all(len(p.name.encode()) <= 255 for p in root.paths.quarantine.iterdir())
    assert not list(root.paths.archive.rglob("*" + "c" * 200))
    verdict = classify(long_feed, {"generic"}, root.paths.history_start, FAR)
    assert "255 bytes long" in verdict.detail


def test_a_name_ending_in_a_newline_is_not_a_feed(data_root: DataRoot) -> None:
    name = feed_name("generic", at(1))
    assert parse_feed_name(name + "\n") is None and parse_feed_name(name) is not None
    data_root.drop(name + "\n", feed_body([("D1", vin(1), "S", "U")]))
    report = process(data_root)
    assert report["reconcile"].applied == []
    assert rows(data_root, "SELECT file_name, reason FROM quarantined_files") == [
        (name + "\n", "bad_file_name")
    ]
    assert rows(data_root, "SELECT COUNT(*) FROM service_request_events") == [(0,)]
    assert all("\n" not in p.name for p in data_root.paths.quarantine.iterdir())


def test_links_and_fifos_are_never_followed(data_root: DataRoot, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text(HEADER + f"D1,{vin(9)},TOP-SECRET,U,2022,FORD,F150,XL,1,2026-10-01\n")
    (data_root.incoming / feed_name("generic", at(1))).symlink_to(secret)
    (data_root.incoming / "passwd").symlink_to("/etc/passwd")
    os.mkfifo(data_root.incoming / feed_name("generic", at(2)))
    data_root.drop_feed("generic", at(3), [("D1", vin(1), "S", "U")])
    report = process(data_root)
    assert len(report["reconcile"].applied) == 1
    assert b"TOP-SECRET" not in everything_under(data_root.paths.data_dir)
    assert b"root:" not in everything_under(data_root.paths.data_dir)
    got = dict(rows(data_root, "SELECT file_name, reason FROM quarantined_files"))
    assert got == {
        feed_name("generic", at(1)): "not_a_regular_file",
        feed_name("generic", at(2)): "not_a_regular_file",
        "passwd": "not_a_regular_file",
    }
    assert list(data_root.incoming.iterdir()) == []
    kept = [p for p in data_root.paths.quarantine.iterdir() if not p.name.endswith(".json")]
    assert len(kept) == 3 and sum(p.is_symlink() for p in kept) == 2
    assert secret.read_text().startswith(HEADER)
    with engine_for(data_root.paths.warehouse_url).connect() as conn:
        archived = conn.execute(sa.select(t.feed_files.c.file_name)).scalars().all()
    assert archived == [feed_name("generic", at(3))]


@pytest.mark.slow
def test_the_sensor_asks_for_settled_files_and_sends_links_to_the_quarantine(
    tmp_path: Path,
) -> None:
    import dagster as dg

    from dealer_assets.core.env import DealerEnv
    from dealer_assets.definitions import build_definitions

    root = make_root(tmp_path / "root")
    root.paths = dataclasses.replace(root.paths, settle_seconds=30.0)
    defs = build_definitions(DealerEnv.for_paths(root.paths))
    sensor = defs.resolve_sensor_def("dms_drop_zone_sensor")
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))

    def tick(cursor):
        ctx = dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
        )
        return sensor.evaluate_tick(ctx)

    young = root.drop_feed("generic", at(1), [("D1", vin(1), "S1", "U")])
    assert tick(None).run_requests == []
    old = young.stat().st_mtime - 60
    os.utime(young, (old, old))
    first = tick(None)
    assert [r.job_name for r in first.run_requests] == ["dms_generic_feeds_job"]
    (root.incoming / "passwd").symlink_to("/etc/passwd")
    second = tick(first.cursor)
    assert [r.job_name for r in second.run_requests] == ["dms_misdelivered_feeds_job"]


def test_an_archive_file_altered_after_intake_is_caught_by_the_same_store(data_root: DataRoot) -> None:
    """The store trusts the digest it took while archiving only while the file is the one it wrote."""
    from dealer_assets.dms.archive import FeedArchive

    name = feed_name("generic", at(0, 1))
    data_root.drop_feed("generic", at(0, 1), [("D1", vin(1), "S1", "U")])
    store = FeedArchive(data_root.paths)
    delivered = data_root.paths.incoming / name
    assert store.intake(delivered, parse_feed_name(name)).outcome == "archived"
    archived = store.archived(parse_feed_name(name))
    with store.verified(archived) as path:
        assert path.read_bytes().startswith(HEADER.encode())
    os.chmod(archived.path, 0o644)
    archived.path.write_bytes(archived.path.read_bytes().replace(b"S1", b"S2"))
    with pytest.raises(OSError, match="archive corrupted"), store.verified(archived):
        pass


def test_an_archive_file_changed_while_it_is_read_is_caught(data_root: DataRoot) -> None:
    """What was parsed is what was verified: a file written to in between fails the read."""
    from dealer_assets.dms.archive import FeedArchive

    name = feed_name("generic", at(0, 1))
    data_root.drop_feed("generic", at(0, 1), [("D1", vin(1), "S1", "U")])
    store = FeedArchive(data_root.paths)
    assert store.intake(data_root.paths.incoming / name, parse_feed_name(name)).outcome == "archived"
    archived = store.archived(parse_feed_name(name))
    with pytest.raises(OSError, match="archive changed while read"), store.verified(archived) as path:
        os.chmod(path, 0o644)
        with open(path, "ab") as handle:
            handle.write(b"D2,V2,S2,U\n")
