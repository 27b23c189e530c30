"""What the drop zone cannot take: files moved to the quarantine folder with their reason, recorded in
`quarantined_files` (also when the run that moved them was killed first); the misdelivered files that no
source can take; and deliveries that stay visibly unfinished past their limit (`incomplete`)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dealer_assets.core.env import DealerPaths
from dealer_assets.core.landing import Snapshot, entry_kind, sha256_of
from dealer_assets.core.timeutil import iso_z
from dealer_assets.core.warehouse import insert_frame
from dealer_assets.dms import tables as t
from dealer_assets.dms.archive import FeedArchive, Intake
from dealer_assets.dms.domain.feed_names import FeedName, Misdelivery, classify, parse_feed_name
from dealer_assets.dms.settings import DealerSettings

QUARANTINE_SCHEMA = {
    "file_name": pl.String,
    "sha256": pl.String,
    "reason": pl.String,
    "detail": pl.String,
    "source": pl.String,
    "quarantine_path": pl.String,
    "quarantined_at": pl.Datetime("us", "UTC"),
}


@dataclass
class Quarantined:
    file_name: str
    sha256: str
    reason: str
    detail: str
    source: str | None
    path: str


def quarantine_rows(items: list[Quarantined], at: datetime) -> pl.DataFrame:
    return pl.DataFrame(
        [(q.file_name, q.sha256, q.reason, q.detail, q.source, q.path, at) for q in items],
        schema=QUARANTINE_SCHEMA,
        orient="row",
    )


TRIAGE_REASONS = frozenset({"bad_file_name", "unknown_source", "as_of_out_of_range", "not_a_regular_file"})
"""What `triage_misdelivered` quarantines; every other reason is given by a source's raw step."""


def quarantine_delivery(
    store: FeedArchive, path: Path, sha256: str, reason: str, detail: str, source: str | None, at: datetime
) -> Quarantined:
    target = store.quarantine(path, sha256=sha256, reason=reason, detail=detail, source=source, at=at)
    return Quarantined(path.name, sha256, reason, detail, source, str(target))


def unrecorded(conn, store: FeedArchive) -> list[tuple[Quarantined, datetime]]:
    """Files in the quarantine folder without their `quarantined_files` row (moved by a run killed before its
    warehouse write), with the time each was quarantined."""
    records = [
        r
        for r in store.quarantine_records()
        if r.get("file_name") and r.get("sha256") and r.get("reason") and r.get("quarantined_at")
    ]
    if not records:
        return []
    c = t.quarantined_files.c
    known = {tuple(row) for row in conn.execute(sa.select(c.file_name, c.sha256)).all()}
    return [
        (
            Quarantined(
                r["file_name"],
                r["sha256"],
                r["reason"],
                r.get("detail"),
                r.get("source"),
                r["quarantine_path"],
            ),
            datetime.fromisoformat(r["quarantined_at"]),
        )
        for r in records
        if (r["file_name"], r["sha256"]) not in known
    ]


def record_quarantine(conn, store: FeedArchive, claims: Callable[[Quarantined], bool]) -> list[Quarantined]:
    """Bring `quarantined_files` up to the quarantine folder, so that what a killed run moved is recorded;
    returns those recovered files that `claims` (the step that quarantines such files reports them)."""
    missing = unrecorded(conn, store)
    if missing:
        frame = pl.DataFrame(
            [(q.file_name, q.sha256, q.reason, q.detail, q.source, q.path, at) for q, at in missing],
            schema=QUARANTINE_SCHEMA,
            orient="row",
        )
        insert_frame(conn, t.quarantined_files, frame, on_conflict="ignore")
    return [q for q, _ in missing if claims(q)]


def source_feed(item: Quarantined, source: str) -> FeedName | None:
    """The feed of `source` whose raw step quarantined this file; None for triage's files and other sources'."""
    named = parse_feed_name(item.file_name)
    if item.reason in TRIAGE_REASONS or named is None or named.source != source:
        return None
    return named


def misdelivered(item: Quarantined) -> bool:
    return item.reason in TRIAGE_REASONS


@dataclass
class Left:
    """A drop-zone file left where it is, and why (unreadable, unfinished, changed while read)."""

    file_name: str
    detail: str


def _irregular_digest(path: Path) -> str:
    """What identifies an entry that is never opened: a link's target text, else its kind."""
    text = os.readlink(path) if path.is_symlink() else entry_kind(path) or ""
    return hashlib.sha256(str(text).encode()).hexdigest()


def triage_misdelivered(
    paths: DealerPaths,
    settings: DealerSettings,
    engine: Engine,
    received_at: datetime,
    left: list[Left] | None = None,
) -> list[Quarantined]:
    """Quarantine drop-zone files that no source can take: bad names, unknown sources, as-of out of range,
    and entries that are not regular files (links are moved, never followed). A file that cannot be read
    stays where it is and is reported in `left`. Such files that a killed run moved are recorded and returned
    with the others."""
    store = FeedArchive(paths)
    found = []
    for path in store.irregular():
        digest = _irregular_digest(path)
        detail = f"a {entry_kind(path)}, not a regular file: only regular files are taken; it was moved, never followed"
        found.append(
            quarantine_delivery(store, path, digest, "not_a_regular_file", detail, None, received_at)
        )
    for path in store.incoming():
        verdict = classify(path.name, set(settings.sources), paths.history_start, received_at)
        if not isinstance(verdict, Misdelivery):
            continue
        try:
            listed = Snapshot.of(os.lstat(path))
            if not listed.settled(paths.settle_seconds):
                continue
            digest = sha256_of(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if left is not None:
                left.append(Left(path.name, f"cannot be read: {exc.strerror or exc}"))
            continue
        named = parse_feed_name(path.name)
        source = named.source if named else None
        found.append(
            quarantine_delivery(store, path, digest, verdict.reason, verdict.detail, source, received_at)
        )
    with engine.begin() as conn:
        if found:
            insert_frame(conn, t.quarantined_files, quarantine_rows(found, received_at), on_conflict="ignore")
        found += record_quarantine(conn, store, misdelivered)
    return found


def wait_or_quarantine(
    store: FeedArchive, path: Path, intake: Intake, source: str, limit_minutes: int, received_at: datetime
) -> Left | Quarantined | None:
    """A visibly unfinished delivery waits in the drop zone, reported, until nothing has been written to it for
    the limit (its mtime against the run's `received_at`); then it is quarantined as `incomplete`, unless it
    changed meanwhile (None: a later run looks again)."""
    assert intake.listed is not None
    limit = timedelta(minutes=limit_minutes)
    deadline = datetime.fromtimestamp(intake.listed.mtime_ns / 1e9, UTC) + limit
    if received_at < deadline:
        return Left(
            path.name,
            f"unfinished: {intake.detail}; quarantined as incomplete if still so at {iso_z(deadline)}",
        )
    try:
        digest = sha256_of(path)
        if Snapshot.of(os.lstat(path)) != intake.listed:
            return None
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Left(path.name, f"cannot be read: {exc.strerror or exc}")
    hint = (
        "; if this DMS's files never end with one, set `ends_with_newline: false` in its layout"
        if "line ending" in intake.detail
        else ""
    )
    detail = f"{intake.detail} and nothing was written to it for {limit_minutes} min: a stalled or cut delivery{hint}"
    return quarantine_delivery(store, path, digest, "incomplete", detail, source, received_at)
