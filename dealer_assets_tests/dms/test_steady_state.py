"""A steady hour costs what changed: the SRs written, the checkpoint kept, and the contract's rows unchanged."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import sqlalchemy as sa

from dealer_assets.core.warehouse import engine_for
from dealer_assets.dms import quality
from dealer_assets.dms.apply_feeds import ReconcileReport, reconcile
from dealer_assets.dms.archive import FeedArchive
from dealer_assets.dms.checkpoints import Checkpoints
from dealer_assets.dms.domain.state import SR_SCHEMA
from dealer_assets.dms.domain.stored import changed_rows, read_form, stored_form
from dealer_assets.dms.domain.vehicles import TS
from dealer_assets.dms.ingest import ingest_raw_feeds
from dealer_assets.dms.ledger import contract_rows
from dealer_assets.dms.normalize_feeds import normalize_window
from dealer_assets.dms.settings import load_settings
from dealer_assets_tests.support import DataRoot, at, make_root, snapshot, vin

FAR = datetime(2030, 1, 1, tzinfo=UTC)
INVENTORY = [("D1" if n % 2 else "D2", vin(n), f"S{n}", "U") for n in range(1, 31)]


def step(root: DataRoot, when: datetime, mode: str = "incremental", replay_from=None) -> ReconcileReport:
    settings = load_settings(root.paths.settings_file)
    engine = engine_for(root.paths.warehouse_url)
    cfg = settings.sources["generic"]
    start, end = when.replace(minute=0), when.replace(minute=0) + timedelta(hours=1)
    ingest_raw_feeds(root.paths, "generic", cfg, set(settings.sources), engine, start, end, received_at=FAR)
    normalize_window(root.paths, "generic", cfg, engine, start, end)
    return reconcile(
        root.paths, "generic", cfg, engine, start=start, end=end, mode=mode, replay_from=replay_from
    )


def churned(hour: int) -> list[tuple[str, str, str, str]]:
    """The inventory after `hour` hours: each hour one vehicle leaves, one arrives, one gets a new stock number."""
    renumbered = {vin(30 - k): f"S{30 - k}-R{k}" for k in range(1, hour + 1)}
    rows = [r for r in INVENTORY if r[1] not in {vin(n) for n in range(1, hour + 1)}]
    rows += [("D1", vin(100 + n), f"N{n}", "U") for n in range(1, hour + 1)]
    return [(d, v, renumbered.get(v, s), c) for d, v, s, c in rows]


@pytest.mark.slow
def test_a_steady_hour_writes_only_the_srs_that_changed(warehouse_url, tmp_path) -> None:
    root = make_root(tmp_path, warehouse_url)
    root.drop_feed("generic", at(0, 0), INVENTORY)
    assert step(root, at(0, 0)).written["service_request_state"] == 30
    for hour in (1, 2, 3):
        root.drop_feed("generic", at(0, hour), churned(hour))
        report = step(root, at(0, hour))
        # the arrival, the departure and the stock change; the previous hour's departure stays as it was
        assert report.written["service_request_state"] == 3, hour

    with engine_for(warehouse_url).connect() as conn:
        rows = contract_rows(conn, "generic")
    last_seen = dict(zip(rows["vin"], rows["last_seen_at"], strict=True))
    assert last_seen[vin(10)] == at(0, 3), "seen by the newest feed"
    assert last_seen[vin(1)] == at(0, 0) and last_seen[vin(3)] == at(0, 2), "departed: last seen before"
    assert last_seen[vin(101)] == at(0, 3)

    incremental = snapshot(warehouse_url)
    step(root, at(0, 0), mode="replay")
    assert snapshot(warehouse_url) == incremental, "a replay of every feed writes the same contract rows"


@pytest.mark.slow
def test_checkpoints_are_a_base_and_deltas_and_a_broken_chain_is_rebuilt(tmp_path) -> None:
    root, clean = make_root(tmp_path / "a"), make_root(tmp_path / "b")
    for target in (root, clean):
        target.drop_feed("generic", at(0, 0), INVENTORY)
        step(target, at(0, 0))
        for hour in (1, 2, 3):
            target.drop_feed("generic", at(0, hour), churned(hour))
            step(target, at(0, hour))
    listing = Checkpoints(root.paths.state, "generic").listing()
    assert [c.parent for c in listing] == [None, at(0, 0), at(0, 1), at(0, 2)]
    sizes = [pl.read_parquet(c.path).height for c in listing]
    assert sizes == [30, 3, 3, 3], "a base of the whole state, then what each hour changed"

    listing[2].path.unlink()  # the delta through hour 2: the chain to hour 3 is broken
    for target in (root, clean):
        target.drop_feed("generic", at(0, 4), churned(4))
        step(target, at(0, 4))
    assert snapshot(root.paths.warehouse_url) == snapshot(clean.paths.warehouse_url)
    assert Checkpoints(root.paths.state, "generic").listing()[-1].parent is None, "rebuilt: a new base"


@pytest.mark.slow
def test_replay_from_the_middle_starts_from_a_delta(tmp_path) -> None:
    root = make_root(tmp_path)
    root.drop_feed("generic", at(0, 0), INVENTORY)
    step(root, at(0, 0))
    for hour in (1, 2, 3):
        root.drop_feed("generic", at(0, hour), churned(hour))
        step(root, at(0, hour))
    before = snapshot(root.paths.warehouse_url)
    # the state before hour 2 can only come from the checkpoint chain: hours 0 and 1 are gone
    shutil.rmtree(root.paths.normalized)
    for archived in FeedArchive(root.paths).archived_feeds("generic", at(0, 0), at(0, 2)):
        archived.path.unlink()
    report = step(root, at(0, 2), mode="replay")
    assert report.applied == [f"generic-20261101T0{h}0000Z.csv" for h in (2, 3)]
    assert snapshot(root.paths.warehouse_url) == before


def _state(rows: list[tuple]) -> pl.DataFrame:
    base = dict.fromkeys(SR_SCHEMA)
    frames = [
        {**base, "sr_id": sr, "source": "generic", "status": status, "last_seen_at": seen}
        for sr, status, seen in rows
    ]
    return pl.DataFrame(frames, schema=SR_SCHEMA)


@pytest.mark.parametrize("newest", [datetime(2026, 11, 1, 3, tzinfo=UTC), None])
def test_stored_form_leaves_out_only_what_the_newest_feed_gives_back(newest) -> None:
    t3, t1 = datetime(2026, 11, 1, 3, tzinfo=UTC), datetime(2026, 11, 1, 1, tzinfo=UTC)
    state = _state([("a", "active", t3), ("b", "active", t1), ("c", "closed", t3)])
    stored = stored_form(state, newest)
    expected_null = ["a"] if newest else []
    assert stored.filter(pl.col("last_seen_at").is_null())["sr_id"].to_list() == expected_null
    assert read_form(stored, newest).equals(state)


def test_changed_rows_are_the_new_and_the_different() -> None:
    t1 = datetime(2026, 11, 1, 1, tzinfo=UTC)
    before = _state([("a", "active", None), ("b", "active", None)])
    after = _state([("a", "active", None), ("b", "active", t1), ("c", "active", None)])
    assert changed_rows(before, after)["sr_id"].to_list() == ["b", "c"]
    assert changed_rows(after, after).is_empty()
    assert after.schema["last_seen_at"] == TS


def test_checks_look_at_what_the_run_wrote(warehouse_url, tmp_path) -> None:
    root = make_root(tmp_path, warehouse_url)
    root.drop_feed("generic", at(0, 0), INVENTORY)
    step(root, at(0, 0))
    root.drop_feed("generic", at(0, 1), churned(1))
    step(root, at(0, 1))
    engine = engine_for(warehouse_url)
    assert quality.duplicate_active(engine, "generic", at(0, 1)).passed
    assert quality.orphan_events(engine, "generic", at(0, 1)).passed
    with (
        engine.begin() as conn
    ):  # a second active SR for the VIN that arrived in hour 1, and an event without SR
        conn.execute(
            sa.text(
                "INSERT INTO service_request_state (sr_id, source, vin, dealer_id, client, status, created_at, "
                "updated_at) SELECT sr_id || '-copy', source, vin, dealer_id, client, status, created_at, updated_at "
                "FROM service_request_state WHERE vin = :v"
            ),
            {"v": vin(101)},
        )
        conn.execute(sa.text("DELETE FROM service_request_state WHERE vin = :v"), {"v": vin(29)})
    duplicates = quality.duplicate_active(engine, "generic", at(0, 1))
    assert not duplicates.passed and duplicates.rows["vin"].to_list() == [vin(101)]
    orphans = quality.orphan_events(engine, "generic", at(0, 1))
    assert not orphans.passed and orphans.rows["event"].to_list() == ["stock_no_updated"]
    assert quality.duplicate_active(engine, "generic", None).passed, (
        "a run that applied no feed created no SR"
    )


def test_a_dealer_no_feed_covered_for_three_days_is_named(tmp_path) -> None:
    root = make_root(tmp_path)
    root.drop_feed("generic", at(0, 0), INVENTORY)
    step(root, at(0, 0))
    root.drop_feed("generic", at(4, 0), [r for r in INVENTORY if r[0] == "D1"])
    report = step(root, at(4, 0))
    verdict = quality.uncovered_dealers(
        engine_for(root.paths.warehouse_url), "generic", report.head, report.per_dealer
    )
    assert not verdict.passed
    assert verdict.rows.rows() == [("D2", 15, at(0, 0))]
    assert "D2 (15 active, last covered 2026-11-01T00:00:00+00:00)" in verdict.description
    root.drop_feed("generic", at(4, 1), INVENTORY)
    report = step(root, at(4, 1))
    assert quality.uncovered_dealers(
        engine_for(root.paths.warehouse_url), "generic", report.head, report.per_dealer
    ).passed


def test_changed_rows_insists_on_the_engines_order() -> None:
    before = _state([("a", "active", None), ("b", "active", None)])
    with pytest.raises(ValueError, match="in their order"):
        changed_rows(before, before.reverse())
    with pytest.raises(ValueError, match="in their order"):
        changed_rows(before, before.head(1))
