"""How Protractor runs start: a 30 s sensor over the journal, a resync schedule, a daily backfill job."""

import hashlib
import time
from datetime import date, datetime
from pathlib import Path

import dagster as dg

from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.protractor import store, sync
from dealer_assets.protractor import tables as t
from dealer_assets.protractor.defs.assets import EVENTS, LINES, LINKS, SNAPSHOTS, table_metadata
from dealer_assets.protractor.defs.support import runtime
from dealer_assets.protractor.journal import journal_dir
from dealer_assets.protractor.settings import ProtractorSettings

SENSOR_INTERVAL_SECONDS = 30
RETRY_PENDING_SECONDS = 600
"""Notifications left pending by a failed run are asked for again at most this often."""
EVENTS_JOB = "protractor_events_job"
RESYNC_JOB = "protractor_resync_job"
BACKFILL_JOB = "protractor_backfill_job"
CONFIG_KEY = "protractor_work_orders"  # the multi-asset's op name


def build_jobs() -> list:
    selection = dg.AssetSelection.assets(EVENTS, SNAPSHOTS, LINES, LINKS)
    return [
        dg.define_asset_job(
            EVENTS_JOB,
            selection=selection,
            description="Process new Protractor notifications.",
            executor_def=dg.in_process_executor,
        ),  # fmt: skip
        dg.define_asset_job(
            RESYNC_JOB,
            selection=selection,
            description="List and fetch what changed since the last sweep.",
            executor_def=dg.in_process_executor,
            config={"ops": {CONFIG_KEY: {"config": {"mode": "sweep"}}}},
        ),  # fmt: skip
    ]


def journal_state(data_dir) -> dict[str, int]:  # noqa: ANN001
    root = journal_dir(data_dir)
    return (
        {p.relative_to(root).as_posix(): p.stat().st_size for p in sorted(root.glob("*/*.jsonl"))}
        if root.exists()
        else {}
    )


def build_sensor(settings: ProtractorSettings, jobs: list) -> dg.SensorDefinition:
    @dg.sensor(name="protractor_events_sensor", jobs=jobs, minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Starts a run when the receiver journaled notifications not loaded yet, and the first "
               "sweep of a location that was never swept (its initial load).")  # fmt: skip
    def protractor_events_sensor(
        context: dg.SensorEvaluationContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ):
        sizes = journal_state(Path(dealer_env.data_dir))
        with warehouse.engine().connect() as conn:
            loaded = store.journal_offsets(conn)
            pending = store.pending_events(conn).height
            never_swept = [loc for loc in settings.locations if store.swept_until(conn, loc) is None]
        if never_swept:
            key = "first-sweep-" + "-".join(never_swept)
            if key != context.cursor:
                context.update_cursor(key)
                return dg.RunRequest(run_key=f"protractor-{key}", job_name=RESYNC_JOB)
        unloaded = {f: s for f, s in sizes.items() if s > loaded.get(f, 0)}
        if not unloaded and not pending:
            return dg.SkipReason("no new Protractor notifications")
        waiting = context.instance.get_run_records(
            dg.RunsFilter(
                job_name=EVENTS_JOB, statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]
            ),
            limit=1,
        )
        if waiting:
            return dg.SkipReason("a queued run will take these notifications when it starts")
        retry = "" if unloaded else f"retry-{int(time.time() // RETRY_PENDING_SECONDS)}"
        key = hashlib.sha256(repr((sorted(unloaded.items()), pending, retry)).encode()).hexdigest()[:24]
        if key == context.cursor:
            return dg.SkipReason("a run was already requested for these notifications")
        context.update_cursor(key)
        return dg.RunRequest(run_key=f"protractor-events-{key}", job_name=EVENTS_JOB)

    return protractor_events_sensor


def resync_due(tick: datetime, every_hours: int) -> bool:
    """Whether the hourly tick at `tick` is one of the resyncs `every_hours` apart, counted in whole hours
    since the Unix epoch: any interval from 1 to 168 hours is kept exactly, across days, months and years."""
    return int(tick.timestamp() // 3600) % every_hours == 0


def build_schedule(settings: ProtractorSettings) -> dg.ScheduleDefinition:
    """Ticks hourly and runs on the ticks `resync_every_hours` apart (cron alone cannot step 5 or 30 hours)."""
    hours = settings.resync_every_hours
    return dg.ScheduleDefinition(
        name="protractor_resync_schedule",
        job_name=RESYNC_JOB,
        cron_schedule="7 * * * *",
        execution_timezone="UTC",
        should_execute=lambda context: resync_due(context.scheduled_execution_time, hours),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Resync every {hours} h (UTC hours since the epoch divisible by {hours}): callbacks can be "
        "lost for days.",
    )


def build_backfill_job(
    settings: ProtractorSettings, history_start: datetime, resource_keys: set[str]
) -> dg.JobDefinition:
    partitions = dg.DailyPartitionsDefinition(start_date=history_start.strftime("%Y-%m-%d"), end_offset=1)

    @dg.op(required_resource_keys=resource_keys, out=dg.Out(dg.Nothing))
    def refetch_days(context: dg.OpExecutionContext):
        """Re-list and re-fetch every work order changed on the partition's days (local dates per location)."""
        rng = context.partition_key_range
        first, last = date.fromisoformat(rng.start), date.fromisoformat(rng.end)
        rt = runtime(context, settings)
        outcome = sync.sweep(rt.engine, settings, rt.client_for, rt.data_dir, sync.utc_now,
                             history_start=rt.history_start, days=(first, last))  # fmt: skip
        context.log.info(f"protractor backfill {first}..{last}: {outcome.per_location}")
        tables = ((SNAPSHOTS, t.work_order_snapshots, outcome.snapshots_written),
                  (LINES, t.work_order_lines, outcome.lines_written))  # fmt: skip
        with rt.engine.connect() as conn:
            for key, table, written in tables:
                meta = table_metadata(conn, table, written=written, fetched=outcome.fetched)
                yield dg.AssetMaterialization(asset_key=key, metadata={**meta, "days": f"{first}..{last}"})

    @dg.job(name=BACKFILL_JOB, partitions_def=partitions, executor_def=dg.in_process_executor,
            description="Re-list and re-fetch a date range of work orders (reprocessing history).")  # fmt: skip
    def protractor_backfill_job():
        refetch_days()

    return protractor_backfill_job
