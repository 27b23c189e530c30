"""The auto-close guard as a decision (rule 8): holds read from the warehouse, and operators' decisions on them.

A hold is in effect while the guard tripped on the newest applied feed that covered the dealer and no operator
has decided it. Everything here is computed from the warehouse's state, never from what the last step did, so
a killed or retried run cannot make the alert vanish.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dealer_assets.core.errors import ConfigError
from dealer_assets.core.timeutil import iso_z
from dealer_assets.core.warehouse import read_frame
from dealer_assets.dms import tables as t
from dealer_assets.dms.domain.vehicles import TS

DECISIONS = ("release", "keep")

HOLD_SCHEMA = {
    "dealer_id": pl.String,
    "feed_as_of": TS,
    "feed_file": pl.String,
    "active": pl.Int64,
    "to_close": pl.Int64,
}

_NEWEST_FEED_OF_DEALER = """
SELECT dealer_id, MAX(feed_as_of) AS newest FROM (
    SELECT dealer_id, feed_as_of FROM dealer_coverage WHERE source = :s
    UNION ALL SELECT dealer_id, feed_as_of FROM close_guard WHERE source = :s
) seen GROUP BY dealer_id
"""

_PENDING = f"""
SELECT g.dealer_id, g.feed_as_of, a.feed_file, g.active, g.to_close
FROM close_guard g
JOIN ({_NEWEST_FEED_OF_DEALER}) n ON n.dealer_id = g.dealer_id AND n.newest = g.feed_as_of
JOIN applied_feeds a ON a.source = g.source AND a.feed_as_of = g.feed_as_of
LEFT JOIN guard_decisions d
    ON d.source = g.source AND d.feed_as_of = g.feed_as_of AND d.dealer_id = g.dealer_id
WHERE g.source = :s AND g.held AND d.decision IS NULL
ORDER BY g.dealer_id
"""

_RELEASED_NOT_APPLIED = """
SELECT d.dealer_id, d.feed_as_of, a.feed_file, g.active, g.to_close
FROM guard_decisions d
JOIN close_guard g ON g.source = d.source AND g.feed_as_of = d.feed_as_of AND g.dealer_id = d.dealer_id
JOIN applied_feeds a ON a.source = d.source AND a.feed_as_of = d.feed_as_of
WHERE d.source = :s AND d.decision = 'release' AND EXISTS (
    SELECT 1 FROM service_request_events e JOIN service_requests r ON r.sr_id = e.sr_id
    WHERE e.source = d.source AND e.event = 'close_held' AND e.feed_as_of = d.feed_as_of
      AND r.dealer_id = d.dealer_id
)
ORDER BY d.dealer_id
"""


@dataclass(frozen=True)
class GuardState:
    """What the guard's check reports for a source."""

    pending: pl.DataFrame
    """Holds awaiting a decision: the guard tripped on the dealer's newest applied feed."""
    unapplied_releases: pl.DataFrame
    """Holds released by an operator whose closes no replay has applied yet."""

    @property
    def passed(self) -> bool:
        return self.pending.is_empty() and self.unapplied_releases.is_empty()


def guard_state(engine: Engine, source: str) -> GuardState:
    with engine.connect() as conn:
        pending = read_frame(conn, _PENDING, HOLD_SCHEMA, {"s": source})
        unapplied = read_frame(conn, _RELEASED_NOT_APPLIED, HOLD_SCHEMA, {"s": source})
    return GuardState(pending, unapplied)


def decide_command(source: str, dealer: str, as_of: datetime, decision: str = "release|keep") -> str:
    return f"dealer-assets guard {decision} --source {source} --dealer {dealer} --feed {iso_z(as_of)}"


def describe(source: str, state: GuardState) -> str:
    if state.passed:
        return "no hold awaits a decision"
    parts = [
        f"dealer {d}: {c} of {a} active SRs would close on feed {f} ({iso_z(at)}); held until an operator "
        f"decides: {decide_command(source, d, at)}"
        for d, at, f, a, c in state.pending.iter_rows()
    ]
    parts += [
        f"dealer {d}: hold on feed {f} ({iso_z(at)}) released, not applied yet: "
        f"dealer-assets replay --source {source} --from {iso_z(at)}"
        for d, at, f, a, c in state.unapplied_releases.iter_rows()
    ]
    return "; ".join(parts)


def released(conn: sa.Connection, source: str) -> dict[datetime, frozenset[str]]:
    """Released holds by feed as-of, for the reconciliation engine."""
    rows = read_frame(
        conn,
        "SELECT feed_as_of, dealer_id FROM guard_decisions WHERE source = :s AND decision = 'release'",
        {"feed_as_of": TS, "dealer_id": pl.String},
        {"s": source},
    )
    grouped = rows.group_by("feed_as_of").agg(pl.col("dealer_id"))
    return {at: frozenset(dealers) for at, dealers in grouped.iter_rows()}


def record_decision(
    engine: Engine,
    source: str,
    dealer: str,
    as_of: datetime,
    decision: str,
    *,
    decided_by: str,
    decided_at: datetime,
    reason: str,
) -> None:
    """Record an operator's decision on the hold of one dealer on one feed; a hold is decided once."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    origin = f"dealer-assets guard {decision}"
    with engine.begin() as conn:
        hold = conn.execute(
            sa.select(t.close_guard.c.held).where(
                t.close_guard.c.source == source,
                t.close_guard.c.dealer_id == dealer,
                t.close_guard.c.feed_as_of == as_of,
            )
        ).first()
        if hold is None or not hold.held:
            raise ConfigError(
                f"{origin}: --source {source} --dealer {dealer} --feed {iso_z(as_of)}: the guard held no "
                "closes of that dealer on that feed (see the auto_close_guard check for the holds)"
            )
        earlier = conn.execute(
            sa.select(t.guard_decisions.c.decision, t.guard_decisions.c.decided_by).where(
                t.guard_decisions.c.source == source,
                t.guard_decisions.c.dealer_id == dealer,
                t.guard_decisions.c.feed_as_of == as_of,
            )
        ).first()
        if earlier is not None:
            raise ConfigError(
                f"{origin}: --feed {iso_z(as_of)}: the hold of dealer {dealer} was already decided "
                f"({earlier.decision}, by {earlier.decided_by}); a decision is final"
            )
        conn.execute(
            t.guard_decisions.insert().values(
                source=source,
                dealer_id=dealer,
                feed_as_of=as_of,
                decision=decision,
                decided_by=decided_by,
                decided_at=decided_at,
                reason=reason,
            )
        )
