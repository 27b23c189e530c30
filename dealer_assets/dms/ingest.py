"""The raw-feeds step, from the drop zone to parsed feeds: archive, quarantine (`quarantine.py`), parse (normalizing is `normalize_feeds.py`).

Each step works on a window of as-of times for one source and is idempotent: running it again over the
same archive leaves the same files and rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dealer_assets.core.env import DealerPaths
from dealer_assets.core.faults import crash_point
from dealer_assets.core.handoff import write_parquet_handed_on
from dealer_assets.core.landing import writers_in
from dealer_assets.core.progress import Progress
from dealer_assets.core.warehouse import insert_frame
from dealer_assets.core.workers import in_order
from dealer_assets.dms import tables as t
from dealer_assets.dms.archive import ArchivedFeed, FeedArchive
from dealer_assets.dms.domain.feed_names import Misdelivery, classify, parse_feed_name
from dealer_assets.dms.domain.parsing import FeedUnreadable, parse_feed
from dealer_assets.dms.domain.vehicles import (
    FeedRef,
    malformed_rejections,
)
from dealer_assets.dms.quarantine import (
    Left,
    Quarantined,
    quarantine_delivery,
    quarantine_rows,
    record_quarantine,
    source_feed,
    wait_or_quarantine,
)
from dealer_assets.dms.settings import Layout, SourceSettings


@dataclass
class RawFeedsReport:
    archived: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    feeds: list[dict] = field(default_factory=list)
    left: list[Left] = field(default_factory=list)

    @property
    def raw_rows(self) -> int:
        return sum(f["raw_rows"] for f in self.feeds)

    @property
    def malformed_rows(self) -> int:
        return sum(f["malformed_rows"] for f in self.feeds)


def recorded_feeds(engine: Engine, source: str, start: datetime | None, end: datetime | None) -> dict:
    """feed_files of the source with start <= as-of < end: as-of -> (file name, sha256, status)."""
    c = t.feed_files.c
    query = sa.select(c.feed_as_of, c.file_name, c.sha256, c.status).where(c.source == source)
    if start is not None:
        query = query.where(c.feed_as_of >= start)
    if end is not None:
        query = query.where(c.feed_as_of < end)
    with engine.connect() as conn:
        rows = conn.execute(query).fetchall()
    return {(a if a.tzinfo else a.replace(tzinfo=UTC)): (f, d, st) for a, f, d, st in rows}


def ingest_raw_feeds(
    paths: DealerPaths,
    source: str,
    settings: SourceSettings,
    all_sources: set[str],
    engine: Engine,
    start: datetime,
    end: datetime,
    received_at: datetime,
    only_new: bool = False,
    progress: Progress | None = None,
) -> RawFeedsReport:
    """Take the source's deliveries for [start, end) from the drop zone, then parse every archived feed there
    (with `only_new`, as incremental runs do, only those not parsed yet).

    A file that is not settled stays in the drop zone; one that is visibly unfinished (until its limit), changes
    while it is read, or cannot be read stays and is reported (`left`); the others flow. A quarantined file is
    reported once, by the run that records it (also when a killed run had moved it).
    """
    store = FeedArchive(paths)
    report = RawFeedsReport()
    _take_deliveries(store, source, settings, all_sources, start, end, received_at, report)
    crash_point("ingest:after_archive")
    recorded = recorded_feeds(engine, source, start, end)
    todo = [
        a for a in store.archived_feeds(source, start, end) if not (only_new and _parsed(store, a, recorded))
    ]
    ledger, rejected = _parse_archived(store, source, settings, todo, recorded, received_at, report, progress)
    with engine.begin() as conn:
        if report.quarantined:
            insert_frame(
                conn,
                t.quarantined_files,
                quarantine_rows(report.quarantined, received_at),
                on_conflict="ignore",
            )
        report.quarantined += record_quarantine(conn, store, partial(_ours, source, start, end))
        conn.execute(
            sa.delete(t.rejected_rows).where(
                t.rejected_rows.c.source == source,
                t.rejected_rows.c.feed_as_of >= start,
                t.rejected_rows.c.feed_as_of < end,
                t.rejected_rows.c.reason == "malformed_row",
                *([t.rejected_rows.c.feed_as_of.in_([a.feed.as_of for a in todo])] if only_new else []),
            )
        )
        if rejected:
            insert_frame(conn, t.rejected_rows, pl.concat(rejected), on_conflict="update")
        if ledger:
            insert_frame(conn, t.feed_files, pl.DataFrame(ledger), on_conflict="update")
    return report


def _take_deliveries(
    store: FeedArchive,
    source: str,
    settings: SourceSettings,
    all_sources: set[str],
    start: datetime,
    end: datetime,
    received_at: datetime,
    report: RawFeedsReport,
) -> None:
    """Archive the source's settled, finished deliveries of [start, end); a conflicting re-delivery is
    quarantined, an unfinished one waits (`quarantine.wait_or_quarantine`)."""
    paths = store.paths
    ours = []
    for path in store.incoming():
        named = parse_feed_name(path.name)
        if named is None or named.source != source or not (start <= named.as_of < end):
            continue
        if not isinstance(classify(path.name, all_sources, paths.history_start, received_at), Misdelivery):
            ours.append((path, named))
    writers = writers_in(paths.incoming) if ours else {}
    for path, named in ours:
        intake = store.intake(path, named, settings.file_layout.line_endings, writers)
        if intake.outcome == "archived":
            report.archived.append(path.name)
        elif intake.outcome == "duplicate":
            report.duplicates.append(path.name)
        elif intake.outcome == "left":
            report.left.append(Left(path.name, intake.detail))
        elif intake.outcome == "unfinished":
            waits = wait_or_quarantine(
                store, path, intake, source, settings.incomplete_after_minutes, received_at
            )
            if isinstance(waits, Left):
                report.left.append(waits)
            elif waits is not None:
                report.quarantined.append(waits)
        elif intake.outcome == "conflict":
            detail = (
                f"{path.name} was delivered before with other bytes; the feed first received stays in force "
                f"(sha256 {store.archived(named).sha256})"
            )
            report.quarantined.append(
                quarantine_delivery(
                    store, path, intake.sha256, "conflicting_redelivery", detail, source, received_at
                )
            )


def _ours(source: str, start: datetime, end: datetime, item: Quarantined) -> bool:
    """A file this step quarantined for a feed of its window."""
    named = source_feed(item, source)
    return named is not None and start <= named.as_of < end


def _parse_archived(
    store: FeedArchive,
    source: str,
    settings: SourceSettings,
    todo: list[ArchivedFeed],
    recorded: dict,
    received_at: datetime,
    report: RawFeedsReport,
    progress: Progress | None,
) -> tuple[list[dict], list[pl.DataFrame]]:
    """Parse the archived feeds into their raw parquet (two at a time for long ranges): the `feed_files`
    ledger rows and the malformed rows; a feed that cannot be read is copied to the quarantine."""
    ledger: list[dict] = []
    rejected: list[pl.DataFrame] = []
    if progress is not None:
        progress.begin(len(todo))

    for archived in todo:
        known = recorded.get(archived.feed.as_of)
        if known is not None and known[1] != archived.sha256:
            raise ArchiveAltered(
                f"{archived.path}: the archive's digest {archived.sha256} is not the one recorded in "
                f"feed_files ({known[1]}) when {known[0]} was accepted; restore the file from a backup"
            )
    parse = partial(_parse_one, store, settings.file_layout)
    for archived, parsed in zip(todo, in_order(parse, todo), strict=True):
        if progress is not None:
            progress.advance(archived.feed.as_of)
        ref = FeedRef(source, archived.feed.as_of, archived.feed.file_name)
        if isinstance(parsed, _Unreadable):
            store.raw_path(archived.feed).unlink(missing_ok=True)
            store.normalized_path(archived.feed).unlink(missing_ok=True)
            target = store.quarantine_copy(
                archived, reason=parsed.reason, detail=parsed.detail, at=received_at
            )
            known = recorded.get(archived.feed.as_of)
            if known is None or known[2] != "quarantined":
                report.quarantined.append(
                    Quarantined(
                        archived.feed.file_name,
                        archived.sha256,
                        parsed.reason,
                        parsed.detail,
                        source,
                        str(target),
                    )
                )
            ledger.append(_ledger_row(archived, "quarantined", parsed.reason, None, None))
            continue
        rejected.append(malformed_rejections(parsed.malformed, ref))
        ledger.append(_ledger_row(archived, "accepted", None, parsed.rows, parsed.malformed.height))
        report.feeds.append(
            {
                "file": archived.feed.file_name,
                "as_of": archived.feed.as_of.isoformat(),
                "raw_rows": parsed.rows,
                "malformed_rows": parsed.malformed.height,
                "columns": list(parsed.header),
            }
        )

    return ledger, rejected


@dataclass(frozen=True)
class _Parsed:
    """What the ledger and the report need of a parsed feed; its rows are in its raw parquet."""

    rows: int
    malformed: pl.DataFrame
    header: tuple[str, ...]


@dataclass(frozen=True)
class _Unreadable:
    reason: str
    detail: str


def _parse_one(store: FeedArchive, layout: Layout, archived: ArchivedFeed) -> _Parsed | _Unreadable:
    """Parse one archived feed (its digest checked around the read) into its raw parquet (in a worker process
    for long ranges)."""
    try:
        with store.verified(archived) as feed_path:
            parsed = parse_feed(feed_path, layout)
    except FeedUnreadable as exc:
        return _Unreadable(exc.reason, exc.detail)
    write_parquet_handed_on(parsed.rows, store.raw_path(archived.feed))
    return _Parsed(parsed.rows.height, parsed.malformed, parsed.header)


def _parsed(store: FeedArchive, archived: ArchivedFeed, recorded: dict) -> bool:
    """Recorded in `feed_files` as these bytes, and quarantined or with its raw parquet in place."""
    known = recorded.get(archived.feed.as_of)
    if known is None or known[1] != archived.sha256:
        return False
    return known[2] == "quarantined" or store.raw_path(archived.feed).exists()


class ArchiveAltered(RuntimeError):
    """An archived feed is not what was accepted: nothing is built on it until it is restored."""


def _ledger_row(
    archived: ArchivedFeed, status: str, reason: str | None, raw_rows: int | None, malformed: int | None
) -> dict:
    return {
        "source": archived.feed.source,
        "feed_as_of": archived.feed.as_of,
        "file_name": archived.feed.file_name,
        "sha256": archived.sha256,
        "bytes": archived.size,
        "archive_path": str(archived.path),
        "status": status,
        "reason": reason,
        "raw_rows": raw_rows,
        "malformed_rows": malformed,
    }
