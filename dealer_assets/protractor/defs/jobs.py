"""Protractor's jobs: notifications, the resync sweep, and the daily backfill that reprocesses history."""

from collections.abc import Iterator
from datetime import date, datetime

import dagster as dg

from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.tags import area_tags
from dealer_assets.protractor import sync
from dealer_assets.protractor import tables as t
from dealer_assets.protractor.defs.assets import EVENTS, LINES, LINKS, SNAPSHOTS, WORK_ORDERS_OP, run_figures
from dealer_assets.protractor.defs.resources import ProtractorResource, sync_context

EVENTS_JOB = "protractor_events_job"
RESYNC_JOB = "protractor_resync_job"
BACKFILL_JOB = "protractor_backfill_job"
TAGS = area_tags("protractor")
"""Every Protractor run carries them: the run queue gives the area one run at a time beside the others."""


def build_jobs() -> list:
    selection = dg.AssetSelection.assets(EVENTS, SNAPSHOTS, LINES, LINKS)
    return [
        dg.define_asset_job(
            EVENTS_JOB,
            selection=selection,
            description="Process every pending Protractor notification (a batch, at most one every "
            "protractor.batch_minutes).",
            executor_def=dg.in_process_executor,
            tags=TAGS,
        ),
        dg.define_asset_job(
            RESYNC_JOB,
            selection=selection,
            description="List and fetch what changed since the last sweep.",
            executor_def=dg.in_process_executor,
            tags=TAGS,
            config={"ops": {WORK_ORDERS_OP: {"config": {"mode": "sweep"}}}},
        ),
    ]


@dg.op(out=dg.Out(dg.Nothing))
def refetch_days(
    context: dg.OpExecutionContext,
    dealer_env: DealerEnvironment,
    warehouse: WarehouseResource,
    protractor: ProtractorResource,
) -> Iterator[dg.AssetMaterialization]:
    """Re-list and re-fetch every work order changed on the partition's days (local dates per location)."""
    rng = context.partition_key_range
    first, last = date.fromisoformat(rng.start), date.fromisoformat(rng.end)
    ctx = sync_context(dealer_env, warehouse, protractor)
    outcome = sync.sweep(ctx, days=(first, last))
    context.log.info(f"protractor backfill {first}..{last}: {outcome.per_location}")
    written = (
        (SNAPSHOTS, t.work_order_snapshots, outcome.snapshots_written),
        (LINES, t.work_order_lines, outcome.lines_written),
    )
    with ctx.engine.connect() as conn:
        for key, table, count in written:
            meta = run_figures(conn, table, versions_written=count, work_orders_fetched=outcome.fetched)
            yield dg.AssetMaterialization(asset_key=key, metadata={**meta, "days": f"{first}..{last}"})


def build_backfill_job(history_start: datetime) -> dg.JobDefinition:
    """Daily partitions from the start of history, so any range can be launched as a backfill."""
    partitions = dg.DailyPartitionsDefinition(start_date=history_start.strftime("%Y-%m-%d"), end_offset=1)

    @dg.job(
        name=BACKFILL_JOB,
        partitions_def=partitions,
        executor_def=dg.in_process_executor,
        description="Re-list and re-fetch a date range of work orders (reprocessing history).",
        tags=TAGS,
    )
    def protractor_backfill_job() -> None:
        refetch_days()

    return protractor_backfill_job
