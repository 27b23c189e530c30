"""Applying accepted feeds to service requests, with exact replay.

State flows in as-of order per source. The warehouse holds the result in stored form (`domain.stored`): a
steady hour writes only the SRs that changed. State checkpoints (a base and the deltas after it) give a run
its starting state and let a replay rebuild the state as it stood before any as-of without re-reading all
history; a checkpoint is trusted only when the ledger of applied feeds up to its as-of matches its name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
from sqlalchemy.engine import Engine

from dealer_assets.core.env import DealerPaths
from dealer_assets.core.faults import crash_point
from dealer_assets.core.progress import Progress
from dealer_assets.core.warehouse import exclusive_lock
from dealer_assets.dms import guard
from dealer_assets.dms.archive import ArchivedFeed, FeedArchive
from dealer_assets.dms.checkpoints import MAX_CHAIN, Checkpoints, ledger_digest
from dealer_assets.dms.domain.rules import apply_feeds
from dealer_assets.dms.domain.state import (
    UPDATE_EVENTS,
    HistoryOutcome,
)
from dealer_assets.dms.domain.stored import stored_form
from dealer_assets.dms.domain.vehicles import FeedRef
from dealer_assets.dms.ingest import recorded_feeds
from dealer_assets.dms.ledger import StartingState, read_applied, starting_state, verify_archive
from dealer_assets.dms.normalize_feeds import vehicles_of
from dealer_assets.dms.settings import SourceSettings
from dealer_assets.dms.state_writes import LATE_SCHEMA, applied_feed_rows, write_outcome


@dataclass
class ReconcileReport:
    mode: str
    applied: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    replay_from: datetime | None = None
    events: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    per_dealer: pl.DataFrame | None = None
    guard: pl.DataFrame | None = None
    active: int = 0
    closed: int = 0
    head: datetime | None = None
    applied_as_of: list[datetime] = field(default_factory=list)
    applied_rows: pl.DataFrame | None = None
    """The `applied_feeds` rows this run wrote: each feed's own counts, for per-hour figures."""
    written: dict[str, int] = field(default_factory=dict)
    """Rows this run wrote per table."""


def _accepted(
    paths: DealerPaths,
    source: str,
    settings: SourceSettings,
    feeds: list[ArchivedFeed],
) -> list[tuple[ArchivedFeed, pl.DataFrame]]:
    out = []
    for archived in feeds:
        vehicles = vehicles_of(paths, source, settings, archived)
        if vehicles is not None:
            out.append((archived, vehicles))
    return out


@dataclass(frozen=True)
class Plan:
    """What a run applies: the state it starts from and the accepted feeds (with their vehicles) after it."""

    start_from: StartingState
    todo: list[tuple[ArchivedFeed, pl.DataFrame]]
    late: list[ArchivedFeed]
    cutoff: datetime | None
    """Where a replay starts (what is applied from there on is discarded); None for an incremental run."""
    head: datetime | None


def plan_incremental(
    paths: DealerPaths,
    source: str,
    settings: SourceSettings,
    applied: pl.DataFrame,
    decisions: dict,
    start: datetime,
    end: datetime,
) -> Plan:
    """Every accepted feed after the last one applied, up to `end`; a feed in [start, end) at or before that
    point is late (rule 10): recorded, not applied."""
    head = applied["feed_as_of"].max() if applied.height else None
    applied_set = set(applied["feed_as_of"].to_list())
    lower = min(start, head) if head is not None else start
    candidates = [
        a for a in FeedArchive(paths).archived_feeds(source, lower, end) if a.feed.as_of not in applied_set
    ]
    fresh = [a for a in candidates if head is None or a.feed.as_of > head]
    late = [a for a in candidates if head is not None and start <= a.feed.as_of <= head]
    return Plan(
        starting_state(paths, source, settings, applied, None, decisions),
        _accepted(paths, source, settings, fresh),
        [a for a, _ in _accepted(paths, source, settings, late)],
        None,
        head,
    )


def plan_replay(
    paths: DealerPaths,
    source: str,
    settings: SourceSettings,
    engine: Engine,
    applied: pl.DataFrame,
    decisions: dict,
    cutoff: datetime,
) -> Plan:
    """Every accepted feed from `cutoff` on, re-applied from the state just before it (CONTRACT section 6)."""
    store = FeedArchive(paths)
    verify_archive(store, source, recorded_feeds(engine, source, cutoff, None))
    return Plan(
        starting_state(paths, source, settings, applied, cutoff, decisions),
        _accepted(paths, source, settings, store.archived_feeds(source, cutoff, None)),
        [],
        cutoff,
        applied["feed_as_of"].max() if applied.height else None,
    )


def replay_streamed(
    paths: DealerPaths,
    source: str,
    settings: SourceSettings,
    engine: Engine,
    applied: pl.DataFrame,
    decisions: dict,
    cutoff: datetime,
) -> HistoryOutcome:
    """What `plan_replay` + `apply_plan` compute, reading one feed's vehicles at a time and changing nothing
    on disk (what-if): memory stays below a replay's, which holds every feed's vehicles to write them."""
    store = FeedArchive(paths)
    verify_archive(store, source, recorded_feeds(engine, source, cutoff, None))
    start = starting_state(paths, source, settings, applied, cutoff, decisions, read_only=True)
    feeds = (
        (FeedRef(source, a.feed.as_of, a.feed.file_name), vehicles)
        for a in store.archived_feeds(source, cutoff, None)
        if (vehicles := vehicles_of(paths, source, settings, a, keep=False)) is not None
    )
    return apply_feeds(start.state, feeds, settings, decisions)


def apply_plan(
    plan: Plan, source: str, settings: SourceSettings, decisions: dict, progress: Progress | None = None
) -> HistoryOutcome:
    feeds = [(FeedRef(source, a.feed.as_of, a.feed.file_name), v) for a, v in plan.todo]
    return apply_feeds(plan.start_from.state, _tracked(feeds, progress), settings, decisions)


def reconcile(
    paths: DealerPaths,
    source: str,
    settings: SourceSettings,
    engine: Engine,
    *,
    start: datetime,
    end: datetime,
    mode: str,
    replay_from: datetime | None = None,
    progress: Progress | None = None,
) -> ReconcileReport:
    """Apply the source's accepted feeds and write the result.

    `incremental` (sensor, schedule, catch-up): apply every accepted feed after the last one applied, up to
    `end`; a feed in [start, end) at or before that point is late (rule 10): recorded, not applied.
    `replay` (any other materialization, `dealer-assets replay`): discard what was applied from
    `replay_from` (default `start`) on and re-apply every accepted feed from there, in as-of order.
    """
    with exclusive_lock(engine, paths.locks, f"dms-{source}"):
        with engine.connect() as conn:
            applied = read_applied(conn, source)
            decisions = guard.released(conn, source)
        if mode == "incremental":
            plan = plan_incremental(paths, source, settings, applied, decisions, start, end)
        else:
            plan = plan_replay(paths, source, settings, engine, applied, decisions, replay_from or start)
        outcome = apply_plan(plan, source, settings, decisions, progress)
        applied_rows = applied_feed_rows(
            source, [(a.feed.as_of, a.feed.file_name, a.sha256, v.height) for a, v in plan.todo], outcome
        )
        late_rows = pl.DataFrame(
            [(source, a.feed.as_of, a.feed.file_name, plan.head) for a in plan.late],
            schema=LATE_SCHEMA,
            orient="row",
        )
        with engine.begin() as conn:
            written = write_outcome(
                conn,
                source,
                outcome,
                plan.start_from.state,
                replay_from=plan.cutoff,
                applied=applied_rows,
                late=late_rows,
            )
            after = read_applied(conn, source)
            crash_point("reconcile:before_commit")
        crash_point("reconcile:after_commit")
        _save_checkpoint(paths, source, plan, outcome, written, after)
    return _report(mode, plan, outcome, applied_rows, written, after)


def _save_checkpoint(
    paths: DealerPaths, source: str, plan: Plan, outcome, written, after: pl.DataFrame
) -> None:
    """A delta on the chain the run started from, or a new base (after a replay, or once the deltas weigh as
    much as their base)."""
    checkpoints = Checkpoints(paths.state, source)
    if plan.cutoff is not None:
        checkpoints.discard_from(plan.cutoff)
    if not after.height or not (plan.todo or plan.cutoff is not None):
        return
    through, digest, chain = after["feed_as_of"][-1], ledger_digest(after), plan.start_from.chain
    if (
        plan.cutoff is None
        and chain is not None
        and chain.deltas < MAX_CHAIN
        and chain.delta_rows + written.state_rows.height < chain.base_rows
    ):
        checkpoints.save(written.state_rows, through, digest, parent=chain.through)
    else:
        checkpoints.save(stored_form(outcome.state, through), through, digest)


def _report(mode: str, plan: Plan, outcome, applied_rows: pl.DataFrame, written, after) -> ReconcileReport:
    return ReconcileReport(
        mode=mode,
        applied=[a.feed.file_name for a, _ in plan.todo],
        late=[a.feed.file_name for a in plan.late],
        replay_from=plan.cutoff,
        events=dict(outcome.events.group_by("event").len().iter_rows()),
        skipped=dict(outcome.skipped.group_by("reason").len().iter_rows()),
        per_dealer=_per_dealer(outcome),
        guard=outcome.guard,
        active=int((outcome.state["status"] == "active").sum()),
        closed=int((outcome.state["status"] == "closed").sum()),
        head=after["feed_as_of"][-1] if after.height else None,
        applied_as_of=[a.feed.as_of for a, _ in plan.todo],
        applied_rows=applied_rows,
        written=written.rows,
    )


def _tracked(feeds: list[tuple[FeedRef, pl.DataFrame]], progress: Progress | None) -> Iterator:
    if progress is not None:
        progress.begin(len(feeds))
    for feed, vehicles in feeds:
        if progress is not None:
            progress.advance(feed.as_of)
        yield feed, vehicles


def _per_dealer(outcome) -> pl.DataFrame:
    sr_ids = outcome.events.get_column("sr_id")
    dealers = (
        outcome.state.lazy().filter(pl.col("sr_id").is_in(sr_ids.implode())).select("sr_id", "dealer_id")
    )
    events = outcome.events.lazy().join(dealers, on="sr_id", how="left").collect()
    counts = events.group_by("dealer_id").agg(
        (pl.col("event") == "created").sum().alias("created"),
        pl.col("sr_id").filter(pl.col("event").is_in(UPDATE_EVENTS)).n_unique().alias("updated"),
        (pl.col("event") == "auto_closed").sum().alias("closed"),
        (pl.col("event") == "close_held").sum().alias("held"),
    )
    skipped = outcome.skipped.group_by("dealer_id").len("skipped")
    active = (
        outcome.state.lazy()
        .filter(pl.col("status") == "active")
        .group_by("dealer_id")
        .len("active")
        .collect()
    )
    return (
        active.join(counts, on="dealer_id", how="full", coalesce=True)
        .join(skipped, on="dealer_id", how="full", coalesce=True)
        .fill_null(0)
        .sort("dealer_id")
    )
