"""DMS feed assets, one set per configured source: raw feeds -> normalized vehicles -> service requests."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from dealer_assets.core.metadata import markdown_table
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.tags import MODE_TAG, REPLAY_FROM_TAG, SOURCE_TAG
from dealer_assets.core.timeutil import parse_utc
from dealer_assets.dms import quality
from dealer_assets.dms.domain.feed_names import partition_key_of
from dealer_assets.dms.domain.reconcile import UPDATE_EVENTS
from dealer_assets.dms.ingest import Left, ingest_raw_feeds, normalize_window, triage_misdelivered
from dealer_assets.dms.reconciliation import reconcile
from dealer_assets.dms.settings import DealerSettings, SourceSettings, load_settings, source_settings_in

from .checks import (
    CHECK_DIGITS_VALID,
    NO_QUARANTINED_FILES,
    REJECTED_ROW_SHARE,
    SERVICE_REQUEST_CHECKS,
)
from .partitions import SINGLE_RUN

RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
MISDELIVERED_KEY = dg.AssetKey(["dms", "misdelivered_feed_files"])
PER_DEALER_METADATA_MAX_PARTITIONS = 24
"""A materialization's metadata is copied onto every partition of its run: per-dealer figures go on runs of a
day or less (the sensor's hourly runs, which the UI plots); longer backfills carry them as a table."""


def _partition_count(context: dg.AssetExecutionContext) -> int:
    return len(context.partition_keys) if context.has_partition_key_range else 1


def _settings(dealer_env: DealerEnvironment) -> DealerSettings:
    """The settings file as it stands now, re-validated before any data moves."""
    return load_settings(dealer_env.settings_file)


def _source_settings(dealer_env: DealerEnvironment, source: str) -> SourceSettings:
    return source_settings_in(_settings(dealer_env), source, dealer_env.settings_file)


def keys_for(source: str) -> tuple[dg.AssetKey, dg.AssetKey, dg.AssetKey]:
    return (
        dg.AssetKey([source, "raw_dms_feeds"]),
        dg.AssetKey([source, "normalized_vehicles"]),
        dg.AssetKey([source, "service_requests"]),
    )


@dg.asset(key=MISDELIVERED_KEY, group_name="dms_drop_zone", kinds={"filesystem"})
def misdelivered_feed_files(
    context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Drop-zone files that no source can take (bad name, unknown source, as-of out of range), quarantined
    with their reason so that the drop zone only ever holds work."""
    left: list[Left] = []
    found = triage_misdelivered(
        dealer_env.paths(), _settings(dealer_env), warehouse.engine(), datetime.now(UTC), left
    )
    for q in found:
        context.log.warning(f"quarantined {q.file_name!r}: {q.reason} ({q.detail})")
    for item in left:
        context.log.warning(f"left in the drop zone {item.file_name!r}: {item.detail}")
    table = pl.DataFrame(
        [(q.file_name, q.reason, q.detail) for q in found],
        schema=["file_name", "reason", "detail"],
        orient="row",
    )
    return dg.MaterializeResult(
        metadata={
            "quarantined": len(found),
            "files": markdown_table(table, 20),
            "left_in_drop_zone": len(left),
            "left": markdown_table(_left_table(left), 20),
        }
    )


def _left_table(left: list[Left]) -> pl.DataFrame:
    return pl.DataFrame(
        [(item.file_name, item.detail) for item in left], schema=["file_name", "detail"], orient="row"
    )


def build_source_assets(source: str, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    raw_key, normalized_key, sr_key = keys_for(source)
    group = f"dms_{source}"
    op_tags = {SOURCE_TAG: source}
    pool = f"dms_{source}"

    @dg.asset(
        key=raw_key,
        partitions_def=partitions_def,
        backfill_policy=SINGLE_RUN,
        group_name=group,
        kinds={"csv", "filesystem"},
        op_tags=op_tags,
        retry_policy=RETRY,
        pool=pool,
        description=f"Feed files of source `{source}`, archived immutably under their checksum and parsed in "
        "their layout. Malformed rows are rejected; unreadable files are quarantined.",
        check_specs=[NO_QUARANTINED_FILES.spec(raw_key)],
    )
    def raw_dms_feeds(
        context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        window = context.partition_time_window
        settings = _settings(dealer_env)
        report = ingest_raw_feeds(
            dealer_env.paths(),
            source,
            _source_settings(dealer_env, source),
            set(settings.sources),
            warehouse.engine(),
            window.start,
            window.end,
            received_at=datetime.now(UTC),
        )
        quarantined = pl.DataFrame(
            [(q.file_name, q.reason, q.detail) for q in report.quarantined],
            schema=["file_name", "reason", "detail"],
            orient="row",
        )
        for item in report.left:
            context.log.warning(f"left in the drop zone {item.file_name!r}: {item.detail}")
        problems = [f"{q.file_name}: {q.reason}" for q in report.quarantined] + [
            f"{item.file_name}: left in the drop zone ({item.detail})" for item in report.left
        ]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": report.raw_rows,
                "feeds": len(report.feeds),
                "archived_files": len(report.archived),
                "duplicate_deliveries": len(report.duplicates),
                "quarantined_files": len(report.quarantined),
                "left_in_drop_zone": len(report.left),
                "malformed_rows": report.malformed_rows,
                "feed_files": markdown_table(
                    pl.DataFrame(report.feeds).drop("columns", strict=False) if report.feeds else None, 24
                ),
            },
            check_results=[
                NO_QUARANTINED_FILES.result(
                    not problems,
                    "; ".join(problems) or None,
                    {
                        "quarantined": len(report.quarantined),
                        "files": markdown_table(quarantined, 20),
                        "left_in_drop_zone": len(report.left),
                        "left": markdown_table(_left_table(report.left), 20),
                    },
                )
            ],
        )

    @dg.asset(
        key=normalized_key,
        partitions_def=partitions_def,
        backfill_policy=SINGLE_RUN,
        group_name=group,
        deps=[raw_key],
        kinds={"polars", "parquet"},
        op_tags=op_tags,
        retry_policy=RETRY,
        pool=pool,
        description="Vehicles with normalized VINs (rule 1), dealer id, stock number and system code; rejected "
        "rows are kept in `rejected_rows` with their line number and reason.",
        check_specs=[REJECTED_ROW_SHARE.spec(normalized_key), CHECK_DIGITS_VALID.spec(normalized_key)],
    )
    def normalized_vehicles(
        context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        window = context.partition_time_window
        report = normalize_window(
            dealer_env.paths(),
            source,
            _source_settings(dealer_env, source),
            warehouse.engine(),
            window.start,
            window.end,
        )
        total = report.vehicles + report.rejected
        share = report.rejected / total if total else 0.0
        per_dealer = (
            {f"vehicles/{d}": int(n) for d, n in report.per_dealer.iter_rows()}
            if report.per_dealer is not None
            and _partition_count(context) <= PER_DEALER_METADATA_MAX_PARTITIONS
            else {}
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": report.vehicles,
                "rejected_rows": report.rejected,
                "check_digit_failures": report.check_digit_failures,
                "feeds": len(report.feeds),
                **{f"rejected/{r}": n for r, n in sorted(report.rejected_by_reason.items())},
                **per_dealer,
                "per_dealer": markdown_table(report.per_dealer, 50),
                "preview": markdown_table(report.preview),
            },
            check_results=[
                REJECTED_ROW_SHARE.result(
                    share <= 0.05,
                    f"{report.rejected} of {total} rows rejected ({share:.1%}): "
                    + ", ".join(f"{r} {n}" for r, n in sorted(report.rejected_by_reason.items())),
                    {
                        "share": float(share),
                        "rejected": report.rejected,
                        "rows": total,
                        **dict(report.rejected_by_reason.items()),
                    },
                ),
                CHECK_DIGITS_VALID.result(
                    report.check_digit_failures == 0,
                    f"{report.check_digit_failures} VIN(s) with a wrong check digit "
                    "(flagged in normalized_vehicles.check_digit_ok, not rejected)",
                    {"failures": report.check_digit_failures},
                ),
            ],
        )

    @dg.asset(
        key=sr_key,
        partitions_def=partitions_def,
        backfill_policy=SINGLE_RUN,
        group_name=group,
        deps=[
            normalized_key,
            dg.AssetDep(
                sr_key, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
            ),
        ],
        kinds={"polars", "sql"},
        op_tags=op_tags,
        retry_policy=RETRY,
        pool=pool,
        description="Service requests reconciled from the feeds under the source's settings (CONTRACT section 4), "
        "with their events and skipped vehicles. State flows from partition to partition in as-of order.",
        check_specs=[check.spec(sr_key) for check in SERVICE_REQUEST_CHECKS],
    )
    def service_requests(
        context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        window = context.partition_time_window
        tags = context.run.tags
        mode = "incremental" if tags.get(MODE_TAG) == "incremental" else "replay"
        replay_from = (
            parse_utc(tags[REPLAY_FROM_TAG], key=REPLAY_FROM_TAG, origin="run tags")
            if mode == "replay" and tags.get(REPLAY_FROM_TAG)
            else None
        )
        engine = warehouse.engine()
        report = reconcile(
            dealer_env.paths(),
            source,
            _source_settings(dealer_env, source),
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
        verdicts = [
            quality.held_closes(report.guard),
            quality.duplicate_active(engine, source),
            quality.orphan_events(engine, source),
            quality.uncovered_dealers(engine, source, report.head),
            quality.late_feeds(engine, source),
        ]
        per_dealer = {}
        if report.per_dealer is not None and _partition_count(context) <= PER_DEALER_METADATA_MAX_PARTITIONS:
            for row in report.per_dealer.iter_rows(named=True):
                for measure in ("active", "created", "updated", "closed", "held", "skipped"):
                    per_dealer[f"{measure}/{row['dealer_id']}"] = int(row[measure])
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": report.active + report.closed,
                "active": report.active,
                "closed_total": report.closed,
                "mode": mode,
                "feeds_applied": len(report.applied),
                "late_feeds": len(report.late),
                "created": report.events.get("created", 0),
                "updated": sum(report.events.get(e, 0) for e in UPDATE_EVENTS),
                "closed": report.events.get("auto_closed", 0),
                "held": report.events.get("close_held", 0),
                "skipped": sum(report.skipped.values()),
                **{f"skipped/{r}": n for r, n in sorted(report.skipped.items())},
                **per_dealer,
                "per_dealer": markdown_table(report.per_dealer, 50),
                "held_closes": markdown_table(
                    report.guard.filter(pl.col("held")) if report.guard is not None else None, 50
                ),
                "applied_through": report.head.isoformat() if report.head else "",
            },
            check_results=[c.verdict(v) for c, v in zip(SERVICE_REQUEST_CHECKS, verdicts, strict=True)],
        )

    return [raw_dms_feeds, normalized_vehicles, service_requests]


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
