"""One reconciliation step's writes to the warehouse, in the caller's transaction.

SRs are written in stored form (`domain.stored`): an incremental step upserts only the SRs whose stored form
changed, so a steady hour writes what changed, not the inventory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl
import sqlalchemy as sa

from dealer_assets.core.warehouse import insert_frame, read_frame
from dealer_assets.dms import tables as t
from dealer_assets.dms.domain.state import UPDATE_EVENTS
from dealer_assets.dms.domain.stored import changed_rows, stored_form
from dealer_assets.dms.domain.vehicles import TS

LATE_SCHEMA = {"source": pl.String, "feed_as_of": TS, "feed_file": pl.String, "applied_through": TS}


@dataclass(frozen=True)
class Written:
    rows: dict[str, int]
    """Rows written per table."""
    state_rows: pl.DataFrame
    """The SRs written to `service_request_state`, in stored form."""


def write_outcome(
    conn,
    source: str,
    outcome,
    previous: pl.DataFrame,
    *,
    replay_from: datetime | None,
    applied: pl.DataFrame,
    late: pl.DataFrame,
) -> Written:
    """One step's writes, in the caller's transaction.

    A replay discards the source's events, skips, coverage, holds and ledger from `replay_from` on and writes
    its whole SR state anew; an incremental step upserts only the SRs whose stored form differs from
    `previous` (the state before the step), which in a steady hour is the few that changed.
    """
    newest_before = newest_applied(conn, source)
    if replay_from is not None:
        for table in (
            t.service_request_events,
            t.skipped_vehicles,
            t.dealer_coverage,
            t.close_guard,
            t.applied_feeds,
            t.late_feeds,
        ):
            conn.execute(sa.delete(table).where(table.c.source == source, table.c.feed_as_of >= replay_from))
    rows = {}
    for table, frame, on_conflict in (
        (t.service_request_events, outcome.events, None),
        (t.skipped_vehicles, outcome.skipped, None),
        (t.dealer_coverage, outcome.coverage, None),
        (t.close_guard, outcome.guard, None),
        (t.applied_feeds, applied, None),
        (t.late_feeds, late, "ignore"),
    ):
        insert_frame(conn, table, frame, on_conflict=on_conflict)
        rows[table.name] = frame.height
    newest = newest_applied(conn, source)
    state = t.service_request_state
    if replay_from is not None:
        conn.execute(sa.delete(state).where(state.c.source == source))
        changed = stored_form(outcome.state, newest)
        insert_frame(conn, state, changed)
        conn.exec_driver_sql(f"ANALYZE {state.name}")  # the planner sees the rewritten table's shape at once
    else:
        changed = changed_rows(stored_form(previous, newest_before), stored_form(outcome.state, newest))
        insert_frame(conn, state, changed, on_conflict="update")
    rows[state.name] = changed.height
    return Written(rows, changed)


def newest_applied(conn, source: str) -> datetime | None:
    """The as-of of the source's newest applied feed: the `last_seen_at` of every SR stored without one."""
    newest = read_frame(
        conn,
        "SELECT MAX(feed_as_of) AS newest FROM applied_feeds WHERE source = :s",
        {"newest": TS},
        {"s": source},
    )["newest"]
    return newest[0] if newest.len() else None


def applied_feed_rows(source: str, feeds: list[tuple[datetime, str, str, int]], outcome) -> pl.DataFrame:
    """`applied_feeds` rows for (as-of, file name, sha256, vehicles) of each feed applied, with their counts."""
    counts = outcome.events.group_by("feed_as_of").agg(
        (pl.col("event") == "created").sum().alias("created"),
        pl.col("sr_id").filter(pl.col("event").is_in(UPDATE_EVENTS)).n_unique().alias("updated"),
        (pl.col("event") == "auto_closed").sum().alias("closed"),
        (pl.col("event") == "close_held").sum().alias("held"),
    )
    skipped = outcome.skipped.group_by("feed_as_of").len("skipped")
    base = pl.DataFrame(
        [(source, *feed) for feed in feeds],
        schema={
            "source": pl.String,
            "feed_as_of": TS,
            "feed_file": pl.String,
            "sha256": pl.String,
            "vehicles": pl.Int64,
        },
        orient="row",
    )
    return (
        base.join(counts, on="feed_as_of", how="left")
        .join(skipped, on="feed_as_of", how="left")
        .with_columns(pl.col("created", "updated", "closed", "held", "skipped").fill_null(0).cast(pl.Int64))
    )
