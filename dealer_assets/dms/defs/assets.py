"""DMS feed assets, one set per configured source: raw feeds -> normalized vehicles -> service requests.

Each step is a multi-asset whose outputs are the step's main asset and every warehouse table it writes.
"""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from dealer_assets.core.asset_metadata import markdown_table, table_metadata
from dealer_assets.core.progress import Progress
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.tags import MODE_TAG, SOURCE_TAG
from dealer_assets.dms import tables as t
from dealer_assets.dms.ingest import Left, ingest_raw_feeds, triage_misdelivered
from dealer_assets.dms.normalization import normalize_window
from dealer_assets.dms.settings import DealerSettings, SourceSettings, load_settings, source_settings_in

from .checks import CHECK_DIGITS_VALID, NO_QUARANTINED_FILES, REJECTED_ROW_SHARE
from .figures import daily_observations, feed_figures, frame_table, only_selected, table_written
from .partitions import SINGLE_RUN
from .reconciled import build_service_requests
from .specs import (
    DROP_ZONE_GROUP,
    DROP_ZONE_KEY,
    MISDELIVERED_KEY,
    NORMALIZED_TABLES,
    OWNERS,
    PER_DAY_NOTE,
    RAW_TABLES,
    RECONCILED_TABLES,
    keys_for,
    table_spec,
)

RAW_MEASURES = ["raw_rows", "malformed_rows"]
NORMALIZED_MEASURES = ["vehicles", "rejected_rows", "check_digit_failures"]
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def _settings(dealer_env: DealerEnvironment) -> DealerSettings:
    """The settings file as it stands now, re-validated before any data moves."""
    return load_settings(dealer_env.settings_file)


def _source_settings(dealer_env: DealerEnvironment, source: str) -> SourceSettings:
    return source_settings_in(_settings(dealer_env), source, dealer_env.settings_file)


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


def _incremental(context: dg.AssetExecutionContext) -> bool:
    return context.run.tags.get(MODE_TAG) == "incremental"


def _progress(context: dg.AssetExecutionContext, what: str) -> Progress:
    return Progress(f"{what} ({context.run.run_id[:8]})", context.log.info)


def build_source_assets(source: str, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The source's three steps: raw feeds -> normalized vehicles -> service requests."""
    step = {
        "partitions_def": partitions_def,
        "backfill_policy": SINGLE_RUN,
        "op_tags": {SOURCE_TAG: source},
        "retry_policy": RETRY,
        "pool": f"dms_{source}",
        "can_subset": True,
    }
    return [
        _raw_step(source, partitions_def, step),
        _normalized_step(source, partitions_def, step),
        build_service_requests(source, partitions_def, step),
    ]


def source_tables(source: str) -> list[dg.AssetSpec]:
    """The warehouse tables the source's steps write, each below the step that writes it."""
    raw_key, normalized_key, sr_key = keys_for(source)
    return (
        [table_spec(source, tb, raw_key) for tb in RAW_TABLES]
        + [table_spec(source, tb, normalized_key) for tb in NORMALIZED_TABLES]
        + [table_spec(source, tb, sr_key) for tb in RECONCILED_TABLES]
    )


def _raw_step(source: str, partitions_def: dg.PartitionsDefinition, step: dict) -> dg.AssetsDefinition:
    raw_key = keys_for(source)[0]
    spec = dg.AssetSpec(
        key=raw_key,
        deps=[DROP_ZONE_KEY],
        group_name=f"dms_{source}",
        kinds={"csv", "filesystem"},
        owners=OWNERS,
        partitions_def=partitions_def,
        description=f"Feed files of source `{source}` taken from the drop zone, partitioned by the day of their "
        "as-of time: each is archived read-only under its sha256 before anything reads it, then parsed in the "
        "source's layout (a parquet per feed under `raw/`). Rows with the wrong number of fields are rejected; "
        "a file that cannot be read is quarantined, and the other feeds still flow. **Materialize** or "
        "**Backfill** re-reads the archived feeds of the selected days (a feed is archived once, whatever "
        f"runs it). {PER_DAY_NOTE}",
    )

    @dg.multi_asset(
        name=f"{source}__raw_dms_feeds",
        specs=[spec],
        check_specs=[NO_QUARANTINED_FILES.spec(raw_key)],
        **step,
    )
    def raw_dms_feeds(
        context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ):
        yield from only_selected(context, _raw_dms_feeds(context, source, dealer_env, warehouse))

    return raw_dms_feeds


def _raw_dms_feeds(
    context: dg.AssetExecutionContext,
    source: str,
    dealer_env: DealerEnvironment,
    warehouse: WarehouseResource,
):
    raw_key = keys_for(source)[0]
    window = context.partition_time_window
    settings = _settings(dealer_env)
    engine = warehouse.engine()
    report = ingest_raw_feeds(
        dealer_env.paths(),
        source,
        _source_settings(dealer_env, source),
        set(settings.sources),
        engine,
        window.start,
        window.end,
        received_at=datetime.now(UTC),
        only_new=_incremental(context),
        progress=_progress(context, keys_for(source)[0].to_user_string()),
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
    feeds = pl.DataFrame(
        [(f["file"], f["raw_rows"], f["malformed_rows"]) for f in report.feeds],
        schema={"feed_file": pl.String, "raw_rows": pl.Int64, "malformed_rows": pl.Int64},
        orient="row",
    )
    yield dg.MaterializeResult(
        asset_key=raw_key,
        metadata={
            "run/partitions": len(context.partition_keys),
            "run/feeds": len(report.feeds),
            "run/raw_rows": report.raw_rows,
            "run/archived_files": len(report.archived),
            "run/duplicate_deliveries": len(report.duplicates),
            "run/quarantined_files": len(report.quarantined),
            "run/left_in_drop_zone": len(report.left),
            "run/malformed_rows": report.malformed_rows,
            "run/feed_files": frame_table(feeds),
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
    yield table_written(source, "feed_files", len(report.feeds) + len(report.quarantined))
    yield table_written(
        source, "quarantined_files", len(report.quarantined), {"run/files": markdown_table(quarantined, 20)}
    )
    figures = feed_figures(engine, "feed_files", source, RAW_MEASURES, window.start, window.end)
    yield from daily_observations(raw_key, context.partition_keys, figures, RAW_MEASURES, "raw_rows")


def _normalized_step(source: str, partitions_def: dg.PartitionsDefinition, step: dict) -> dg.AssetsDefinition:
    raw_key, normalized_key, _ = keys_for(source)
    spec = dg.AssetSpec(
        key=normalized_key,
        deps=[raw_key],
        group_name=f"dms_{source}",
        kinds={"polars", "parquet"},
        owners=OWNERS,
        partitions_def=partitions_def,
        description="Vehicles of each raw feed with normalized VINs (upper case, no spaces or dashes, 17 valid "
        "characters; a wrong check digit is flagged, not rejected), dealer id, stock number and system code, "
        "one parquet per feed under `normalized/`. Rejected rows go to `rejected_rows` with their line number "
        "and reason. **Materialize** or **Backfill** re-normalizes the feeds of the selected days from their "
        f"raw parquet. {PER_DAY_NOTE}",
    )

    @dg.multi_asset(
        name=f"{source}__normalized_vehicles",
        specs=[spec],
        check_specs=[REJECTED_ROW_SHARE.spec(normalized_key), CHECK_DIGITS_VALID.spec(normalized_key)],
        **step,
    )
    def normalized_vehicles(
        context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ):
        yield from only_selected(context, _normalized_vehicles(context, source, dealer_env, warehouse))

    return normalized_vehicles


def _normalized_vehicles(
    context: dg.AssetExecutionContext,
    source: str,
    dealer_env: DealerEnvironment,
    warehouse: WarehouseResource,
):
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
        progress=_progress(context, keys_for(source)[1].to_user_string()),
    )
    total = report.vehicles + report.rejected
    share = report.rejected / total if total else 0.0
    yield dg.MaterializeResult(
        asset_key=normalized_key,
        metadata={
            "run/partitions": len(context.partition_keys),
            "run/feeds": len(report.feeds),
            "run/vehicles": report.vehicles,
            "run/rejected_rows": report.rejected,
            "run/check_digit_failures": report.check_digit_failures,
            **{f"run/rejected/{r}": n for r, n in sorted(report.rejected_by_reason.items())},
            "run/per_dealer": frame_table(report.per_dealer),
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
