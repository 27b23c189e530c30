"""Notifications from the journal -> the rows of `protractor_events`, and what a sweep must fetch.

A notification repeats one still pending (same location, type, object and operation, not yet processed), or
one earlier in the same batch, is a duplicate: Protractor sends duplicates and bursts, and one fetch serves
them all. Once processed, the same notification again is news (the object changed again) and is kept.

A `ServiceItem` or `Contact` notification (a vehicle's VIN corrected, a customer renamed) re-fetches every work
order that, as last fetched, references that service item or contact: the work order itself may not change.
"""

from __future__ import annotations

import polars as pl

from dealer_assets.protractor.domain.workorders import TS, local_to_utc

EVENT_KEY = ["location_id", "type", "object_id", "operation"]
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String,
    "location_id": pl.String,
    "type": pl.String,
    "object_id": pl.String,
    "operation": pl.String,
    "received_at": TS,
    "processed_at": TS,
}


def new_events(journal_rows: pl.DataFrame, pending: pl.DataFrame, known_ids: pl.DataFrame) -> pl.DataFrame:
    """Journal rows to insert: not already loaded (by event_id) and not a duplicate of a pending one."""
    return (
        journal_rows.join(known_ids.select("event_id"), on="event_id", how="anti")
        .join(pending.select(EVENT_KEY).unique(), on=EVENT_KEY, how="anti")
        .sort("received_at", "event_id")
        .unique(EVENT_KEY, keep="first", maintain_order=True)
        .with_columns(pl.lit(None, TS).alias("processed_at"))
        .select(list(EVENT_SCHEMA))
        .cast(EVENT_SCHEMA)
    )


def _referencing(pending: pl.DataFrame, refs: pl.DataFrame) -> pl.DataFrame:
    """`ServiceItem` and `Contact` notifications -> an `Update` of each work order referencing the object."""
    frames = [
        pending.filter(pl.col("type") == kind)
        .with_columns(pl.col("object_id").str.to_lowercase())
        .join(
            refs.select("location_id", pl.col(column).alias("object_id"), pl.col("work_order_id")),
            on=["location_id", "object_id"],
            how="inner",
        )
        .select(
            "location_id",
            pl.lit("WorkOrder").alias("type"),
            pl.col("work_order_id").alias("object_id"),
            pl.lit("Update").alias("operation"),
            "received_at",
        )
        for kind, column in (("ServiceItem", "service_item_id"), ("Contact", "contact_id"))
    ]
    return pl.concat(frames)


def work_order_batch(pending: pl.DataFrame, refs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pending notifications -> (work order ids to fetch with when they were observed, deletes); `refs` are the
    service items and contacts that work orders referenced when last fetched."""
    columns = ["location_id", "type", "object_id", "operation", "received_at"]
    orders = pl.concat(
        [pending.filter(pl.col("type") == "WorkOrder").select(columns), _referencing(pending, refs)]
    )
    deletes = (
        orders.filter(pl.col("operation") == "Delete")
        .group_by("location_id", pl.col("object_id").alias("work_order_id"))
        .agg(pl.col("received_at").max())
    )
    fetch = (
        orders.filter(pl.col("operation") != "Delete")
        .group_by("location_id", pl.col("object_id").alias("work_order_id"))
        .agg(pl.col("received_at").max().alias("observed_at"))
        .join(deletes, on=["location_id", "work_order_id"], how="left")
        .filter(pl.col("received_at").is_null() | (pl.col("observed_at") > pl.col("received_at")))
        .select("location_id", "work_order_id", "observed_at")
    )
    return fetch.sort("location_id", "work_order_id"), deletes.sort("location_id", "work_order_id")


def to_refetch(listed: pl.DataFrame, current: pl.DataFrame, location_id: str, zone: str) -> pl.DataFrame:
    """Work orders of a listing (thin, as returned by `GET /WorkOrder/?startDate=..`) whose version differs
    from the current snapshot, or that we do not have: the ids a resync fetches."""
    if listed.is_empty():
        return pl.DataFrame(schema={"work_order_id": pl.String})
    thin = listed.select(
        pl.col("ID").str.to_lowercase().alias("work_order_id"),
        local_to_utc(pl.col("Header").struct.field("LastModifiedTime"), zone).alias("modified_time"),
    )
    have = current.filter((pl.col("location_id") == location_id) & pl.col("valid_to").is_null()).select(
        "work_order_id", pl.col("modified_time").alias("have_modified"), pl.lit(True).alias("_have")
    )
    return (
        thin.join(have, on="work_order_id", how="left")
        .filter(pl.col("_have").is_null() | ~pl.col("modified_time").eq_missing(pl.col("have_modified")))
        .select("work_order_id")
        .unique()
        .sort("work_order_id")
    )
