"""The SR state as the warehouse and the checkpoints keep it, and back.

In a steady hour nearly every active SR is seen again, so a stored `last_seen_at` would change for the whole
inventory every hour. Stored, it is null while the SR's VIN is in the source's newest applied feed; reading
puts that feed's as-of back. Between two hours only the SRs whose stored form differs are written.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from dealer_assets.dms.domain.normalize import TS
from dealer_assets.dms.domain.reconcile import SR_SCHEMA


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


ROW_HASH_SEEDS = (0x5EED_0001, 0x5EED_0002)


def _row_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """A 128-bit digest of each whole row: two independently seeded 64-bit hashes of all its columns."""
    row = pl.struct(*SR_SCHEMA)
    return frame.select(*(row.hash(seed).alias(f"h{i}") for i, seed in enumerate(ROW_HASH_SEEDS)))


def changed_rows(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """The rows of `after` (stored form) that are new or differ from `before` (stored form) in any column.

    Rows are compared by a 128-bit digest of all their columns, so the comparison holds 16 bytes per row
    instead of a hash table of every column; two different rows share a digest with odds of about 2^-128.
    """
    if before.is_empty():
        return after
    keys = list(_row_keys(before).columns)
    differing = _row_keys(after).with_row_index("_row").join(_row_keys(before), on=keys, how="anti")
    return after[differing["_row"].sort()]
