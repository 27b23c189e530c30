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

from dealer_assets.protractor.defs.assets import EVENTS, LINES, LINKS, SNAPSHOTS, WORK_ORDERS_OP
from dealer_assets.protractor.defs.jobs import BACKFILL_JOB
from dealer_assets.protractor.defs.schedules import resync_due
from dealer_assets.protractor.fake import FakeProtractor
from dealer_assets_tests.protractor.support import NORTH, Setup, journaled
from dealer_assets_tests.support import wait_for

SWEEP = {"ops": {WORK_ORDERS_OP: {"config": {"mode": "sweep"}}}}


def test_lineage_and_definitions_load(setup: Setup) -> None:
    full = setup.full
    dg.Definitions.validate_loadable(full)
    graph = full.resolve_asset_graph()
    assert graph.get(SNAPSHOTS).parent_keys == {EVENTS}
    assert graph.get(LINKS).parent_keys == {SNAPSHOTS, dg.AssetKey(["dms", "generic", "service_requests"])}
    schedule = full.resolve_schedule_def("protractor_resync_schedule")
    assert schedule.cron_schedule == "7 * * * *" and "every 3 h" in schedule.description


def test_keys_reach_definitions_as_environment_variable_names(setup: Setup) -> None:
    config = setup.defs.resources["protractor"].locations["north"]
    assert config.connection_id == dg.EnvVar("PT_NORTH_CONN") and config.api_key == dg.EnvVar("PT_NORTH_KEY")


@pytest.mark.parametrize("every", range(1, 169))
def test_resync_schedule_keeps_every_interval_from_1_to_168_hours(every: int) -> None:
    """Five weeks of hourly ticks from a month end across a year end: every gap between resyncs is exact."""
    start = datetime(2026, 12, 28, 0, 7, tzinfo=UTC)
    ticks = [start + timedelta(hours=h) for h in range(24 * 35)]
    runs = [tick for tick in ticks if resync_due(tick, every)]
    gaps = {b - a for a, b in itertools.pairwise(runs)}
    assert gaps == {timedelta(hours=every)}
    assert runs[0] - start < timedelta(hours=every)


@pytest.mark.slow
def test_materialize_metadata_checks_and_sweep(setup: Setup, fake: FakeProtractor) -> None:
    result = setup.materialize(SWEEP)
    assert result.success
    for key in (EVENTS, SNAPSHOTS, LINES, LINKS):
        events = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
        metadata = events[-1].materialization.metadata
        assert {"dagster/row_count", "dagster/table_name", "dagster/column_schema"} <= set(metadata)
    snapshots = [e for e in result.get_asset_materialization_events() if e.asset_key == SNAPSHOTS]
    snap_meta = snapshots[-1].materialization.metadata
    total = sum(len(a.shop.orders) for a in fake.accounts.values())
    assert snap_meta["dagster/row_count"].value == total
    assert snap_meta["dagster/table_name"].value == "work_order_snapshots"
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    mapped = checks["statuses_and_users_mapped"]
    assert not mapped.passed and mapped.severity == dg.AssetCheckSeverity.WARN
    unmapped = mapped.metadata["unmapped"].value
    assert "south" in unmapped and any(v.startswith("status: ") for v in unmapped["south"])
    assert "user: Morgan Diaz" in unmapped.get("north", []) + unmapped.get("south", [])
    assert mapped.description.startswith("unmapped (kept raw, ours null) ")
    assert checks["one_current_version"].passed
    assert checks["one_current_version"].description == "every work order has one current row"
    assert checks["no_stale_pending_events"].description == "no notification is pending"

    again = setup.materialize(SWEEP)
    total_after = setup.count("SELECT count(*) FROM work_order_snapshots")
    assert again.success and total_after == total, "a re-run writes nothing"


@pytest.mark.slow
def test_a_run_reads_the_settings_file_as_it_stands_when_it_starts(setup: Setup, settings_file: Path) -> None:
    assert setup.materialize(SWEEP).success
    unmapped = "SELECT count(*) FROM work_order_snapshots WHERE location_id = 'south' AND status IS NULL"
    assert setup.count(unmapped) > 0
    text = settings_file.read_text()
    stages = (
        "{Work In Progress: QC, Parts On Order: QC, Quality Check: QC, Completed: QC, Waiting On Sublet: QC, "
    )
    stages += "Approved: QC, Scheduled Work: QC, Unassigned: QC}"
    south = "      api_key_env: PT_SOUTH_KEY\n"
    settings_file.write_text(text.replace(south, south + f"      status_map: {stages}\n"))
    assert setup.materialize(SWEEP).success
    assert setup.count(unmapped) == 0, "the run mapped with the file as edited after the definitions loaded"


@pytest.mark.slow
def test_sensor_requests_a_run_for_new_callbacks(setup: Setup, fake: FakeProtractor) -> None:
    sensor = setup.full.resolve_sensor_def("protractor_events_sensor")
    instance = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(resources=setup.resources, instance=instance) as ctx:
        first = sensor(ctx)
        assert isinstance(first, dg.RunRequest) and first.job_name == "protractor_resync_job", (
            "the initial load"
        )
    assert setup.materialize(SWEEP).success
    with dg.build_sensor_context(resources=setup.resources, instance=instance) as ctx:
        assert isinstance(sensor(ctx), dg.SkipReason)
    shop = fake.accounts["north"].shop
    wo = next(iter(shop.orders))
    fake.notify("north", [shop.set_stage(wo, "Work In Progress", datetime(2026, 11, 22, 8))])
    with dg.build_sensor_context(resources=setup.resources, instance=instance) as ctx:
        request = sensor(ctx)
        assert isinstance(request, dg.RunRequest) and request.job_name == "protractor_events_job"
        cursor = ctx.cursor
    with dg.build_sensor_context(resources=setup.resources, cursor=cursor, instance=instance) as ctx:
        assert isinstance(sensor(ctx), dg.SkipReason), "the same notifications are not asked for twice"
    assert setup.materialize().success
    assert setup.count("SELECT count(*) FROM protractor_events WHERE processed_at IS NULL") == 0
    with dg.build_sensor_context(resources=setup.resources, cursor=cursor, instance=instance) as ctx:
        assert isinstance(sensor(ctx), dg.SkipReason)
    versions = f"SELECT count(*) FROM work_order_snapshots WHERE work_order_id = '{wo.lower()}'"
    assert setup.count(versions) == 2


class Callbacks:
    """2,000 Contact callbacks sent at 64 connections from a thread, each answer's status and time kept.

    A connection dropped before an answer (the receiver shares this busy process with the run) is sent again,
    as a webhook sender does with a callback it got no answer for; any other error is kept by name."""

    def __init__(self, receiver: str, count: int = 2000) -> None:
        self.receiver = receiver
        self.ids = [str(uuid.UUID(int=10_000 + i)) for i in range(count)]
        self.codes: list[int | str] = []
        self.answered_at: list[float] = []
        self.thread = threading.Thread(target=lambda: asyncio.run(self._send_all()))

    async def _send_all(self) -> None:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64), timeout=30) as client:
            sem = asyncio.Semaphore(64)
            await asyncio.gather(*(self._send(client, sem, i) for i in self.ids))

    async def _send(self, client: httpx.AsyncClient, sem: asyncio.Semaphore, object_id: str) -> None:
        params = {"connectionId": NORTH[0], "apiKey": NORTH[1], "type": "Contact", "id": object_id}
        params["operation"] = "Update"
        async with sem:
            for attempt in range(3):
                try:
                    response = await client.get(self.receiver, params=params)
                    self._answered(response.status_code)
                    return
                except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError) as exc:
                    if attempt == 2:
                        self._answered(type(exc).__name__)
                except httpx.HTTPError as exc:
                    self._answered(type(exc).__name__)
                    return

    def _answered(self, code: int | str) -> None:
        self.codes.append(code)
        self.answered_at.append(time.monotonic())

    def answered_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.answered_at if start <= t <= end)


@pytest.mark.slow
def test_2000_callbacks_during_a_snapshot_run_none_lost(
    setup: Setup, fake: FakeProtractor, receiver: str
) -> None:
    """Every callback is answered 200 and stored, and some of them are answered while the run is going on."""
    callbacks = Callbacks(receiver)
    callbacks.thread.start()
    wait_for(lambda: len(callbacks.codes) >= 50, "the first 50 callbacks answered")
    started = time.monotonic()
    assert setup.materialize(SWEEP).success
    ended = time.monotonic()
    callbacks.thread.join(600)
    assert not callbacks.thread.is_alive(), "the 2,000 callbacks were all answered"
    during = callbacks.answered_between(started, ended)
    assert 0 < during < 2000, f"{during} callbacks answered while the run was going on"
    assert setup.materialize().success
    assert Counter(callbacks.codes) == {200: 2000}
    contacts = "SELECT count(DISTINCT object_id) FROM protractor_events WHERE type = 'Contact'"
    assert setup.count(contacts) == 2000
    assert setup.count("SELECT count(*) FROM protractor_events WHERE processed_at IS NULL") == 0


@pytest.mark.slow
def test_backfill_job_refetches_a_day(setup: Setup) -> None:
    job = setup.full.resolve_job_def(BACKFILL_JOB)
    first = job.execute_in_process(partition_key="2026-11-16", instance=dg.DagsterInstance.ephemeral())
    assert first.success
    day = setup.count("SELECT count(*) FROM work_order_snapshots")
    assert day > 0
    assert job.execute_in_process(partition_key="2026-11-16", instance=dg.DagsterInstance.ephemeral()).success
    assert setup.count("SELECT count(*) FROM work_order_snapshots") == day, (
        "re-fetching the same day writes nothing"
    )
    mats = [e for e in first.get_asset_materialization_events() if e.asset_key == SNAPSHOTS]
    assert mats and mats[0].materialization.metadata["versions_written"].value == day
    assert {"dagster/row_count", "dagster/table_name", "dagster/column_schema"} <= set(
        mats[0].materialization.metadata
    )


@pytest.mark.slow
def test_sensor_waits_for_a_queued_run(setup: Setup, fake: FakeProtractor) -> None:
    sensor = setup.full.resolve_sensor_def("protractor_events_sensor")
    assert setup.materialize(SWEEP).success
    shop = fake.accounts["south"].shop
    fake.notify("south", [shop.set_stage(next(iter(shop.orders)), "Approved", datetime(2026, 11, 22, 9))])
    wait_for(lambda: journaled(setup.data_dir) >= 1, "the callback journaled")
    without_queue = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(resources=setup.resources, instance=without_queue) as ctx:
        assert isinstance(sensor(ctx), dg.RunRequest), "the notification alone asks for a run"
    instance = dg.DagsterInstance.ephemeral()
    tags = setup.full.resolve_job_def("protractor_events_job").tags
    instance.add_run(
        dg.DagsterRun(job_name="protractor_events_job", status=dg.DagsterRunStatus.NOT_STARTED, tags=tags)
    )
    with dg.build_sensor_context(resources=setup.resources, instance=instance) as ctx:
        skipped = sensor(ctx)
    assert isinstance(skipped, dg.SkipReason) and "in flight" in skipped.skip_message
