"""Figures as the UI shows them: each step's run figures, each day's own figures per partition, per-dealer
figures as one table.

Dagster 1.13 copies a range run's materialization metadata onto every partition of the range
(dagster-io/dagster#18123), so each partition's own figures travel as an `AssetObservation` on that partition,
logged after the materialization so that the *Partitions* tab rolls it up with it. They are read from the
warehouse's per-feed ledgers (`feed_files`, `applied_feeds`), not from what one run did, so a day shows all
its feeds whichever runs applied them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

import dagster as dg
import polars as pl
from sqlalchemy.engine import Engine

from dealer_assets.core.asset_metadata import markdown_table
from dealer_assets.core.lineage import dms_key, service_requests_key
from dealer_assets.core.warehouse import read_frame
from dealer_assets.dms.apply_feeds import ReconcileReport
from dealer_assets.dms.domain.feed_names import PARTITION_FORMAT, partition_key_of, partition_start
from dealer_assets.dms.domain.state import UPDATE_EVENTS
from dealer_assets.dms.ingest import RawFeedsReport
from dealer_assets.dms.normalize_feeds import NormalizedReport
from dealer_assets.dms.quarantine import Left, Quarantined

NO_FEED = "no feed on this day"
RAW_MEASURES = ["raw_rows", "malformed_rows"]
NORMALIZED_MEASURES = ["vehicles", "rejected_rows", "check_digit_failures"]
SR_MEASURES = ["vehicles", "created", "updated", "closed", "held", "skipped"]
LEDGERS = {
    "feed_files": "SELECT feed_as_of, file_name AS feed_file, {measures} FROM feed_files "
    "WHERE source = :s AND feed_as_of >= :start AND feed_as_of < :end AND status = 'accepted'",
    "applied_feeds": "SELECT feed_as_of, feed_file, {measures} FROM applied_feeds "
    "WHERE source = :s AND feed_as_of >= :start AND feed_as_of < :end",
}


def feed_figures(
    engine: Engine, ledger: str, source: str, measures: Sequence[str], start: datetime, end: datetime
) -> pl.DataFrame:
    """One row per feed of the source in [start, end) with its `measures`, from a per-feed ledger."""
    schema = {"feed_as_of": pl.Datetime("us", "UTC"), "feed_file": pl.String} | dict.fromkeys(
        measures, pl.Int64
    )
    with engine.connect() as conn:
        frame = read_frame(
            conn,
            LEDGERS[ledger].format(measures=", ".join(measures)),
            schema,
            {"s": source, "start": start, "end": end},
        )
    return frame.with_columns(pl.col(measures).fill_null(0)).sort("feed_as_of")


def daily_observations(
    key: dg.AssetKey,
    partition_keys: Iterable[str],
    feeds: pl.DataFrame,
    measures: Sequence[str],
    row_count: str | None = None,
    extra: dict | None = None,
) -> list[dg.AssetObservation]:
    """One observation per day: its feeds' sums of `measures` and a table of every feed (its hour's figures).

    `feeds` has one row per feed: `feed_as_of`, `feed_file` and the measure columns. `row_count` names the
    measure reported as the partition's `dagster/row_count`.
    """
    by_day = feeds.with_columns(partition=pl.col("feed_as_of").dt.strftime(PARTITION_FORMAT)).partition_by(
        "partition", as_dict=True, include_key=False
    )
    out = []
    for partition in sorted(set(partition_keys)):
        day = by_day.get((partition,))
        if day is None:
            metadata: dict = {"feeds": 0, "note": NO_FEED}
        else:
            metadata = {"feeds": day.height, **{m: int(day[m].sum()) for m in measures}}
            metadata["feed_files"] = ", ".join(day["feed_file"].to_list())
            metadata["per_feed"] = frame_table(day)
            if row_count:
                metadata["dagster/row_count"] = int(day[row_count].sum())
        out.append(dg.AssetObservation(asset_key=key, partition=partition, metadata=metadata | (extra or {})))
    return out


def table_written(source: str, table: str, rows: int, extra: dict | None = None) -> dg.AssetMaterialization:
    """One materialization per run of a table the step wrote, with the rows this run wrote."""
    return dg.AssetMaterialization(
        asset_key=dms_key(source, table), metadata={"run/rows_written": rows, **(extra or {})}
    )


def frame_table(frame: pl.DataFrame | None, limit: int = 500) -> dg.MetadataValue:
    """A frame as one table value with its schema; integer columns stay integers."""
    frame = frame if frame is not None else pl.DataFrame()
    columns = [
        dg.TableColumn(name, "int" if dtype.is_integer() else "float" if dtype.is_float() else "string")
        for name, dtype in frame.schema.items()
    ]
    head = frame.head(limit).with_columns(pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return dg.MetadataValue.table(
        records=[dg.TableRecord(row) for row in head.iter_rows(named=True)],
        schema=dg.TableSchema(columns=columns),
    )


def only_selected(context: dg.AssetExecutionContext, events: Iterable) -> Iterator:
    """A step writes all its tables in one transaction whatever was selected; it reports the selected ones.

    So `--select` and the UI may run a step's checks alone (the steps are subsettable).
    """
    keys = context.selected_asset_keys
    checks = context.selected_asset_check_keys
    for event in events:
        if isinstance(event, dg.MaterializeResult) and event.asset_key not in keys:
            yield from (
                r
                for r in event.check_results or []
                if dg.AssetCheckKey(event.asset_key, r.check_name) in checks
            )
        elif isinstance(event, dg.AssetObservation) and event.asset_key not in keys:
            continue
        else:
            yield event


def quarantined_table(quarantined: list[Quarantined]) -> pl.DataFrame:
    return pl.DataFrame(
        [(q.file_name, q.reason, q.detail) for q in quarantined],
        schema=["file_name", "reason", "detail"],
        orient="row",
    )


def left_table(left: list[Left]) -> pl.DataFrame:
    return pl.DataFrame(
        [(item.file_name, item.detail) for item in left], schema=["file_name", "detail"], orient="row"
    )


def raw_feeds_metadata(report: RawFeedsReport, partitions: int) -> dict:
    """The raw-feeds step's figures for the whole run."""
    feeds = pl.DataFrame(
        [(f["file"], f["raw_rows"], f["malformed_rows"]) for f in report.feeds],
        schema={"feed_file": pl.String, "raw_rows": pl.Int64, "malformed_rows": pl.Int64},
        orient="row",
    )
    return {
        "run/partitions": partitions,
        "run/feeds": len(report.feeds),
        "run/raw_rows": report.raw_rows,
        "run/archived_files": len(report.archived),
        "run/duplicate_deliveries": len(report.duplicates),
        "run/quarantined_files": len(report.quarantined),
        "run/left_in_drop_zone": len(report.left),
        "run/malformed_rows": report.malformed_rows,
        "run/feed_files": frame_table(feeds),
    }


def normalized_vehicles_metadata(report: NormalizedReport, partitions: int) -> dict:
    """The normalize step's figures for the whole run."""
    return {
        "run/partitions": partitions,
        "run/feeds": len(report.feeds),
        "run/vehicles": report.vehicles,
        "run/rejected_rows": report.rejected,
        "run/check_digit_failures": report.check_digit_failures,
        **{f"run/rejected/{r}": n for r, n in sorted(report.rejected_by_reason.items())},
        "run/per_dealer": frame_table(report.per_dealer),
        "preview": markdown_table(report.preview),
    }


def service_requests_metadata(report: ReconcileReport, partitions: int) -> dict:
    """The reconcile step's figures for the whole run, and the state it left."""
    trips = report.guard.filter(pl.col("held")) if report.guard is not None else None
    return {
        "mode": report.mode,
        "applied_through": report.head.isoformat() if report.head else "",
        "active_after_run": report.active,
        "closed_after_run": report.closed,
        "run/partitions": partitions,
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
    }


def service_request_days(
    engine: Engine,
    source: str,
    partitions_def: dg.PartitionsDefinition | None,
    partition_keys: Sequence[str],
    window: dg.TimeWindow,
    report: ReconcileReport,
    run_id: str,
) -> list[dg.AssetObservation]:
    """Each day of the run from the ledger; a replay also re-applied feeds on days after its range: those
    days get an observation saying so (not a materialization: a backfill's progress counts only its own)."""
    later = sorted(
        k
        for k in {partition_key_of(a) for a in report.applied_as_of if a >= window.end}
        if partitions_def is not None and partitions_def.has_partition_key(k)
    )
    end = max([window.end, *(partition_start(k) + timedelta(days=1) for k in later)])
    figures = feed_figures(engine, "applied_feeds", source, SR_MEASURES, window.start, end)
    key = service_requests_key(source)
    return daily_observations(key, partition_keys, figures, SR_MEASURES) + daily_observations(
        key, later, figures, SR_MEASURES, extra={"reapplied_by_run": run_id}
    )
