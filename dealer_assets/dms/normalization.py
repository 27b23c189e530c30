"""Normalized vehicles: each parsed feed of a window through VIN rule 1, rejected rows to the warehouse.

Like the ingest step, it is idempotent over the same archive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dealer_assets.core.env import DealerPaths
from dealer_assets.core.faults import crash_point
from dealer_assets.core.handoff import read_parquet_handed_on, write_parquet_handed_on
from dealer_assets.core.landing import write_parquet_atomic
from dealer_assets.core.warehouse import insert_frame
from dealer_assets.dms import tables as t
from dealer_assets.dms.domain.eligibility import FEED_COLUMNS
from dealer_assets.dms.domain.normalize import (
    FeedRef,
    NormalizedFeed,
    normalize_feed,
)
from dealer_assets.dms.domain.parsing import FeedUnreadable, parse_feed
from dealer_assets.dms.feed_store import ArchivedFeed, FeedStore
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


def normalize_window(
    paths: DealerPaths, source: str, settings: SourceSettings, engine: Engine, start: datetime, end: datetime
) -> NormalizedReport:
    """Normalize every parsed feed of the source in [start, end); rejected rows go to the warehouse."""
    store = FeedStore(paths)
    report = NormalizedReport()
    outputs: list[tuple[ArchivedFeed, NormalizedFeed, int]] = []
    for archived in store.archived_feeds(source, start, end):
        raw_path = store.raw_path(archived.feed)
        if not raw_path.exists():
            store.normalized_path(archived.feed).unlink(missing_ok=True)
            continue
        rows = read_parquet_handed_on(raw_path)
        result = normalize_feed(
            rows, settings.file_layout, FeedRef(source, archived.feed.as_of, archived.feed.file_name)
        )
        write_parquet_handed_on(result.vehicles, store.normalized_path(archived.feed))
        outputs.append((archived, result, rows.height))

    per_dealer = []
    with engine.begin() as conn:
        conn.execute(
            sa.delete(t.rejected_rows).where(
                t.rejected_rows.c.source == source,
                t.rejected_rows.c.feed_as_of >= start,
                t.rejected_rows.c.feed_as_of < end,
                t.rejected_rows.c.reason != "malformed_row",
            )
        )
        for archived, result, raw_rows in outputs:
            insert_frame(conn, t.rejected_rows, result.rejected, on_conflict="update")
            failures = int((~result.vehicles["check_digit_ok"]).sum())
            conn.execute(
                sa.update(t.feed_files)
                .where(
                    t.feed_files.c.source == source,
                    t.feed_files.c.feed_as_of == archived.feed.as_of,
                )
                .values(
                    vehicles=result.vehicles.height,
                    rejected_rows=result.rejected.height,
                    check_digit_failures=failures,
                )
            )
            report.feeds.append(
                {
                    "file": archived.feed.file_name,
                    "raw_rows": raw_rows,
                    "vehicles": result.vehicles.height,
                    "rejected": result.rejected.height,
                    "check_digit_failures": failures,
                }
            )
            for reason, count in result.rejected.group_by("reason").len().iter_rows():
                report.rejected_by_reason[reason] = report.rejected_by_reason.get(reason, 0) + count
            per_dealer.append(result.vehicles.group_by("dealer_id").len("vehicles"))
        crash_point("normalize:before_commit")
    if per_dealer:
        report.per_dealer = (
            pl.concat(per_dealer).group_by("dealer_id").agg(pl.col("vehicles").sum()).sort("dealer_id")
        )
        report.preview = outputs[-1][1].vehicles.head(5)
    return report


def vehicles_of(
    paths: DealerPaths, source: str, settings: SourceSettings, archived: ArchivedFeed
) -> pl.DataFrame | None:
    """A feed's normalized vehicles, the columns reconciliation reads: from its parquet, or rebuilt from the
    archive when that is gone.

    None when the archived file cannot be read (it was quarantined, so it is not an accepted feed).
    """
    store = FeedStore(paths)
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
    write_parquet_atomic(result.vehicles, path)
    return result.vehicles.select(FEED_COLUMNS)
