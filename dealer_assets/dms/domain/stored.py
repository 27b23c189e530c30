"""The SR state as the warehouse and the checkpoints keep it, and back.

In a steady hour nearly every active SR is seen again, so a stored `last_seen_at` would change for the whole
inventory every hour. Stored, it is null while the SR's VIN is in the source's newest applied feed; reading
puts that feed's as-of back. Between two hours only the SRs whose stored form differs are written.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from dealer_assets.dms.domain.state import SR_SCHEMA
from dealer_assets.dms.domain.vehicles import TS


def stored_form(state: pl.DataFrame, newest_feed: datetime | None) -> pl.DataFrame:
    """`state` with `last_seen_at` null where it is `newest_feed` (the source's newest applied feed)."""
    if newest_feed is None:
        return state
    seen_last = (pl.col("status") == "active") & (pl.col("last_seen_at") == pl.lit(newest_feed, TS))
    return state.with_columns(
        pl.when(seen_last).then(pl.lit(None, TS)).otherwise(pl.col("last_seen_at")).alias("last_seen_at")
    )


def read_form(stored: pl.DataFrame, newest_feed: datetime | None) -> pl.DataFrame:
    """The state with every `last_seen_at` filled in: the inverse of `stored_form` for the same feed."""
    return stored.with_columns(pl.col("last_seen_at").fill_null(pl.lit(newest_feed, TS)))


def changed_rows(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """The rows of `after` that are new or differ from their row in `before` in any column (both in stored form).

    `after` lists `before`'s SRs first, in their order, then new ones: the order `apply_feed` keeps, so rows
    are compared in place rather than joined.
    """
    kept = before.height
    if after.height < kept or not after.get_column("sr_id").head(kept).equals(before.get_column("sr_id")):
        raise ValueError("the new state does not list the SRs before it first, in their order")
    head = after.head(kept)
    differs = pl.select(
        pl.any_horizontal(head.get_column(c).ne_missing(before.get_column(c)) for c in SR_SCHEMA)
    ).to_series()
    return pl.concat([head.filter(differs), after.slice(kept)])
