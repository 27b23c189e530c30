"""Figures as the UI shows them: each day's own figures per partition, per-dealer figures as one table.

Dagster 1.13 copies a range run's materialization metadata onto every partition of the range
(dagster-io/dagster#18123), so each partition's own figures travel as an `AssetObservation` on that partition,
logged after the materialization so that the *Partitions* tab rolls it up with it. They are read from the
warehouse's per-feed ledgers (`feed_files`, `applied_feeds`), not from what one run did, so a day shows all
its feeds whichever runs applied them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

import dagster as dg
import polars as pl
from sqlalchemy.engine import Engine

from dealer_assets.core.lineage import dms_key
from dealer_assets.core.warehouse import read_frame
from dealer_assets.dms.domain.feed_names import PARTITION_FORMAT

NO_FEED = "no feed on this day"
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
