"""DMS feed assets, one set per configured source: raw feeds -> normalized vehicles -> service requests.

Each step is a multi-asset over the source's feed days; the warehouse tables it writes are assets of their
own below it (`source_tables`), reported once per run.
"""

from datetime import UTC, datetime

import dagster as dg

from dealer_assets.core.asset_metadata import markdown_table, table_metadata
from dealer_assets.core.progress import Progress
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.tags import MODE_TAG, REPLAY_FROM_TAG, SOURCE_TAG
from dealer_assets.core.timeutil import parse_utc
from dealer_assets.dms import tables as t
from dealer_assets.dms.apply_feeds import reconcile
from dealer_assets.dms.asset_specs import (
    DROP_ZONE_GROUP,
    DROP_ZONE_KEY,
    MISDELIVERED_KEY,
    NORMALIZED_TABLES,
    OWNERS,
    RAW_TABLES,
    RECONCILED_TABLES,
    keys_for,
    normalized_vehicles_spec,
    raw_feeds_spec,
    service_requests_spec,
    table_spec,
)
from dealer_assets.dms.figures import (
    NORMALIZED_MEASURES,
    RAW_MEASURES,
    daily_observations,
    feed_figures,
    left_table,
    normalized_vehicles_metadata,
    only_selected,
    quarantined_table,
    raw_feeds_metadata,
    service_request_days,
    service_requests_metadata,
    table_written,
)
from dealer_assets.dms.ingest import ingest_raw_feeds
from dealer_assets.dms.normalize_feeds import normalize_window
from dealer_assets.dms.partitions import SINGLE_RUN
from dealer_assets.dms.quarantine import triage_misdelivered
from dealer_assets.dms.settings import DealerSettings, SourceSettings, load_settings, source_settings_in

from .checks import (
    CHECK_DIGITS_VALID,
    NO_QUARANTINED_FILES,
    REJECTED_ROW_SHARE,
    SERVICE_REQUEST_CHECKS,
    normalized_results,
    quarantine_result,
    service_request_results,
)

RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def _settings(dealer_env: DealerEnvironment) -> DealerSettings:
    """The settings file as it stands now, re-validated before any data moves."""
    return load_settings(dealer_env.settings_file)


def _source_settings(dealer_env: DealerEnvironment, source: str) -> SourceSettings:
    return source_settings_in(_settings(dealer_env), source, dealer_env.settings_file)


def _incremental(context: dg.AssetExecutionContext) -> bool:
    return context.run.tags.get(MODE_TAG) == "incremental"


def _progress(context: dg.AssetExecutionContext, key: dg.AssetKey) -> Progress:
    return Progress(f"{key.to_user_string()} ({context.run.run_id[:8]})", context.log.info)


@dg.asset(
    key=MISDELIVERED_KEY,
    group_name=DROP_ZONE_GROUP,
    deps=[DROP_ZONE_KEY],
    kinds={"filesystem", "sql"},
    owners=OWNERS,
    metadata=table_metadata(t.quarantined_files),
)
def misdelivered_feed_files(
    context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Drop-zone files that no source can take (a name that does not parse, an unknown source, an as-of out of
    range, a link or other non-regular file), moved to the quarantine folder and recorded in the warehouse
    table `quarantined_files` with their reason, so that the drop zone only ever holds work. **Materialize**
    takes whatever such files the drop zone holds now; the sensor does so on its own."""
    left: list = []
    found = triage_misdelivered(
        dealer_env.paths(), _settings(dealer_env), warehouse.engine(), datetime.now(UTC), left
    )
    for q in found:
        context.log.warning(f"quarantined {q.file_name!r}: {q.reason} ({q.detail})")
    for item in left:
        context.log.warning(f"left in the drop zone {item.file_name!r}: {item.detail}")
    return dg.MaterializeResult(
        metadata={
            "quarantined": len(found),
            "files": markdown_table(quarantined_table(found), 20),
            "left_in_drop_zone": len(left),
            "left": markdown_table(left_table(left), 20),
        }
    )


def build_source_assets(source: str, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The source's three steps: raw feeds -> normalized vehicles -> service requests."""
    raw_key, normalized_key, sr_key = keys_for(source)
    step = {
        "partitions_def": partitions_def,
        "backfill_policy": SINGLE_RUN,
        "op_tags": {SOURCE_TAG: source},
        "retry_policy": RETRY,
        "pool": f"dms_{source}",
        "can_subset": True,
    }

    @dg.multi_asset(
        name=f"{source}__raw_dms_feeds",
        specs=[raw_feeds_spec(source, partitions_def)],
        check_specs=[NO_QUARANTINED_FILES.spec(raw_key)],
        **step,
    )
    def raw_dms_feeds(
        context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ):
        yield from only_selected(context, take_raw_feeds(context, source, dealer_env, warehouse))

    @dg.multi_asset(
        name=f"{source}__normalized_vehicles",
        specs=[normalized_vehicles_spec(source, partitions_def)],
        check_specs=[REJECTED_ROW_SHARE.spec(normalized_key), CHECK_DIGITS_VALID.spec(normalized_key)],
        **step,
    )
    def normalized_vehicles(
        context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ):
        yield from only_selected(context, normalize_vehicles(context, source, dealer_env, warehouse))

    @dg.multi_asset(
        name=f"{source}__service_requests",
        specs=[service_requests_spec(source, partitions_def)],
        check_specs=[check.spec(sr_key) for check in SERVICE_REQUEST_CHECKS],
        **step,
    )
    def service_requests(
        context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ):
        yield from only_selected(context, reconcile_service_requests(context, source, dealer_env, warehouse))

    return [raw_dms_feeds, normalized_vehicles, service_requests]


def source_tables(source: str) -> list[dg.AssetSpec]:
    """The warehouse tables the source's steps write, each below the step that writes it."""
    raw_key, normalized_key, sr_key = keys_for(source)
    return (
        [table_spec(source, tb, raw_key) for tb in RAW_TABLES]
        + [table_spec(source, tb, normalized_key) for tb in NORMALIZED_TABLES]
        + [table_spec(source, tb, sr_key) for tb in RECONCILED_TABLES]
    )


def take_raw_feeds(
    context: dg.AssetExecutionContext,
    source: str,
    dealer_env: DealerEnvironment,
    warehouse: WarehouseResource,
):
    """Archive the source's deliveries and parse the feeds of the run's days."""
    raw_key = keys_for(source)[0]
    window = context.partition_time_window
    engine = warehouse.engine()
    report = ingest_raw_feeds(
        dealer_env.paths(),
        source,
        _source_settings(dealer_env, source),
        set(_settings(dealer_env).sources),
        engine,
        window.start,
        window.end,
        received_at=datetime.now(UTC),
        only_new=_incremental(context),
        progress=_progress(context, raw_key),
    )
    for item in report.left:
        context.log.warning(f"left in the drop zone {item.file_name!r}: {item.detail}")
    yield dg.MaterializeResult(
        asset_key=raw_key,
        metadata=raw_feeds_metadata(report, len(context.partition_keys)),
        check_results=[quarantine_result(report)],
    )
    yield table_written(source, "feed_files", len(report.feeds) + len(report.quarantined))
    yield table_written(
        source,
        "quarantined_files",
        len(report.quarantined),
        {"run/files": markdown_table(quarantined_table(report.quarantined), 20)},
    )
    figures = feed_figures(engine, "feed_files", source, RAW_MEASURES, window.start, window.end)
    yield from daily_observations(raw_key, context.partition_keys, figures, RAW_MEASURES, "raw_rows")


def normalize_vehicles(
    context: dg.AssetExecutionContext,
    source: str,
    dealer_env: DealerEnvironment,
    warehouse: WarehouseResource,
):
    """Normalize the vehicles of the run's days' feeds."""
    normalized_key = keys_for(source)[1]
    window = context.partition_time_window
    engine = warehouse.engine()
    report = normalize_window(
        dealer_env.paths(),
        source,
        _source_settings(dealer_env, source),
        engine,
        window.start,
        window.end,
        only_new=_incremental(context),
        progress=_progress(context, normalized_key),
    )
    yield dg.MaterializeResult(
        asset_key=normalized_key,
        metadata=normalized_vehicles_metadata(report, len(context.partition_keys)),
        check_results=normalized_results(report),
    )
    yield table_written(
        source,
        "rejected_rows",
        report.rejected,
        {f"run/{r}": n for r, n in sorted(report.rejected_by_reason.items())},
    )
    figures = feed_figures(engine, "feed_files", source, NORMALIZED_MEASURES, window.start, window.end)
    yield from daily_observations(
        normalized_key, context.partition_keys, figures, NORMALIZED_MEASURES, "vehicles"
    )


def reconcile_service_requests(
    context: dg.AssetExecutionContext,
    source: str,
    dealer_env: DealerEnvironment,
    warehouse: WarehouseResource,
):
    """Apply the run's feeds (incremental) or replay from its first day (a materialization or backfill)."""
    sr_key = keys_for(source)[2]
    window = context.partition_time_window
    tags = context.run.tags
    mode = "incremental" if _incremental(context) else "replay"
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
        progress=_progress(context, sr_key),
    )
    context.log.debug(
        f"{mode}: applied {len(report.applied)} feed(s), late {len(report.late)}; "
        f"events {report.events}; skipped {report.skipped}"
    )
    yield dg.MaterializeResult(
        asset_key=sr_key,
        metadata=service_requests_metadata(report, len(context.partition_keys)),
        check_results=service_request_results(engine, source, report),
    )
    for table in RECONCILED_TABLES:
        yield table_written(source, table.name, report.written.get(table.name, 0))
    yield from service_request_days(
        engine,
        source,
        context.assets_def.partitions_def,
        context.partition_keys,
        window,
        report,
        context.run.run_id,
    )
