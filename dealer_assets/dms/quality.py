"""Invariants of the reconciled tables, as queries over the warehouse; asset checks report them."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from sqlalchemy.engine import Engine

from dealer_assets.core.checks import Verdict
from dealer_assets.core.warehouse import read_frame
from dealer_assets.dms import guard
from dealer_assets.dms.domain.vehicles import TS

UNCOVERED_AFTER = timedelta(days=3)


def duplicate_active(engine: Engine, source: str, since: datetime | None) -> Verdict:
    """Only a created SR can make a second active one for its VIN, so the VINs of SRs created by the feeds
    the run applied (as-of `since` and later) are the ones to look at; `since` None: the run applied none."""
    if since is None:
        return Verdict(True, "no SR created by this run", pl.DataFrame())
    with engine.connect() as conn:
        rows = read_frame(
            conn,
            "SELECT vin, COUNT(*) AS active FROM service_request_state WHERE source = :s "
            "AND status = 'active' AND vin IN (SELECT vin FROM service_request_events WHERE source = :s "
            "AND event = 'created' AND feed_as_of >= :since) GROUP BY vin HAVING COUNT(*) > 1 ORDER BY vin",
            {"vin": pl.String, "active": pl.Int64},
            {"s": source, "since": since},
        )
    text = (
        "every VIN has at most one active SR"
        if rows.is_empty()
        else f"{rows.height} VIN(s) with more than one active SR: {', '.join(rows['vin'].head(10).to_list())}"
    )
    return Verdict(rows.is_empty(), text, rows)


def orphan_events(engine: Engine, source: str, since: datetime | None) -> Verdict:
    """Events the run wrote (from the as-of `since` on) whose SR is not in the warehouse."""
    if since is None:
        return Verdict(True, "no event written by this run", pl.DataFrame())
    with engine.connect() as conn:
        rows = read_frame(
            conn,
            "SELECT e.sr_id, e.event, e.feed_as_of FROM service_request_events e "
            "LEFT JOIN service_request_state r ON r.sr_id = e.sr_id "
            "WHERE e.source = :s AND e.feed_as_of >= :since AND r.sr_id IS NULL ORDER BY e.feed_as_of, e.sr_id",
            {"sr_id": pl.String, "event": pl.String, "feed_as_of": TS},
            {"s": source, "since": since},
        )
    text = (
        "every event refers to an existing SR"
        if rows.is_empty()
        else f"{rows.height} event(s) refer to missing SRs: {', '.join(rows['sr_id'].unique().head(5).to_list())}"
    )
    return Verdict(rows.is_empty(), text, rows)


def uncovered_dealers(
    engine: Engine, source: str, head: datetime | None, per_dealer: pl.DataFrame
) -> Verdict:
    """Rule 2: dealers with active SRs that no feed has covered for more than 3 days (as-of time).

    `per_dealer` holds the active SRs per dealer (`dealer_id`, `active`) of the state the run wrote, which the
    warehouse holds row for row, so an hourly run does not count the whole inventory again; the coverage of
    the last 3 days and, for stale dealers only, their last coverage come from the warehouse."""
    if head is None:
        return Verdict(True, "no feed applied yet", pl.DataFrame())
    active = per_dealer.select("dealer_id", pl.col("active").cast(pl.Int64)).filter(pl.col("active") > 0)
    with engine.connect() as conn:
        covered = read_frame(
            conn,
            "SELECT DISTINCT dealer_id FROM dealer_coverage WHERE source = :s AND feed_as_of >= :since",
            {"dealer_id": pl.String},
            {"s": source, "since": head - UNCOVERED_AFTER},
        )
        stale = active.join(covered, on="dealer_id", how="anti")
        last = (
            read_frame(
                conn,
                "SELECT dealer_id, MAX(feed_as_of) AS last_covered FROM dealer_coverage WHERE source = :s "
                "GROUP BY dealer_id",
                {"dealer_id": pl.String, "last_covered": TS},
                {"s": source},
            )
            if not stale.is_empty()
            else pl.DataFrame(schema={"dealer_id": pl.String, "last_covered": TS})
        )
    stale = stale.join(last, on="dealer_id", how="left").sort("dealer_id")
    text = (
        "every dealer with active SRs was covered within 3 days"
        if stale.is_empty()
        else "not covered for more than 3 days: "
        + ", ".join(
            f"{d} ({n} active, last covered {c.isoformat() if c else 'never'})"
            for d, n, c in stale.head(20).iter_rows()
        )
    )
    return Verdict(stale.is_empty(), text, stale)


def late_feeds(engine: Engine, source: str) -> Verdict:
    with engine.connect() as conn:
        rows = read_frame(
            conn,
            "SELECT feed_file, feed_as_of, applied_through FROM late_feeds WHERE source = :s "
            "ORDER BY feed_as_of",
            {"feed_file": pl.String, "feed_as_of": TS, "applied_through": TS},
            {"s": source},
        )
    text = (
        "no late feeds waiting"
        if rows.is_empty()
        else (
            "late feeds, not applied (rule 10): "
            + ", ".join(rows["feed_file"].to_list())
            + f". Apply them with: dealer-assets replay --from {rows['feed_as_of'].min().strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )
    )
    return Verdict(rows.is_empty(), text, rows)


def guard_holds(engine: Engine, source: str) -> Verdict:
    """Rule 8, from the warehouse's state: holds on a dealer's newest feed that await an operator."""
    state = guard.guard_state(engine, source)
    return Verdict(
        state.passed,
        guard.describe(source, state),
        pl.concat(
            [
                state.pending.with_columns(pl.lit("awaiting decision").alias("status")),
                state.unapplied_releases.with_columns(pl.lit("released, replay pending").alias("status")),
            ]
        ),
    )
