"""The audit trail of one feed (CONTRACT section 5): one event per change, its details as JSON."""

from __future__ import annotations

import polars as pl

from dealer_assets.dms.domain.state import EVENT_SCHEMA
from dealer_assets.dms.settings import AutoCloseGuard

ISO = "%Y-%m-%dT%H:%M:%SZ"


def json_of(**fields: pl.Expr) -> pl.Expr:
    return pl.struct(**fields).struct.json_encode()


def iso(expr: pl.Expr) -> pl.Expr:
    return expr.dt.strftime(ISO)


def feed_events(
    created: pl.DataFrame, judged: pl.DataFrame, dealers: pl.DataFrame, guard: AutoCloseGuard | None
) -> pl.DataFrame:
    """One event per change (CONTRACT section 5), each with its details as JSON. Only the kinds of change
    this feed made are built: most feeds of a steady hour change little, and each frame costs its query."""
    made = judged.select(pl.col("_stock_changed", "_dealer_changed", "_reset", "_close", "_held").any()).row(
        0, named=True
    )
    frames = []
    if created.height:
        frames.append(
            created.select(
                "sr_id",
                "vin",
                pl.lit("created").alias("event"),
                json_of(
                    dealer_id=pl.col("dealer_id"),
                    client=pl.col("client"),
                    stock_no=pl.col("stock_no"),
                    service_request_type=pl.col("service_request_type"),
                    vehicle_type=pl.col("vehicle_type"),
                ).alias("details"),
            )
        )
    if made["_stock_changed"]:
        frames.append(
            judged.filter("_stock_changed").select(
                "sr_id",
                "vin",
                pl.lit("stock_no_updated").alias("event"),
                json_of(**{"from": pl.col("_old_stock"), "to": pl.col("stock_no")}).alias("details"),
            )
        )
    if made["_dealer_changed"]:
        frames.append(
            judged.filter("_dealer_changed").select(
                "sr_id",
                "vin",
                pl.lit("client_updated").alias("event"),
                json_of(
                    dealer_id=pl.struct(**{"from": pl.col("_old_dealer"), "to": pl.col("dealer_id")}),
                    client=pl.struct(**{"from": pl.col("_old_client"), "to": pl.col("client")}),
                ).alias("details"),
            )
        )
    if made["_reset"]:
        frames.append(
            judged.filter("_reset").select(
                "sr_id",
                "vin",
                pl.lit("auto_close_reset").alias("event"),
                json_of(
                    **{"from": iso(pl.col("_old_auto_close_at")), "to": iso(pl.col("auto_close_at"))}
                ).alias("details"),
            )
        )
    if made["_close"]:
        frames.append(
            judged.filter("_close").select(
                "sr_id",
                "vin",
                pl.lit("auto_closed").alias("event"),
                json_of(
                    reason=pl.lit("missing_from_feed"),
                    missing_since=iso(pl.col("missing_since")),
                    auto_close_at=iso(pl.col("auto_close_at")),
                ).alias("details"),
            )
        )
    if made["_held"]:
        frames.append(held_events(judged, dealers, guard))
    if not frames:
        return pl.DataFrame(
            schema={k: v for k, v in EVENT_SCHEMA.items() if k in ("sr_id", "vin", "event", "details")}
        )
    return pl.concat(frames, how="vertical_relaxed")


def held_events(judged: pl.DataFrame, dealers: pl.DataFrame, guard: AutoCloseGuard | None) -> pl.DataFrame:
    """Rule 8: one `close_held` event per SR whose close the guard held, with the dealer's figures."""
    return (
        judged.filter("_held")
        .join(dealers, on="dealer_id", how="left")
        .select(
            "sr_id",
            "vin",
            pl.lit("close_held").alias("event"),
            json_of(
                dealer_id=pl.col("dealer_id"),
                active=pl.col("_dealer_active"),
                missing=pl.col("_dealer_missing"),
                to_close=pl.col("_dealer_due"),
                max_fraction=pl.lit(guard.max_fraction if guard else None, pl.Float64),
            ).alias("details"),
        )
    )
