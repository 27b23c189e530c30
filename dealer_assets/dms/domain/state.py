"""The reconciled state and what applying feeds yields: the service requests (CONTRACT section 3) with the
engine's own `missing_since`, and the events, skipped vehicles, coverage and guard rows of each feed."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from dealer_assets.core.service_requests import SERVICE_REQUEST_COLUMNS
from dealer_assets.dms.domain.vehicles import TS

SR_SCHEMA = {**SERVICE_REQUEST_COLUMNS, "missing_since": TS}
"""`missing_since` is engine state beyond the contract: the first covering feed that missed an active SR's VIN
since it was last seen (rule 7 needs it; it is null while the VIN keeps being seen)."""
CONTRACT_SR_COLUMNS = [c for c in SR_SCHEMA if c != "missing_since"]
EVENT_SCHEMA = {
    "sr_id": pl.String,
    "source": pl.String,
    "vin": pl.String,
    "event": pl.String,
    "feed_as_of": TS,
    "feed_file": pl.String,
    "details": pl.String,
}
SKIPPED_SCHEMA = {
    "source": pl.String,
    "feed_as_of": TS,
    "feed_file": pl.String,
    "vin": pl.String,
    "dealer_id": pl.String,
    "reason": pl.String,
}
COVERAGE_SCHEMA = {"source": pl.String, "feed_as_of": TS, "dealer_id": pl.String, "vehicles": pl.UInt32}
GUARD_SCHEMA = {
    "source": pl.String,
    "feed_as_of": TS,
    "dealer_id": pl.String,
    "active": pl.UInt32,
    "to_close": pl.UInt32,
    "held": pl.Boolean,
}
CHANGE_FLAGS = ("_stock_changed", "_dealer_changed", "_reset", "_missing", "_due")
UPDATE_EVENTS = ("stock_no_updated", "client_updated", "auto_close_reset")
"""The events that count as an update of an SR (its `updated` figure)."""


@dataclass(frozen=True)
class FeedOutcome:
    state: pl.DataFrame
    events: pl.DataFrame
    skipped: pl.DataFrame
    coverage: pl.DataFrame
    guard: pl.DataFrame
    """Per dealer with closes due: its SRs that existed before the feed (`active`), closes due, and whether
    rule 8 tripped (its closes are held unless an operator released that hold)."""


def empty_state() -> pl.DataFrame:
    return pl.DataFrame(schema=SR_SCHEMA)


@dataclass(frozen=True)
class HistoryOutcome:
    state: pl.DataFrame
    events: pl.DataFrame
    skipped: pl.DataFrame
    coverage: pl.DataFrame
    guard: pl.DataFrame
