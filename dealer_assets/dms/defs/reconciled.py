"""The reconciliation step of a source: service requests and every table it writes, as one multi-asset."""

from datetime import timedelta

import dagster as dg
import polars as pl

from dealer_assets.core.asset_metadata import table_metadata
from dealer_assets.core.progress import Progress
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.tags import MODE_TAG, REPLAY_FROM_TAG
from dealer_assets.core.timeutil import parse_utc
from dealer_assets.dms import quality
from dealer_assets.dms import tables as t
from dealer_assets.dms.domain.feed_names import partition_key_of, partition_start
from dealer_assets.dms.domain.reconcile import UPDATE_EVENTS
from dealer_assets.dms.reconciliation import reconcile
from dealer_assets.dms.settings import load_settings, source_settings_in

from .checks import SERVICE_REQUEST_CHECKS
from .figures import daily_observations, feed_figures, frame_table, only_selected, table_written
from .specs import (
    FRESHNESS,
    GUARD_DECISIONS_KEY,
    OWNERS,
    PER_DAY_NOTE,
    RECONCILED_TABLES,
    REPLAY_NOTE,
    keys_for,
)

MEASURES = ["vehicles", "created", "updated", "closed", "held", "skipped"]


def build_service_requests(
    source: str, partitions_def: dg.PartitionsDefinition, step: dict
) -> dg.AssetsDefinition:
    _, normalized_key, sr_key = keys_for(source)
    sr_spec = dg.AssetSpec(
        key=sr_key,
        deps=[
            normalized_key,
            GUARD_DECISIONS_KEY,
            dg.AssetDep(
                sr_key, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
            ),
        ],
        group_name=f"dms_{source}",
        kinds={"polars", "sql"},
        owners=OWNERS,
        partitions_def=partitions_def,
        freshness_policy=FRESHNESS,
        metadata=table_metadata(t.service_request_state, name="service_requests"),
        description=f"Service requests of source `{source}` (warehouse view `service_requests` over the table "
        "`service_request_state`, which a steady hour writes only where an SR changed), reconciled "
        "from the normalized feeds in as-of order under the source's settings: created for eligible vehicles, "
        "stock number and client tracked, auto-closed when missing, held by the auto-close guard when a feed "
        "lacks too many of a dealer's vehicles. Each day's state builds on the day before it. "
        f"{REPLAY_NOTE} {PER_DAY_NOTE} Freshness warns when no feed was applied for 3 hours (feeds arrive "
        "every one to two hours).",
    )

    @dg.multi_asset(
        name=f"{source}__service_requests",
        specs=[sr_spec],
        check_specs=[check.spec(sr_key) for check in SERVICE_REQUEST_CHECKS],
        **step,
    )
    def service_requests(
        context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ):
        yield from only_selected(context, _service_requests(context, source, dealer_env, warehouse))

    return service_requests


def _service_requests(
    context: dg.AssetExecutionContext,
    source: str,
    dealer_env: DealerEnvironment,
    warehouse: WarehouseResource,
):
    sr_key = keys_for(source)[2]
    window = context.partition_time_window
    tags = context.run.tags
    mode = "incremental" if tags.get(MODE_TAG) == "incremental" else "replay"
    replay_from = (
        parse_utc(tags[REPLAY_FROM_TAG], key=REPLAY_FROM_TAG, origin="run tags")
        if mode == "replay" and tags.get(REPLAY_FROM_TAG)
        else None
    )
    settings = load_settings(dealer_env.settings_file)
    engine = warehouse.engine()
    report = reconcile(
        dealer_env.paths(),
        source,
        source_settings_in(settings, source, dealer_env.settings_file),
        engine,
        start=window.start,
        end=window.end,
        mode=mode,
        replay_from=replay_from,
        progress=Progress(f"{sr_key.to_user_string()} ({context.run.run_id[:8]})", context.log.info),
    )
    context.log.info(
        f"{mode}: applied {len(report.applied)} feed(s), late {len(report.late)}; "
        f"events {report.events}; skipped {report.skipped}"
    )
    written_since = report.replay_from or min(report.applied_as_of, default=None)
    verdicts = [
        quality.guard_holds(engine, source),
        quality.duplicate_active(engine, source, written_since),
        quality.orphan_events(engine, source, written_since),
        quality.uncovered_dealers(engine, source, report.head, report.per_dealer),
        quality.late_feeds(engine, source),
    ]
    trips = report.guard.filter(pl.col("held")) if report.guard is not None else None
    partitions = context.partition_keys
    yield dg.MaterializeResult(
        asset_key=sr_key,
        metadata={
            "mode": mode,
            "applied_through": report.head.isoformat() if report.head else "",
            "active_after_run": report.active,
            "closed_after_run": report.closed,
            "run/partitions": len(partitions),
            "run/feeds_applied": len(report.applied),
            "run/sr_rows_written": report.written.get("service_request_state", 0),
            "run/late_feeds": len(report.late),
            "run/created": report.events.get("created", 0),
            "run/updated": sum(report.events.get(e, 0) for e in UPDATE_EVENTS),
            "run/closed": report.events.get("auto_closed", 0),
            "run/held": report.events.get("close_held", 0),
            "run/guard_trips": trips.height if trips is not None else 0,
            "run/skipped": sum(report.skipped.values()),
            **{f"run/skipped/{r}": n for r, n in sorted(report.skipped.items())},
            "run/per_dealer": frame_table(report.per_dealer),
            "run/guard_trips_table": frame_table(trips),
        },
        check_results=[c.verdict(v) for c, v in zip(SERVICE_REQUEST_CHECKS, verdicts, strict=True)],
    )
    for table in RECONCILED_TABLES:
        yield table_written(source, table.name, report.written.get(table.name, 0))
    yield from _day_figures(context, engine, source, window, report)


def _day_figures(context: dg.AssetExecutionContext, engine, source: str, window, report) -> list:
    """Each day of the run from the ledger; a replay also re-applied feeds on days after its range: those
    days get an observation saying so (not a materialization: a backfill's progress counts only its own)."""
    sr_key = keys_for(source)[2]
    partitions_def = context.assets_def.partitions_def
    later = sorted(
        k
        for k in {partition_key_of(a) for a in report.applied_as_of if a >= window.end}
        if partitions_def is not None and partitions_def.has_partition_key(k)
    )
    end = max([window.end, *(partition_start(k) + timedelta(days=1) for k in later)])
    figures = feed_figures(engine, "applied_feeds", source, MEASURES, window.start, end)
    return daily_observations(sr_key, context.partition_keys, figures, MEASURES) + daily_observations(
        sr_key, later, figures, MEASURES, extra={"reapplied_by_run": context.run.run_id}
    )
