"""Figures as the UI shows them: each hour's own figures per partition, per-dealer figures as one table.

Dagster 1.13 copies a range run's materialization metadata onto every partition of the range
(dagster-io/dagster#18123), so each partition's own figures travel as an `AssetObservation` on that partition,
logged after the materialization so that the *Partitions* tab rolls it up with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import dagster as dg
import polars as pl

from dealer_assets.dms.domain.feed_names import parse_feed_name

NO_FEED = "no feed in this hour"


def partition_of_file(file_name: str) -> str | None:
    name = parse_feed_name(file_name)
    return name.partition_key if name else None


def per_partition_observations(
    key: dg.AssetKey,
    partitions_def: dg.PartitionsDefinition | None,
    partition_keys: Iterable[str],
    feeds: pl.DataFrame,
    measures: Sequence[str],
    row_count: str | None = None,
) -> list[dg.AssetObservation]:
    """One observation per partition: the feeds whose as-of falls in that hour and the sums of `measures`.

    `feeds` has one row per feed: `partition`, `feed_file` and the measure columns. `row_count` names the
    measure reported as the partition's `dagster/row_count`.
    """
    wanted = sorted(set(partition_keys) | set(feeds["partition"].drop_nulls().to_list()))
    if partitions_def is not None:
        wanted = [p for p in wanted if partitions_def.has_partition_key(p)]
    sums = (
        feeds.group_by("partition")
        .agg(
            pl.len().alias("feeds"),
            pl.col("feed_file").sort().str.join(", ").alias("feed_files"),
            *[pl.col(m).sum() for m in measures],
        )
        .rows_by_key("partition", named=True, unique=True)
        if feeds.height
        else {}
    )
    out = []
    for partition in wanted:
        row = sums.get(partition)
        if row is None:
            metadata: dict = {"feeds": 0, "note": NO_FEED}
        else:
            metadata = {"feeds": int(row["feeds"]), **{m: int(row[m]) for m in measures}}
            metadata["feed_files"] = row["feed_files"]
            if row_count:
                metadata["dagster/row_count"] = int(row[row_count])
        out.append(dg.AssetObservation(asset_key=key, partition=partition, metadata=metadata))
    return out


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

    So `--select` and the UI may pick any asset of a step (the multi-assets are subsettable).
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
