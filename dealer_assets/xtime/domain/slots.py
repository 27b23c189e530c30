"""Slot choice: the first available slot at or after `earliest`, strictly before `latest`, and not begun when
the booking is sent (`now`, passed in: Xtime refuses a time in the past).

Requests carry dealer-local wall times; Xtime's slots carry their UTC offset (`2026-05-01T09:30-0700`). Both
are compared as instants: the request's local time is placed in the dealership's zone (a wall time skipped by
the spring change means the first instant after the gap, 03:00; an ambiguous autumn time is the first of the
two), so the choice is right across both DST changes.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

SLOT_SCHEMA = {"appointment_local": pl.String(), "duration_minutes": pl.Int64()}
CHOICE_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "appointment_local": pl.String(),
    "appointment_at": pl.Datetime("us", "UTC"),
    "duration_minutes": pl.Int64(),
}


def slot_instant(col: str = "appointment_local") -> pl.Expr:
    """The UTC instant of an Xtime local time with offset; both `-0700` and `-07:00`, with or without seconds."""
    text = pl.col(col).str.strip_chars()
    return pl.coalesce(
        text.str.to_datetime("%Y-%m-%dT%H:%M%z", strict=False, time_zone="UTC"),
        text.str.to_datetime("%Y-%m-%dT%H:%M:%S%z", strict=False, time_zone="UTC"),
    )


def local_to_utc(col: str, time_zone: str) -> pl.Expr:
    naive = pl.col(col).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False)
    placed = naive.dt.replace_time_zone(time_zone, ambiguous="earliest", non_existent="null")
    gap_end = (naive.dt.truncate("1h") + pl.duration(hours=1)).dt.replace_time_zone(
        time_zone, non_existent="null"
    )
    skipped = pl.when(placed.is_null() & naive.is_not_null()).then(gap_end)
    return pl.coalesce(placed, skipped).dt.convert_time_zone("UTC")


def local_to_utc_by_zone(col: str, zone_col: str, zones: list[str]) -> pl.Expr:
    """`local_to_utc` for rows in several zones (`zone_col`, each one of `zones`); null for any other zone."""
    return pl.coalesce(
        pl.lit(None, pl.Datetime("us", "UTC")),
        *(pl.when(pl.col(zone_col) == zone).then(local_to_utc(col, zone)) for zone in zones),
    )


def choose_slot(
    request_id: str, earliest: str, latest: str, time_zone: str, slots: pl.DataFrame, now: datetime
) -> pl.DataFrame:
    """At most one row: the chosen slot of one request, from the availabilities Xtime returned for it."""
    bounds = pl.DataFrame({"earliest": [earliest], "latest": [latest]}).select(
        local_to_utc("earliest", time_zone).alias("lo"), local_to_utc("latest", time_zone).alias("hi")
    )
    lo, hi = bounds.row(0)
    return (
        slots.cast(SLOT_SCHEMA)
        .with_columns(slot_instant().alias("appointment_at"))
        .filter(
            pl.col("appointment_at").is_not_null()
            & (pl.col("appointment_at") >= lo)
            & (pl.col("appointment_at") < hi)
            & (pl.col("appointment_at") > pl.lit(now).dt.convert_time_zone("UTC"))
        )
        .sort("appointment_at", "appointment_local")
        .head(1)
        .select(
            pl.lit(request_id).alias("request_id"), "appointment_local", "appointment_at", "duration_minutes"
        )
        .cast(CHOICE_SCHEMA)
    )
