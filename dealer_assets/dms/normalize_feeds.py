"""Normalized vehicles: each parsed feed of a window through VIN rule 1, rejected rows to the warehouse.

Like the ingest step, it is idempotent over the same archive.
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
from dealer_assets.core.files import write_parquet_atomically
from dealer_assets.core.handoff import read_parquet_handed_on, write_parquet_handed_on
from dealer_assets.core.progress import Progress
from dealer_assets.core.warehouse import insert_frame
from dealer_assets.core.workers import in_order
from dealer_assets.dms import tables as t
from dealer_assets.dms.archive import ArchivedFeed, FeedArchive
from dealer_assets.dms.domain.eligibility import FEED_COLUMNS
from dealer_assets.dms.domain.parsing import FeedUnreadable, parse_feed
from dealer_assets.dms.domain.vehicles import (
    FeedRef,
    normalize_feed,
)
from dealer_assets.dms.settings import SourceSettings


@dataclass
class NormalizedReport:
    feeds: list[dict] = field(default_factory=list)
    per_dealer: pl.DataFrame | None = None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    preview: pl.DataFrame | None = None

    @property
    def vehicles(self) -> int:
        return sum(f["vehicles"] for f in self.feeds)

    @property
    def rejected(self) -> int:
        return sum(f["rejected"] for f in self.feeds)

    @property
    def check_digit_failures(self) -> int:
        return sum(f["check_digit_failures"] for f in self.feeds)

    @property
    def raw_rows(self) -> int:
        return sum(f["raw_rows"] for f in self.feeds)


@dataclass(frozen=True)
class _Normalized:
    """What the warehouse write and the report need of one normalized feed (not its vehicles)."""

    archived: ArchivedFeed
    raw_rows: int
    vehicles: int
    rejected: pl.DataFrame
    check_digit_failures: int
    per_dealer: pl.DataFrame
    preview: pl.DataFrame


def normalize_window(
    paths: DealerPaths,
    source: str,
    settings: SourceSettings,
    engine: Engine,
    start: datetime,
    end: datetime,
    only_new: bool = False,
    progress: Progress | None = None,
) -> NormalizedReport:
    """Normalize every parsed feed of the source in [start, end) (with `only_new`, as incremental runs do,
    only those not normalized yet); rejected rows go to the warehouse.

    Feeds are normalized `FEED_WORKERS` at a time (polars releases the GIL), in as-of order of results.
    """
    store = FeedArchive(paths)
    done = _normalized(engine, source, start, end) if only_new else set()
    todo = [
        a
        for a in store.archived_feeds(source, start, end)
        if not (a.feed.as_of in done and store.normalized_path(a.feed).exists())
    ]
    if progress is not None:
        progress.begin(len(todo))

    outputs = []
    for archived, out in zip(
        todo, in_order(partial(_normalize_one, paths, source, settings), todo), strict=True
    ):
        if progress is not None:
            progress.advance(archived.feed.as_of)
        if out is not None:
            outputs.append(out)
    with engine.begin() as conn:
        conn.execute(
            sa.delete(t.rejected_rows).where(
                t.rejected_rows.c.source == source,
                t.rejected_rows.c.feed_as_of >= start,
                t.rejected_rows.c.feed_as_of < end,
                t.rejected_rows.c.reason != "malformed_row",
                *(
                    [t.rejected_rows.c.feed_as_of.in_([o.archived.feed.as_of for o in outputs])]
                    if only_new
                    else []
                ),
            )
        )
        rejected = [o.rejected for o in outputs if o.rejected.height]
        if rejected:
            insert_frame(
                conn, t.rejected_rows, pl.concat(rejected, how="vertical_relaxed"), on_conflict="update"
            )
        if outputs:
            c = t.feed_files.c
            conn.execute(
                sa.update(t.feed_files)
                .where(c.source == source, c.feed_as_of == sa.bindparam("as_of"))
                .values(
                    vehicles=sa.bindparam("n_vehicles"),
                    rejected_rows=sa.bindparam("n_rejected"),
                    check_digit_failures=sa.bindparam("n_failures"),
                ),
                [
                    {
                        "as_of": o.archived.feed.as_of,
                        "n_vehicles": o.vehicles,
                        "n_rejected": o.rejected.height,
                        "n_failures": o.check_digit_failures,
                    }
                    for o in outputs
                ],
            )
        crash_point("normalize:before_commit")
    return _report(outputs)


def _normalize_one(
    paths: DealerPaths, source: str, settings: SourceSettings, archived: ArchivedFeed
) -> _Normalized | None:
    """One feed from its raw parquet to its normalized parquet (in a worker process for long ranges)."""
    store = FeedArchive(paths)
    raw_path = store.raw_path(archived.feed)
    if not raw_path.exists():
        store.normalized_path(archived.feed).unlink(missing_ok=True)
        return None
    rows = read_parquet_handed_on(raw_path)
    result = normalize_feed(
        rows, settings.file_layout, FeedRef(source, archived.feed.as_of, archived.feed.file_name)
    )
    write_parquet_handed_on(result.vehicles, store.normalized_path(archived.feed))
    return _Normalized(
        archived,
        rows.height,
        result.vehicles.height,
        result.rejected,
        int((~result.vehicles["check_digit_ok"]).sum()),
        result.vehicles.group_by("dealer_id").len("vehicles"),
        result.vehicles.head(5),
    )


def _report(outputs: list[_Normalized]) -> NormalizedReport:
    report = NormalizedReport()
    for out in outputs:
        report.feeds.append(
            {
                "file": out.archived.feed.file_name,
                "raw_rows": out.raw_rows,
                "vehicles": out.vehicles,
                "rejected": out.rejected.height,
                "check_digit_failures": out.check_digit_failures,
            }
        )
        for reason, count in out.rejected.group_by("reason").len().iter_rows():
            report.rejected_by_reason[reason] = report.rejected_by_reason.get(reason, 0) + count
    if outputs:
        report.per_dealer = (
            pl.concat([o.per_dealer for o in outputs])
            .group_by("dealer_id")
            .agg(pl.col("vehicles").sum())
            .sort("dealer_id")
        )
        report.preview = outputs[-1].preview
    return report


def _normalized(engine: Engine, source: str, start: datetime, end: datetime) -> set[datetime]:
    """As-ofs in [start, end) whose normalized figures are recorded in `feed_files`."""
    c = t.feed_files.c
    query = sa.select(c.feed_as_of).where(
        c.source == source, c.feed_as_of >= start, c.feed_as_of < end, c.vehicles.is_not(None)
    )
    with engine.connect() as conn:
        return {a if a.tzinfo else a.replace(tzinfo=UTC) for (a,) in conn.execute(query)}


def vehicles_of(
    paths: DealerPaths, source: str, settings: SourceSettings, archived: ArchivedFeed, keep: bool = True
) -> pl.DataFrame | None:
    """A feed's normalized vehicles, the columns reconciliation reads: from its parquet, or rebuilt from the
    archive when that is gone (and, with `keep`, written back).

    None when the archived file cannot be read (it was quarantined, so it is not an accepted feed).
    """
    store = FeedArchive(paths)
    path = store.normalized_path(archived.feed)
    if path.exists():
        return read_parquet_handed_on(path, columns=list(FEED_COLUMNS))
    try:
        with store.verified(archived) as feed_path:
            parsed = parse_feed(feed_path, settings.file_layout)
    except FeedUnreadable:
        return None
    result = normalize_feed(
        parsed.rows, settings.file_layout, FeedRef(source, archived.feed.as_of, archived.feed.file_name)
    )
    if keep:
        write_parquet_atomically(result.vehicles, path)
    return result.vehicles.select(FEED_COLUMNS)
