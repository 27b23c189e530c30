"""What the drop zone cannot take: files moved to the quarantine folder with their reason, recorded in
`quarantined_files`, and the misdelivered files that no source can take."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
from sqlalchemy.engine import Engine

from dealer_assets.core.env import DealerPaths
from dealer_assets.core.landing import Snapshot, entry_kind, sha256_of
from dealer_assets.core.warehouse import insert_frame
from dealer_assets.dms import tables as t
from dealer_assets.dms.archive import FeedArchive
from dealer_assets.dms.domain.feed_names import Misdelivery, classify, parse_feed_name
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


def record_quarantine(conn, store: FeedArchive) -> int:
    """Bring `quarantined_files` up to the quarantine folder: what was moved is recorded even when the run
    that moved it died before its warehouse write."""
    records = store.quarantine_records()
    if not records:
        return 0
    frame = pl.DataFrame(
        [
            (
                r.get("file_name"),
                r.get("sha256"),
                r.get("reason"),
                r.get("detail"),
                r.get("source"),
                r.get("quarantine_path"),
                datetime.fromisoformat(r["quarantined_at"]),
            )
            for r in records
            if r.get("file_name") and r.get("sha256") and r.get("reason") and r.get("quarantined_at")
        ],
        schema=QUARANTINE_SCHEMA,
        orient="row",
    )
    return insert_frame(conn, t.quarantined_files, frame, on_conflict="ignore")


@dataclass
class Left:
    """A drop-zone file left where it is, and why (unreadable, not settled, changed while read)."""

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
    stays where it is and is reported in `left`."""
    store = FeedArchive(paths)
    found = []
    for path in store.irregular():
        digest = _irregular_digest(path)
        kind = entry_kind(path)
        detail = f"a {kind}, not a regular file: only regular files are taken; it was moved, never followed"
        target = store.quarantine(
            path, sha256=digest, reason="not_a_regular_file", detail=detail, source=None, at=received_at
        )
        found.append(Quarantined(path.name, digest, "not_a_regular_file", detail, None, str(target)))
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
        target = store.quarantine(
            path,
            sha256=digest,
            reason=verdict.reason,
            detail=verdict.detail,
            source=named.source if named else None,
            at=received_at,
        )
        found.append(
            Quarantined(
                path.name,
                digest,
                verdict.reason,
                verdict.detail,
                named.source if named else None,
                str(target),
            )
        )
    with engine.begin() as conn:
        if found:
            insert_frame(conn, t.quarantined_files, quarantine_rows(found, received_at), on_conflict="ignore")
        record_quarantine(conn, store)
    return found
