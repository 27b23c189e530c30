"""Exact replay and idempotence of the reconciled tables, on SQLite and PostgreSQL, with random histories."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealer_assets.core.warehouse import dispose_engines, engine_for
from dealer_assets.dms.apply_feeds import reconcile
from dealer_assets.dms.ingest import ingest_raw_feeds
from dealer_assets.dms.normalize_feeds import normalize_window
from dealer_assets.dms.settings import load_settings
from dealer_assets_tests.support import TABLES, DataRoot, at, make_root, snapshot, vin

pytestmark = pytest.mark.slow

FAR = datetime(2030, 1, 1, tzinfo=UTC)


def process(
    root: DataRoot,
    start: datetime,
    end: datetime,
    mode: str,
    replay_from: datetime | None = None,
    source: str = "generic",
) -> None:
    """The three DMS steps for a window, as the source's job runs them (without Dagster)."""
    settings_ = load_settings(root.paths.settings_file)
    engine = engine_for(root.paths.warehouse_url)
    cfg = settings_.sources[source]
    ingest_raw_feeds(root.paths, source, cfg, set(settings_.sources), engine, start, end, received_at=FAR)
    normalize_window(root.paths, source, cfg, engine, start, end)
    reconcile(root.paths, source, cfg, engine, start=start, end=end, mode=mode, replay_from=replay_from)


def hour(when: datetime) -> tuple[datetime, datetime]:
    start = when.replace(minute=0, second=0, microsecond=0)
    return start, start + timedelta(hours=1)


SETTINGS_VARIANTS = [
    ("{mode: for_days, days: 2}", "{mode: after_days, days: 2}", ""),
    ("{mode: never}", "{mode: immediately}", "auto_close_guard: {max_fraction: 0.5, min_active: 3}"),
    ("{mode: for_days, days: 1}", "{mode: never}", ""),
]


def settings_text(variant: int) -> str:
    track, close, guard = SETTINGS_VARIANTS[variant]
    return f"""
sources:
  generic:
    layout: generic
    track_stock_no_and_client: {track}
    auto_close: {close}
    {guard}
    vehicle_type_mappings:
      - {{system_code: U, vehicle_type: Used, service_request_type: Used Recon}}
    client_dealer_mappings:
      - {{client: Client One, dealer_id: D1, service_request_type: Recon}}
      - {{client: Client Two, dealer_id: D2, service_request_type: Recon, ignore_if_sr_with_vin_exists: true, ignore_days: 2}}
"""


feed_rows = st.lists(
    st.tuples(
        st.sampled_from(["D1", "D2", "D3"]),
        st.integers(0, 7),
        st.sampled_from(["S1", "S2", ""]),
        st.sampled_from(["U", "N"]),
    ),
    max_size=7,
)
histories = st.lists(st.tuples(st.integers(1, 40), feed_rows), min_size=1, max_size=6)


def materialize_history(root: DataRoot, history: list[tuple[int, list]]) -> list[datetime]:
    when = datetime(2026, 11, 1, tzinfo=UTC)
    stamps = []
    for gap_hours, rows in history:
        when += timedelta(hours=gap_hours)
        stamps.append(when)
        root.drop_feed("generic", when, [(d, vin(v), s, c) for d, v, s, c in rows])
    return stamps


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories, variant=st.integers(0, 2), rerun=st.integers(0, 5))
def test_one_by_one_equals_one_backfill_and_reruns_change_nothing(tmp_path_factory, history, variant, rerun):
    a = make_root(tmp_path_factory.mktemp("a"), settings=settings_text(variant))
    b = make_root(tmp_path_factory.mktemp("b"), settings=settings_text(variant))
    stamps = materialize_history(a, history)
    materialize_history(b, history)
    for when in stamps:
        process(a, *hour(when), mode="incremental")
    process(b, stamps[0].replace(minute=0), FAR, mode="replay")
    one_by_one, backfill = snapshot(a.paths.warehouse_url), snapshot(b.paths.warehouse_url)
    assert one_by_one == backfill

    pick = stamps[rerun % len(stamps)]
    process(a, *hour(pick), mode="replay")
    assert snapshot(a.paths.warehouse_url) == one_by_one

    state = pl.DataFrame(
        one_by_one["service_requests"],
        orient="row",
        schema=[
            "sr_id",
            "source",
            "vin",
            "dealer_id",
            "client",
            "stock_no",
            "vehicle_type",
            "service_request_type",
            "status",
            "created_at",
            "updated_at",
            "closed_at",
            "close_reason",
            "last_seen_at",
            "auto_close_at",
            "missing_since",
        ],
    )
    active = state.filter(pl.col("status") == "active")
    assert active["vin"].is_unique().all(), "two active SRs for one VIN"
    for closed_at, v in state.filter(pl.col("status") == "closed").select("closed_at", "vin").iter_rows():
        seen = [
            w
            for w, (_, rows) in zip(stamps, history, strict=True)
            if w == closed_at and any(vin(r[1]) == v for r in rows if r[0])
        ]
        assert not seen, f"{v} closed at {closed_at} while in that feed"
    dispose_engines()


def test_replay_restores_corruption_and_an_emptied_warehouse(warehouse_url, tmp_path):
    root = make_root(tmp_path, warehouse_url)
    days = [
        [("D1", vin(1), "S1", "U"), ("D1", vin(2), "S2", "U")],
        [("D1", vin(2), "S9", "U")],
        [("D1", vin(2), "S9", "U"), ("D2", vin(3), "S3", "U")],
        [("D2", vin(3), "S3", "U")],
    ]
    for d, rows in enumerate(days):
        root.drop_feed("generic", at(d), rows)
        process(root, *hour(at(d)), mode="incremental")
    original = snapshot(warehouse_url)
    assert len(original["service_requests"]) == 3

    engine = engine_for(warehouse_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE service_request_state SET stock_no = 'CORRUPT', status = 'closed' WHERE vin = :v"
            ),
            {"v": vin(2)},
        )
    process(root, at(1).replace(hour=0), at(2), mode="replay")
    assert snapshot(warehouse_url) == original

    with engine.begin() as conn:
        for table in [*(t for t in TABLES if t != "service_requests"), "service_request_state"]:
            conn.execute(sa.text(f"DELETE FROM {table}"))
    shutil.rmtree(root.paths.state)
    process(root, at(0).replace(hour=0), FAR, mode="replay")
    assert snapshot(warehouse_url) == original


def test_changed_mapping_changes_the_replayed_tables(data_root):
    for d in range(2):
        data_root.drop_feed("generic", at(d), [("D1", vin(1), "S1", "U"), ("D2", vin(2), "S2", "N")])
        process(data_root, *hour(at(d)), mode="incremental")
    before = snapshot(data_root.paths.warehouse_url)["service_requests"]
    assert {r[2]: r[7] for r in before} == {vin(1): "Used Recon", vin(2): "Recon"}
    data_root.settings(
        Path(data_root.paths.settings_file)
        .read_text()
        .replace("Used Recon", "Certified Recon")
        .replace(
            "{client: Client Two, dealer_id: D2, service_request_type: Recon}",
            "{client: Client Deux, dealer_id: D2, service_request_type: Recon}",
        )
    )
    process(data_root, at(0).replace(hour=0), FAR, mode="replay")
    after = snapshot(data_root.paths.warehouse_url)["service_requests"]
    assert {r[2]: (r[4], r[7]) for r in after} == {
        vin(1): ("Client One", "Certified Recon"),
        vin(2): ("Client Deux", "Recon"),
    }


def test_late_feed_is_recorded_not_applied_until_a_replay(data_root):
    url = data_root.paths.warehouse_url
    data_root.drop_feed("generic", at(2), [("D1", vin(1), "S1", "U")])
    process(data_root, *hour(at(2)), mode="incremental")
    data_root.drop_feed("generic", at(1), [("D1", vin(2), "S2", "U")])
    process(data_root, *hour(at(1)), mode="incremental")
    tables = snapshot(url)
    assert [r[2] for r in tables["service_requests"]] == [vin(1)]
    assert [(r[2], r[1]) for r in tables["late_feeds"]] == [("generic-20261102T120000Z.csv", at(1))]

    from dealer_assets.dms.quality import late_feeds

    verdict = late_feeds(engine_for(url), "generic")
    assert not verdict.passed and "generic-20261102T120000Z.csv" in verdict.description
    assert "dealer-assets replay --from 2026-11-02T12:00:00Z" in verdict.description

    process(data_root, at(1).replace(hour=0), FAR, mode="replay", replay_from=at(1))
    tables = snapshot(url)
    assert sorted(r[2] for r in tables["service_requests"]) == sorted([vin(1), vin(2)])
    assert tables["late_feeds"] == []
    assert late_feeds(engine_for(url), "generic").passed


def test_replay_from_an_as_of_inside_a_partition_keeps_earlier_feeds(data_root):
    early, late = at(0).replace(minute=10), at(0).replace(minute=40)
    data_root.drop_feed("generic", early, [("D1", vin(1), "S1", "U")])
    data_root.drop_feed("generic", late, [("D1", vin(1), "S2", "U"), ("D1", vin(2), "S3", "U")])
    process(data_root, *hour(early), mode="incremental")
    original = snapshot(data_root.paths.warehouse_url)
    assert len(original["applied_feeds"]) == 2
    process(data_root, *hour(early), mode="replay", replay_from=late)
    assert snapshot(data_root.paths.warehouse_url) == original
