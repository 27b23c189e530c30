"""The reconciliation rules: (state, one feed's vehicles, settings, as-of) -> (state, events, skipped).

Each step is one rule of CONTRACT section 4 (rules 6-8 in `auto_close.py`, the events in `events.py`). Time is
the feed's as-of and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import polars as pl

from dealer_assets.dms.domain.auto_close import apply_closes, closes_due, guard_dealers
from dealer_assets.dms.domain.eligibility import feed_rows
from dealer_assets.dms.domain.events import feed_events
from dealer_assets.dms.domain.state import (
    COVERAGE_SCHEMA,
    EVENT_SCHEMA,
    GUARD_SCHEMA,
    SKIPPED_SCHEMA,
    SR_SCHEMA,
    FeedOutcome,
    HistoryOutcome,
)
from dealer_assets.dms.domain.vehicles import TS, FeedRef
from dealer_assets.dms.settings import SourceSettings


def _sightings(active: pl.LazyFrame, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(each active SR's sighting in the feed, in the SRs' order; the VINs of feed rows no active SR carries).

    One full join on VIN serves rules 4, 5 and 7, and only its narrow result outlives this function.
    """
    matched = (
        active.select("_row", "vin")
        .join(
            rows.lazy().select(
                "vin",
                pl.lit(True).alias("_seen"),
                (pl.col("skip_reason").is_null()).alias("_eligible"),
                pl.col("stock_no").alias("_feed_stock"),
                pl.col("dealer_id").alias("_feed_dealer"),
                pl.col("client").alias("_feed_client"),
            ),
            on="vin",
            how="full",
            coalesce=True,
        )
        .collect()
    )
    seen, unclaimed = pl.collect_all(
        [
            matched.lazy()
            .filter(pl.col("_row").is_not_null())
            .sort("_row")
            .select(
                pl.col("_seen", "_eligible").fill_null(False), "_feed_stock", "_feed_dealer", "_feed_client"
            ),
            matched.lazy().filter(pl.col("_row").is_null()).select("vin"),
        ]
    )
    return seen, unclaimed


def apply_feed(
    state: pl.DataFrame,
    vehicles: pl.DataFrame,
    settings: SourceSettings,
    feed: FeedRef,
    released: frozenset[str] = frozenset(),
) -> FeedOutcome:
    """Apply one feed under rules 2-9. `released`: dealers whose hold on this feed an operator released
    (rule 8): their closes apply.

    The new state lists `state`'s rows in their order, then the SRs this feed created, so that what changed
    can be found by comparing rows in place.
    """
    t = pl.lit(feed.as_of, TS)
    ident = {"source": pl.lit(feed.source), "feed_as_of": t, "feed_file": pl.lit(feed.file_name)}
    rows = _eligible_rows(vehicles, settings)
    coverage_rows = _covered_dealers(rows, settings, ident, t)
    prior = state.lazy().with_row_index("_row")
    active = prior.filter(pl.col("status") == "active")
    closed = prior.filter(pl.col("status") != "active")
    seen, unclaimed = _sightings(active, rows)
    created, skipped = _creates(rows, unclaimed, closed, settings, feed, ident, t)
    updated = _track_and_reset(active, seen, settings, t)
    judged = closes_due(updated, coverage_rows, settings, t)
    dealers = guard_dealers(judged, settings)
    judged = apply_closes(judged, dealers, released, t)
    guard_report = (
        dealers.select(
            pl.lit(feed.source).alias("source"),
            t.alias("feed_as_of"),
            "dealer_id",
            pl.col("_dealer_active").alias("active"),
            pl.col("_dealer_due").alias("to_close"),
            pl.col("_tripped").alias("held"),
        )
        .cast(GUARD_SCHEMA)
        .sort("dealer_id")
    )
    created_rows, skipped_rows = pl.collect_all(
        [created, skipped.select(list(SKIPPED_SCHEMA)).cast(SKIPPED_SCHEMA)]
    )
    events = feed_events(created_rows, judged, dealers, settings.auto_close_guard).with_columns(**ident)
    kept = closed.select("_row", *SR_SCHEMA).cast(SR_SCHEMA).collect()
    new_state = pl.concat(
        [
            kept.merge_sorted(judged.select("_row", *SR_SCHEMA).cast(SR_SCHEMA), key="_row").drop("_row")
            if kept.height
            else judged.select(list(SR_SCHEMA)).cast(SR_SCHEMA),
            created_rows.cast(SR_SCHEMA),
        ]
    )
    return FeedOutcome(
        state=new_state,
        events=events.select(list(EVENT_SCHEMA)).cast(EVENT_SCHEMA),
        skipped=skipped_rows,
        coverage=coverage_rows,
        guard=guard_report,
    )


def _eligible_rows(vehicles: pl.DataFrame, settings: SourceSettings) -> pl.DataFrame:
    """Rule 3: each vehicle of the feed with its client and types, or the reason it is skipped."""
    return (
        feed_rows(vehicles, settings)
        .select(
            "dealer_id",
            "vin",
            "stock_no",
            "client",
            "vehicle_type",
            "service_request_type",
            "ignore_existing",
            "ignore_days",
            "skip_reason",
        )
        .collect()
    )


def _covered_dealers(rows: pl.DataFrame, settings: SourceSettings, ident: dict, t: pl.Expr) -> pl.DataFrame:
    """Rule 2: the dealers the feed covers, with their vehicle counts."""
    coverage = rows.lazy().group_by("dealer_id").agg(pl.len().cast(pl.UInt32).alias("vehicles"))
    if settings.coverage == "all_mapped_dealers":
        coverage = (
            pl.LazyFrame(
                {"dealer_id": [m.dealer_id for m in settings.client_dealer_mappings]},
                schema={"dealer_id": pl.String},
            )
            .join(coverage, on="dealer_id", how="full", coalesce=True)
            .with_columns(pl.col("vehicles").fill_null(0))
        )
    return (
        coverage.with_columns(source=ident["source"], feed_as_of=t)
        .select(list(COVERAGE_SCHEMA))
        .cast(COVERAGE_SCHEMA)
        .sort("dealer_id")
        .collect()
    )


def _creates(
    rows: pl.DataFrame,
    unclaimed: pl.DataFrame,
    closed: pl.LazyFrame,
    settings: SourceSettings,
    feed: FeedRef,
    ident: dict,
    t: pl.Expr,
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Rule 4: an SR for every eligible VIN without an active one, unless a recent SR for the VIN exists and
    the client mapping says to ignore it; with every skipped vehicle and its reason."""
    close_mode = settings.auto_close.mode
    close_after = timedelta(days=settings.auto_close.days or 0)
    candidates = (
        rows.lazy().filter(pl.col("skip_reason").is_null()).join(unclaimed.lazy(), on="vin", how="semi")
    )
    if any(m.ignore_if_sr_with_vin_exists for m in settings.client_dealer_mappings):
        latest_created = closed.group_by("vin").agg(pl.col("created_at").max().alias("_latest_created"))
        candidates = candidates.join(latest_created, on="vin", how="left")
    else:
        candidates = candidates.with_columns(pl.lit(None, TS).alias("_latest_created"))
    candidates = candidates.with_columns(
        (
            pl.col("ignore_existing")
            & pl.col("_latest_created").is_not_null()
            & (pl.col("_latest_created") <= t)
            & (t - pl.col("_latest_created") <= pl.duration(days=pl.col("ignore_days")))
        )
        .fill_null(False)
        .alias("_recent")
    )
    created = candidates.filter(~pl.col("_recent")).select(
        # concat_str, not pl.format: polars 2.1's format panics on these rows (pola-rs/polars#25187).
        pl.concat_str(
            [pl.lit(feed.source), pl.col("vin"), t.dt.strftime("%Y%m%dT%H%M%SZ")], separator="-"
        ).alias("sr_id"),
        ident["source"].alias("source"),
        "vin",
        "dealer_id",
        "client",
        "stock_no",
        "vehicle_type",
        "service_request_type",
        pl.lit("active").alias("status"),
        t.alias("created_at"),
        t.alias("updated_at"),
        pl.lit(None, TS).alias("closed_at"),
        pl.lit(None, pl.String).alias("close_reason"),
        t.alias("last_seen_at"),
        (t + close_after if close_mode == "after_days" else pl.lit(None, TS)).alias("auto_close_at"),
        pl.lit(None, TS).alias("missing_since"),
    )
    skipped = pl.concat(
        [
            rows.lazy()
            .filter(pl.col("skip_reason").is_not_null())
            .select("vin", "dealer_id", pl.col("skip_reason").alias("reason")),
            candidates.filter(pl.col("_recent")).select(
                "vin", "dealer_id", pl.lit("recent_sr_exists").alias("reason")
            ),
        ]
    ).with_columns(**ident)

    return created, skipped


def _track_and_reset(
    active: pl.LazyFrame, seen: pl.DataFrame, settings: SourceSettings, t: pl.Expr
) -> pl.LazyFrame:
    """Rules 5 and 7 on the active SRs: the feed's row for each VIN, then stock number and client updates
    within the tracking window, sightings, and auto-close resets."""
    tracking_days = (
        settings.track_stock_no_and_client.days
        if settings.track_stock_no_and_client.mode == "for_days"
        else None
    )
    close_mode = settings.auto_close.mode
    close_after = timedelta(days=settings.auto_close.days or 0)
    tracking = (
        pl.col("_eligible") & (t <= pl.col("created_at") + timedelta(days=tracking_days))
        if tracking_days is not None
        else pl.lit(False)
    )
    return (
        pl.concat([active, seen.lazy()], how="horizontal")
        .with_columns(
            (
                tracking
                & pl.col("_feed_stock").is_not_null()
                & pl.col("_feed_stock").ne_missing(pl.col("stock_no"))
            ).alias("_stock_changed"),
            (tracking & (pl.col("_feed_dealer") != pl.col("dealer_id")).fill_null(False)).alias(
                "_dealer_changed"
            ),
            (
                pl.lit(close_mode == "after_days") & pl.col("_seen") & pl.col("missing_since").is_not_null()
            ).alias("_reset"),
            pl.col("stock_no").alias("_old_stock"),
            pl.col("dealer_id").alias("_old_dealer"),
            pl.col("client").alias("_old_client"),
            pl.col("auto_close_at").alias("_old_auto_close_at"),
        )
        .with_columns(
            pl.when("_stock_changed").then("_feed_stock").otherwise("stock_no").alias("stock_no"),
            pl.when("_dealer_changed").then("_feed_dealer").otherwise("dealer_id").alias("dealer_id"),
            pl.when("_dealer_changed").then("_feed_client").otherwise("client").alias("client"),
            pl.when("_reset").then(t + close_after).otherwise("auto_close_at").alias("auto_close_at"),
            pl.when("_seen").then(t).otherwise("last_seen_at").alias("last_seen_at"),
            pl.when("_seen").then(pl.lit(None, TS)).otherwise("missing_since").alias("missing_since"),
            pl.when(pl.col("_stock_changed") | pl.col("_dealer_changed") | pl.col("_reset"))
            .then(t)
            .otherwise("updated_at")
            .alias("updated_at"),
        )
    )


def apply_feeds(
    state: pl.DataFrame,
    feeds: Iterable[tuple[FeedRef, pl.DataFrame]],
    settings: SourceSettings,
    released: Mapping[datetime, frozenset[str]] | None = None,
) -> HistoryOutcome:
    """Apply feeds in as-of order; the caller hands them in that order (rule 10 is the caller's).

    `released` maps a feed's as-of to the dealers whose hold on it an operator released, so that a replay
    honours every decision.
    """
    events, skipped, coverage, guard = [], [], [], []
    last = None
    for feed, vehicles in feeds:
        if last is not None and feed.as_of <= last:
            raise ValueError(
                f"feeds must be applied in as-of order: {feed.file_name} after {last.isoformat()}"
            )
        last = feed.as_of
        outcome = apply_feed(state, vehicles, settings, feed, (released or {}).get(feed.as_of, frozenset()))
        state = outcome.state
        events.append(outcome.events)
        skipped.append(outcome.skipped)
        coverage.append(outcome.coverage)
        guard.append(outcome.guard)
    return HistoryOutcome(
        state=state,
        events=pl.concat(events) if events else pl.DataFrame(schema=EVENT_SCHEMA),
        skipped=pl.concat(skipped) if skipped else pl.DataFrame(schema=SKIPPED_SCHEMA),
        coverage=pl.concat(coverage) if coverage else pl.DataFrame(schema=COVERAGE_SCHEMA),
        guard=pl.concat(guard) if guard else pl.DataFrame(schema=GUARD_SCHEMA),
    )
