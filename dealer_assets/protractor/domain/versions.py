"""SCD2 history of work orders and their lines: which versions to write and which current rows to close.

`valid_from` of a fetched version is the work order's `LastModifiedTime` (UTC), i.e. Protractor's own time of
the change, so re-fetching or replaying yields the same rows; a work order without one uses the time it was
observed (the notification's receipt or the sweep). A change made outside the work order (its vehicle's VIN,
found through a `ServiceItem` notification) leaves `LastModifiedTime` as it was: that version is valid from
when it was observed. A `Delete` writes a tombstone version (`deleted` true) valid from the notification's
`received_at` and closes every current line: history stays readable. A fetched version whose
`LastModifiedTime` is older than the current one's is stale (fetches can cross) and ignored. When a change
carries a time not after the current version's, it is placed one microsecond after it so intervals never
overlap.
"""

from __future__ import annotations

import polars as pl

from dealer_assets.protractor.domain.workorders import FETCHED_SCHEMA, LINE_FIELDS, TS

TRACKED = [
    "work_order_number",
    "work_order_type",
    "vin",
    "protractor_stage",
    "protractor_service_advisor",
    "protractor_technician",
    "protractor_service_advisor_id",
    "protractor_technician_id",
    "created_time",
    "modified_time",
    "completed",
    "deleted",
]
MAPPED = {"status": pl.String, "service_advisor": pl.String, "technician": pl.String}
SNAPSHOT_SCHEMA: dict[str, pl.DataType] = {
    c: ({**FETCHED_SCHEMA, **MAPPED, "valid_from": TS, "valid_to": TS})[c]
    for c in (
        "location_id",
        "work_order_id",
        "work_order_number",
        "work_order_type",
        "vin",
        "protractor_stage",
        "status",
        "service_advisor",
        "technician",
        "protractor_service_advisor",
        "protractor_technician",
        "protractor_service_advisor_id",
        "protractor_technician_id",
        "created_time",
        "modified_time",
        "completed",
        "deleted",
        "valid_from",
        "valid_to",
    )
}
"""The columns of `work_order_snapshots`, in the table's order."""
LINE_SCHEMA: dict[str, pl.DataType] = {
    "location_id": pl.String,
    "work_order_id": pl.String,
    "package_id": pl.String,
    "package_title": pl.String,
    "line_id": pl.String,
    **{k: v for k, v in LINE_FIELDS.items() if k != "package_title"},
    "valid_from": TS,
    "valid_to": TS,
}
LINE_KEY = ["location_id", "work_order_id", "line_id"]
WO_KEY = ["location_id", "work_order_id"]
DELETE_SCHEMA: dict[str, pl.DataType] = {
    "location_id": pl.String,
    "work_order_id": pl.String,
    "received_at": TS,
}
CLOSED_SCHEMA: dict[str, pl.DataType] = {"valid_from": TS, "valid_to": TS}
_LINE_TRACKED = ["package_id", *LINE_FIELDS]
_ONE_US = pl.duration(microseconds=1)


def _differs(cols: list[str]) -> pl.Expr:
    return pl.any_horizontal([~pl.col(c).eq_missing(pl.col(f"{c}_cur")) for c in cols])


def _candidates(fetched: pl.DataFrame, deletes: pl.DataFrame, current: pl.DataFrame) -> pl.DataFrame:
    """One candidate per work order: the latest of its fetch and its delete (a tie goes to the delete)."""
    fetch = fetched.select(
        *WO_KEY,
        *TRACKED,
        pl.coalesce("modified_time", "observed_at").alias("at"),
        pl.lit(0).alias("_rank"),
        "observed_at",
    )
    tomb = (
        deletes.group_by(WO_KEY)
        .agg(pl.col("received_at").min().alias("at"))
        .join(current.select(*WO_KEY, *[c for c in TRACKED if c != "deleted"]), on=WO_KEY, how="left")
        .join(fetched.select(*WO_KEY, *[pl.col(c).alias(f"{c}_f") for c in TRACKED]), on=WO_KEY, how="left")
        .with_columns([pl.coalesce(c, f"{c}_f").alias(c) for c in TRACKED if c != "deleted"])
        .filter(pl.col("created_time").is_not_null() | pl.col("work_order_number").is_not_null())
        .select(*WO_KEY, *[c for c in TRACKED if c != "deleted"], pl.lit(True).alias("deleted"), "at")
        .with_columns(pl.lit(1).alias("_rank"), pl.lit(None, TS).alias("observed_at"))
        .select(fetch.columns)
    )
    return (
        pl.concat([fetch, tomb.cast(fetch.schema)])
        .sort([*WO_KEY, "at", "_rank"], nulls_last=False)
        .unique(WO_KEY, keep="last", maintain_order=True)
    )


def _compare_lines(
    cand: pl.DataFrame, current_lines: pl.DataFrame, fetched_lines: pl.DataFrame
) -> pl.DataFrame:
    """Every current and fetched line of the candidates' work orders, flagged `_new` (a version to write) and
    `_closed` (a current row to close); a deleted work order closes all its lines and writes none."""
    refreshed = cand.filter(~pl.col("deleted")).select(WO_KEY)
    new_lines = fetched_lines.join(refreshed, on=WO_KEY, how="semi").with_columns(
        pl.lit(True).alias("_in_new")
    )
    old_lines = current_lines.join(cand.select(WO_KEY), on=WO_KEY, how="semi")
    line_cmp = new_lines.join(
        old_lines.select(*LINE_KEY, *[pl.col(c).alias(f"{c}_cur") for c in _LINE_TRACKED], "valid_from"),
        on=LINE_KEY,
        how="full",
        coalesce=True,
    ).join(cand.select(*WO_KEY, "deleted"), on=WO_KEY, how="left")
    gone = pl.col("_in_new").is_null()
    return line_cmp.with_columns(
        (pl.col("deleted") & pl.col("valid_from").is_not_null()).alias("_close_only"),
        (pl.col("valid_from").is_null() | (_differs(_LINE_TRACKED) & ~gone)).alias("_new"),
        (pl.col("valid_from").is_not_null() & (gone | _differs(_LINE_TRACKED))).alias("_closed"),
    ).with_columns(
        (pl.col("_new") & ~pl.col("deleted")).alias("_new"),
        (pl.col("_closed") | pl.col("_close_only")).alias("_closed"),
    )


def next_versions(
    current: pl.DataFrame,
    fetched: pl.DataFrame,
    deletes: pl.DataFrame,
    current_lines: pl.DataFrame,
    fetched_lines: pl.DataFrame,
) -> dict[str, pl.DataFrame]:
    """The snapshot and line versions to write and the current rows to close, for one batch.

    `current`/`current_lines` are the rows with `valid_to` null; `fetched`/`fetched_lines` come from
    `flatten`; `deletes` are Delete notifications. Re-applying the same batch changes nothing.
    """
    cand = _candidates(fetched, deletes, current).join(
        current.select(
            *WO_KEY, *[pl.col(c).alias(f"{c}_cur") for c in TRACKED], pl.col("valid_from").alias("cur_from")
        ),
        on=WO_KEY,
        how="left",
    )
    own_clock = (
        pl.col("modified_time").is_not_null() & pl.col("modified_time_cur").is_not_null() & ~pl.col("deleted")
    )
    stale = (
        pl.when(own_clock)
        .then(pl.col("modified_time") < pl.col("modified_time_cur"))
        .otherwise(pl.col("at") < pl.col("cur_from"))
    )
    outside = own_clock & (pl.col("modified_time") == pl.col("modified_time_cur"))
    cand = cand.filter(pl.col("cur_from").is_null() | ~stale).with_columns(
        pl.when(outside).then(pl.col("observed_at")).otherwise(pl.col("at")).alias("at")
    )
    line_cmp = _compare_lines(cand, current_lines, fetched_lines)
    lines_changed = line_cmp.filter(pl.col("_new") | pl.col("_closed")).select(WO_KEY).unique()
    changed = (
        cand.join(lines_changed.with_columns(pl.lit(True).alias("_lines")), on=WO_KEY, how="left")
        .filter(pl.col("cur_from").is_null() | _differs(TRACKED) | pl.col("_lines").fill_null(False))
        .with_columns(
            pl.when(pl.col("cur_from").is_null() | (pl.col("at") > pl.col("cur_from")))
            .then(pl.col("at"))
            .otherwise(pl.col("cur_from") + _ONE_US)
            .alias("valid_from")
        )
    )
    snapshots = (
        changed.select(
            *WO_KEY,
            *TRACKED,
            "valid_from",
            pl.lit(None, TS).alias("valid_to"),
            *[pl.lit(None, t).alias(c) for c, t in MAPPED.items()],
        )
        .select(list(SNAPSHOT_SCHEMA))
        .cast(SNAPSHOT_SCHEMA)
    )
    closed = changed.filter(pl.col("cur_from").is_not_null()).select(
        *WO_KEY, pl.col("cur_from").alias("valid_from"), pl.col("valid_from").alias("valid_to")
    )
    starts = changed.select(*WO_KEY, pl.col("valid_from").alias("_start"))
    line_cmp = line_cmp.join(starts, on=WO_KEY, how="inner")
    lines = (
        line_cmp.filter(pl.col("_new"))
        .with_columns(pl.col("_start").alias("valid_from"), pl.lit(None, TS).alias("valid_to"))
        .select(list(LINE_SCHEMA))
        .cast(LINE_SCHEMA)
    )
    closed_lines = line_cmp.filter(pl.col("_closed")).select(
        *LINE_KEY, "valid_from", pl.col("_start").alias("valid_to")
    )
    return {"snapshots": snapshots, "closed": closed, "lines": lines, "closed_lines": closed_lines}
