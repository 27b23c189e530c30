"""The reconciliation step of a source: service requests and every table it writes, as one multi-asset."""

from datetime import datetime

import dagster as dg
import polars as pl

from dealer_assets.core.metadata import table_metadata
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.tags import MODE_TAG, REPLAY_FROM_TAG
from dealer_assets.core.timeutil import parse_utc
from dealer_assets.dms import quality
from dealer_assets.dms import tables as t
from dealer_assets.dms.domain.feed_names import partition_key_of
from dealer_assets.dms.domain.reconcile import UPDATE_EVENTS
from dealer_assets.dms.reconciliation import reconcile
from dealer_assets.dms.settings import load_settings, source_settings_in

from .checks import SERVICE_REQUEST_CHECKS
from .figures import frame_table, only_selected, per_partition_observations
from .specs import (
    FRESHNESS,
    GUARD_DECISIONS_KEY,
    OWNERS,
    PER_HOUR_NOTE,
    RECONCILED_TABLES,
    REPLAY_NOTE,
    keys_for,
    table_spec,
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
        "lacks too many of a dealer's vehicles. Each hour's state builds on the hour before it. "
        f"{REPLAY_NOTE} {PER_HOUR_NOTE} Freshness warns when no feed was applied for 3 hours (feeds arrive "
        "every one to two hours).",
    )
    outputs = [
        sr_spec,
        *(table_spec(source, tb, partitions_def, [sr_key], {"sql"}) for tb in RECONCILED_TABLES),
    ]

    @dg.multi_asset(
        name=f"{source}__service_requests",
        specs=outputs,
        check_specs=[check.spec(sr_key) for check in SERVICE_REQUEST_CHECKS],
        **step,
    )
    def service_requests(
        context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ):
        yield from only_selected(context, _service_requests(context, dealer_env, warehouse))

    def _service_requests(
        context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ):
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
        )
        context.log.info(
            f"{mode}: applied {len(report.applied)} feed(s), late {len(report.late)}; "
            f"events {report.events}; skipped {report.skipped}"
        )
        _report_later_partitions(context, sr_key, report.applied_as_of, window.end)
        written_since = report.replay_from or min(report.applied_as_of, default=None)
        verdicts = [
            quality.guard_holds(engine, source),
            quality.duplicate_active(engine, source, written_since),
            quality.orphan_events(engine, source, written_since),
            quality.uncovered_dealers(engine, source, report.head, report.per_dealer),
            quality.late_feeds(engine, source),
        ]
        trips = report.guard.filter(pl.col("held")) if report.guard is not None else None
        partitions = (
            list(context.partition_keys) if context.has_partition_key_range else [context.partition_key]
        )
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
            yield dg.MaterializeResult(
                asset_key=dg.AssetKey([source, table.name]),
                metadata={"run/rows_written": report.written.get(table.name, 0)},
            )
        applied = report.applied_rows if report.applied_rows is not None else pl.DataFrame()
        feeds = (
            applied.select(
                pl.col("feed_as_of").map_elements(partition_key_of, pl.String).alias("partition"),
                "feed_file",
                *MEASURES,
            )
            if applied.height
            else pl.DataFrame(
                schema={"partition": pl.String, "feed_file": pl.String, **dict.fromkeys(MEASURES, pl.Int64)}
            )
        )
        yield from per_partition_observations(
            sr_key, partitions_def, partitions, feeds, MEASURES, row_count=None
        )

    return service_requests


def _report_later_partitions(
    context: dg.AssetExecutionContext, key: dg.AssetKey, applied: list[datetime], window_end: datetime
) -> None:
    """A replay re-applies feeds after the run's own partitions: say so on those partitions too."""
    partitions_def = context.assets_def.partitions_def
    for partition in sorted({partition_key_of(a) for a in applied if a >= window_end}):
        if partitions_def is None or not partitions_def.has_partition_key(partition):
            continue
        context.log_event(
            dg.AssetMaterialization(
                asset_key=key,
                partition=partition,
                metadata={"reapplied_by_run": context.run_id, "reason": "replay from an earlier partition"},
            )
        )
