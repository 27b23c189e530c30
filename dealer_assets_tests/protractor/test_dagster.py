"""The Dagster side: lineage, materializations with table metadata, checks, the sensor, the backfill job, and
2,000 callbacks arriving while a snapshot run is going on."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from dealer_assets.core.env import DealerEnv, DealerPaths
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.warehouse import engine_for
from dealer_assets.protractor.defs import build_defs
from dealer_assets.protractor.defs.assets import EVENTS, LINES, LINKS, SNAPSHOTS
from dealer_assets.protractor.defs.automation import BACKFILL_JOB, resync_due
from dealer_assets.protractor.fake import FakeProtractor

from .conftest import NORTH


@pytest.fixture
def setup(tmp_path: Path, fake: FakeProtractor, settings_file: Path, keys, warehouse_url: str):
    text = settings_file.read_text().replace("  base_url:", "  resync_every_hours: 3\n  base_url:")
    settings_file.write_text(text)
    paths = DealerPaths(tmp_path, settings_file, datetime(2026, 11, 1, tzinfo=UTC), warehouse_url)
    defs = build_defs(DealerEnv.for_paths(paths))
    resources = {
        "dealer_env": DealerEnvironment(data_dir=str(tmp_path), settings_file=str(settings_file),
                                        history_start="2026-11-01T00:00:00Z"),
        "warehouse": WarehouseResource(url=warehouse_url),
        **(defs.resources or {}),
    }  # fmt: skip
    return defs, resources, engine_for(warehouse_url)


def _full(defs: dg.Definitions, resources: dict) -> dg.Definitions:
    return dg.Definitions(assets=defs.assets, jobs=defs.jobs, sensors=defs.sensors, schedules=defs.schedules,
                          resources=resources)  # fmt: skip


def _assets(defs: dg.Definitions) -> list:
    return list(defs.assets)


def _count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


def test_lineage_and_definitions_load(setup) -> None:
    defs, resources, _ = setup
    full = _full(defs, resources)
    dg.Definitions.validate_loadable(full)
    graph = full.resolve_asset_graph()
    assert graph.get(SNAPSHOTS).parent_keys == {EVENTS}
    assert graph.get(LINKS).parent_keys == {SNAPSHOTS, dg.AssetKey(["dms", "generic", "service_requests"])}
    schedule = full.get_schedule_def("protractor_resync_schedule")
    assert schedule.cron_schedule == "7 * * * *" and "every 3 h" in schedule.description


@pytest.mark.parametrize("every", range(1, 169))
def test_resync_schedule_keeps_every_interval_from_1_to_168_hours(every: int) -> None:
    """Five weeks of hourly ticks from a month end across a year end: every gap between resyncs is exact."""
    start = datetime(2026, 12, 28, 0, 7, tzinfo=UTC)
    ticks = [start + timedelta(hours=h) for h in range(24 * 35)]
    runs = [tick for tick in ticks if resync_due(tick, every)]
    gaps = {b - a for a, b in itertools.pairwise(runs)}
    assert gaps == {timedelta(hours=every)}
    assert runs[0] - start < timedelta(hours=every)


def test_materialize_metadata_checks_and_sweep(setup, fake: FakeProtractor) -> None:
    defs, resources, engine = setup
    result = dg.materialize(_assets(defs), resources=resources, run_config={
        "ops": {"protractor_work_orders": {"config": {"mode": "sweep"}}}})  # fmt: skip
    assert result.success
    for key in (EVENTS, SNAPSHOTS, LINES, LINKS):
        events = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
        metadata = events[-1].materialization.metadata
        assert {"dagster/row_count", "dagster/table_name", "dagster/column_schema"} <= set(metadata)
    snap_meta = [e for e in result.get_asset_materialization_events() if e.asset_key == SNAPSHOTS][
        -1
    ].materialization.metadata
    total = sum(len(a.shop.orders) for a in fake.accounts.values())
    assert (
        snap_meta["dagster/row_count"].value == total
        and snap_meta["dagster/table_name"].value == "work_order_snapshots"
    )
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    mapped = checks["statuses_and_users_mapped"]
    assert not mapped.passed and mapped.severity == dg.AssetCheckSeverity.WARN
    unmapped = mapped.metadata["unmapped"].value
    assert "south" in unmapped and any(v.startswith("status: ") for v in unmapped["south"])
    assert "user: Morgan Diaz" in unmapped.get("north", []) + unmapped.get("south", [])
    assert checks["one_current_version"].passed

    again = dg.materialize(_assets(defs), resources=resources, run_config={
        "ops": {"protractor_work_orders": {"config": {"mode": "sweep"}}}})  # fmt: skip
    assert again.success and _count(engine, "SELECT count(*) FROM work_order_snapshots") == total, (
        "a re-run writes nothing"
    )


def test_sensor_requests_a_run_for_new_callbacks(setup, fake: FakeProtractor, tmp_path: Path) -> None:
    defs, resources, engine = setup
    sensor = _full(defs, resources).get_sensor_def("protractor_events_sensor")
    instance = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(resources=resources, instance=instance) as ctx:
        first = sensor(ctx)
        assert isinstance(first, dg.RunRequest) and first.job_name == "protractor_resync_job", (
            "the initial load"
        )
    assert dg.materialize(_assets(defs), resources=resources, run_config={
        "ops": {"protractor_work_orders": {"config": {"mode": "sweep"}}}}).success  # fmt: skip
    with dg.build_sensor_context(resources=resources, instance=instance) as ctx:
        assert isinstance(sensor(ctx), dg.SkipReason)
    shop = fake.accounts["north"].shop
    wo = next(iter(shop.orders))
    fake.notify("north", [shop.set_stage(wo, "Work In Progress", datetime(2026, 11, 22, 8))])
    with dg.build_sensor_context(resources=resources, instance=instance) as ctx:
        request = sensor(ctx)
        assert isinstance(request, dg.RunRequest) and request.job_name == "protractor_events_job"
        cursor = ctx.cursor
    with dg.build_sensor_context(resources=resources, cursor=cursor, instance=instance) as ctx:
        assert isinstance(sensor(ctx), dg.SkipReason), "the same notifications are not asked for twice"
    assert dg.materialize(_assets(defs), resources=resources).success
    assert _count(engine, "SELECT count(*) FROM protractor_events WHERE processed_at IS NULL") == 0
    with dg.build_sensor_context(resources=resources, cursor=cursor, instance=instance) as ctx:
        assert isinstance(sensor(ctx), dg.SkipReason)
    assert (
        _count(engine, f"SELECT count(*) FROM work_order_snapshots WHERE work_order_id = '{wo.lower()}'") == 2
    )


@pytest.mark.slow
def test_2000_callbacks_during_a_snapshot_run_none_lost(setup, fake: FakeProtractor, receiver: str) -> None:
    """Every callback is answered 200 and stored. A connection dropped before an answer (the receiver shares
    this busy process with the run) is sent again, as a webhook sender does with a callback it got no answer
    for; any other error or status is reported by name."""
    defs, resources, engine = setup
    ids = [str(uuid.UUID(int=10_000 + i)) for i in range(2000)]
    codes: list[int | str] = []

    async def send() -> None:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64), timeout=30) as client:
            sem = asyncio.Semaphore(64)

            async def one(object_id: str) -> None:
                async with sem:
                    params = {"connectionId": NORTH[0], "apiKey": NORTH[1], "type": "Contact", "id": object_id,
                              "operation": "Update"}  # fmt: skip
                    for attempt in range(3):
                        try:
                            codes.append((await client.get(receiver, params=params)).status_code)
                            return
                        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError) as exc:
                            if attempt == 2:
                                codes.append(type(exc).__name__)
                        except httpx.HTTPError as exc:
                            codes.append(type(exc).__name__)
                            return

            await asyncio.gather(*(one(i) for i in ids))

    config = {"ops": {"protractor_work_orders": {"config": {"mode": "sweep"}}}}
    sender = threading.Thread(target=lambda: asyncio.run(send()))
    sender.start()
    time.sleep(0.2)
    assert dg.materialize(_assets(defs), resources=resources, run_config=config).success
    sender.join(600)
    assert not sender.is_alive(), "the 2,000 callbacks were all answered"
    assert dg.materialize(_assets(defs), resources=resources).success
    assert Counter(codes) == {200: 2000}
    assert (
        _count(engine, "SELECT count(DISTINCT object_id) FROM protractor_events WHERE type = 'Contact'")
        == 2000
    )
    assert _count(engine, "SELECT count(*) FROM protractor_events WHERE processed_at IS NULL") == 0


def test_backfill_job_refetches_a_day(setup, fake: FakeProtractor) -> None:
    defs, resources, engine = setup
    job = _full(defs, resources).resolve_job_def(BACKFILL_JOB)
    first = job.execute_in_process(partition_key="2026-11-16", instance=dg.DagsterInstance.ephemeral())
    assert first.success
    day = _count(engine, "SELECT count(*) FROM work_order_snapshots")
    assert day > 0
    assert job.execute_in_process(partition_key="2026-11-16", instance=dg.DagsterInstance.ephemeral()).success
    assert _count(engine, "SELECT count(*) FROM work_order_snapshots") == day, (
        "re-fetching the same day writes nothing"
    )
    mats = [e for e in first.get_asset_materialization_events() if e.asset_key == SNAPSHOTS]
    assert mats and mats[0].materialization.metadata["written"].value == day
    assert {"dagster/row_count", "dagster/table_name", "dagster/column_schema"} <= set(
        mats[0].materialization.metadata
    )


def test_sensor_waits_for_a_queued_run(setup, fake: FakeProtractor) -> None:
    defs, resources, _ = setup
    sensor = _full(defs, resources).get_sensor_def("protractor_events_sensor")
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize(_assets(defs), resources=resources, run_config={
        "ops": {"protractor_work_orders": {"config": {"mode": "sweep"}}}}).success  # fmt: skip
    instance.add_run(dg.DagsterRun(job_name="protractor_events_job", status=dg.DagsterRunStatus.NOT_STARTED))
    shop = fake.accounts["south"].shop
    fake.notify("south", [shop.set_stage(next(iter(shop.orders)), "Approved", datetime(2026, 11, 22, 9))])
    time.sleep(0.5)
    with dg.build_sensor_context(resources=resources, instance=instance) as ctx:
        skipped = sensor(ctx)
    assert isinstance(skipped, dg.SkipReason) and "queued run" in skipped.skip_message
