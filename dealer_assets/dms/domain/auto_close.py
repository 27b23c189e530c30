"""Rules 6-8 of CONTRACT section 4: which active SRs a covering feed no longer lists, when their close is due,
and the guard that holds a dealer's mass close for an operator."""

from __future__ import annotations

import polars as pl

from dealer_assets.dms.domain.state import CHANGE_FLAGS, SR_SCHEMA
from dealer_assets.dms.settings import SourceSettings


def closes_due(
    updated: pl.LazyFrame, coverage_rows: pl.DataFrame, settings: SourceSettings, t: pl.Expr
) -> pl.DataFrame:
    """Rule 6: the active SRs of covered dealers that the feed no longer lists, and whether their close is due."""
    close_mode = settings.auto_close.mode
    if close_mode == "immediately":
        due = pl.col("_missing")
    elif close_mode == "after_days":
        due = pl.col("_missing") & (t > pl.col("auto_close_at"))
    else:
        due = pl.lit(False)
    return (
        updated.with_columns(
            (pl.col("dealer_id").is_in(coverage_rows["dealer_id"].implode()) & ~pl.col("_seen")).alias(
                "_missing"
            )
        )
        .with_columns(
            pl.when("_missing")
            .then(pl.coalesce("missing_since", t))
            .otherwise("missing_since")
            .alias("missing_since"),
            due.alias("_due"),
        )
        .select(
            "_row",
            *SR_SCHEMA,
            *CHANGE_FLAGS,
            "_old_stock",
            "_old_dealer",
            "_old_client",
            "_old_auto_close_at",
        )
        .collect()
    )


def guard_dealers(judged: pl.DataFrame, settings: SourceSettings) -> pl.DataFrame:
    """Rule 8 (amended): the guard measures the share of the dealer's SRs that existed before the feed (after
    its updates) whose VINs the feed lacks; only dealers with closes due are judged."""
    dealers = (
        judged.lazy()
        .group_by("dealer_id")
        .agg(
            pl.len().cast(pl.UInt32).alias("_dealer_active"),
            pl.col("_missing").sum().cast(pl.UInt32).alias("_dealer_missing"),
            pl.col("_due").sum().cast(pl.UInt32).alias("_dealer_due"),
        )
        .filter(pl.col("_dealer_due") > 0)
    )
    guard = settings.auto_close_guard
    return dealers.with_columns(
        (
            (pl.col("_dealer_active") >= guard.min_active)
            & (pl.col("_dealer_missing") > guard.max_fraction * pl.col("_dealer_active"))
            if guard
            else pl.lit(False)
        ).alias("_tripped")
    ).collect()


def apply_closes(
    judged: pl.DataFrame, dealers: pl.DataFrame, released: frozenset[str], t: pl.Expr
) -> pl.DataFrame:
    """Rules 6 and 8: close what is due, except at dealers whose closes the guard holds and no operator
    released; a closed SR never changes again (rule 9)."""
    held_dealers = [d for d, tripped in dealers.select("dealer_id", "_tripped").iter_rows() if tripped]
    held_dealers = [d for d in held_dealers if d not in released]
    return (
        judged.lazy()
        .with_columns((pl.col("_due") & pl.col("dealer_id").is_in(held_dealers)).alias("_held"))
        .with_columns((pl.col("_due") & ~pl.col("_held")).alias("_close"))
        .with_columns(
            pl.when("_close").then(pl.lit("closed")).otherwise("status").alias("status"),
            pl.when("_close").then(t).otherwise("closed_at").alias("closed_at"),
            pl.when("_close")
            .then(pl.lit("missing_from_feed"))
            .otherwise("close_reason")
            .alias("close_reason"),
            pl.when("_close").then(t).otherwise("updated_at").alias("updated_at"),
        )
        .collect()
    )
