"""What has been applied: the `applied_feeds` ledger, the state it gives, and the archive it rests on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dealer_assets.core.env import DealerPaths
from dealer_assets.core.landing import sha256_of
from dealer_assets.core.warehouse import read_frame
from dealer_assets.dms import tables as t
from dealer_assets.dms.archive import FeedArchive
from dealer_assets.dms.checkpoints import Checkpoints, Restored
from dealer_assets.dms.domain.feed_names import FeedName, partition_key_of
from dealer_assets.dms.domain.rules import apply_feeds
from dealer_assets.dms.domain.state import CONTRACT_SR_COLUMNS, SR_SCHEMA, empty_state
from dealer_assets.dms.domain.stored import read_form
from dealer_assets.dms.domain.vehicles import TS, FeedRef
from dealer_assets.dms.ingest import ArchiveAltered, recorded_feeds
from dealer_assets.dms.normalize_feeds import vehicles_of
from dealer_assets.dms.settings import SourceSettings

APPLIED_SCHEMA = {"feed_as_of": TS, "feed_file": pl.String, "sha256": pl.String}


def read_applied(conn, source: str) -> pl.DataFrame:
    return read_frame(
        conn,
        "SELECT feed_as_of, feed_file, sha256 FROM applied_feeds WHERE source = :s ORDER BY feed_as_of",
        APPLIED_SCHEMA,
        {"s": source},
    )


@dataclass(frozen=True)
class StartingState:
    state: pl.DataFrame
    chain: Restored | None
    """The checkpoint chain the state is, when it needed no feed re-applied: a run may add a delta to it."""


def starting_state(
    paths: DealerPaths,
    source: str,
    settings: SourceSettings,
    applied: pl.DataFrame,
    cutoff: datetime | None,
    released: dict[datetime, frozenset[str]] | None = None,
    read_only: bool = False,
) -> StartingState:
    """The SR state after every applied feed with as-of < cutoff (all of them when cutoff is None).
    `read_only` (what-if): no checkpoint is deleted and no parquet rebuilt on disk."""
    prefix = applied if cutoff is None else applied.filter(pl.col("feed_as_of") < cutoff)
    restored = Checkpoints(paths.state, source, read_only).restore(prefix, SR_SCHEMA)
    state = read_form(restored.state, restored.through) if restored else empty_state()
    todo = prefix if restored is None else prefix.filter(pl.col("feed_as_of") > restored.through)
    if todo.is_empty():
        return StartingState(state, restored)
    store = FeedArchive(paths)
    feeds = []
    for as_of, file_name, sha in todo.iter_rows():
        archived = store.archived(named(source, as_of, file_name))
        if archived is None or sha256_of(archived.path) != sha:
            raise ArchiveAltered(
                f"{file_name} was applied (sha256 {sha}) but is "
                f"{'missing from the archive' if archived is None else 'altered in the archive'}; "
                "restore it from a backup: the reconciled state is built on it"
            )
        vehicles = vehicles_of(paths, source, settings, archived, keep=not read_only)
        if vehicles is None:
            raise RuntimeError(f"{file_name} was applied but cannot be read from the archive any more")
        feeds.append((FeedRef(source, as_of, file_name), vehicles))
    return StartingState(apply_feeds(state, feeds, settings, released).state, None)


def verify_archive(store: FeedArchive, source: str, recorded: dict) -> None:
    """Every accepted feed is in the archive with the digest `feed_files` recorded, or nothing is replayed:
    a replay without it would silently drop its closes, skips and rejections."""
    problems = []
    for as_of, (file_name, sha, status) in sorted(recorded.items()):
        if status != "accepted":
            continue
        archived = store.archived(named(source, as_of, file_name))
        if archived is None:
            problems.append(f"{file_name} is missing from the archive")
        elif (actual := sha256_of(archived.path)) != sha:
            problems.append(f"{archived.path} has sha256 {actual}, recorded {sha}")
    if problems:
        raise ArchiveAltered(
            "replay stopped: accepted feeds are not in the archive as they were received: "
            + "; ".join(problems)
            + ". Restore them from a backup (feed_files holds each one's sha256), then replay again."
        )


def named(source: str, as_of: datetime, file_name: str) -> FeedName:
    return FeedName(as_of=as_of, source=source, file_name=file_name)


def contract_rows(conn, source: str | None = None) -> pl.DataFrame:
    """service_requests as the contract defines it, for checks, tests and commands."""
    where = "WHERE source = :s" if source else ""
    return read_frame(
        conn,
        f"SELECT {', '.join(CONTRACT_SR_COLUMNS)} FROM service_requests {where} ORDER BY sr_id",
        {c: SR_SCHEMA[c] for c in CONTRACT_SR_COLUMNS},
        {"s": source} if source else None,
    )


def applied_through(engine: Engine, source: str) -> datetime | None:
    """The as-of of the source's last applied feed."""
    c = t.applied_feeds.c
    with engine.connect() as conn:
        head = conn.execute(sa.select(sa.func.max(c.feed_as_of)).where(c.source == source)).scalar()
    if isinstance(head, str):
        head = datetime.fromisoformat(head)
    return head if head is None or head.tzinfo else head.replace(tzinfo=UTC)


def pending_partitions(paths: DealerPaths, source: str, engine: Engine) -> list[str]:
    """Partitions of archived feeds after the last one applied: left behind by a run that failed."""
    head = applied_through(engine, source)
    archived = FeedArchive(paths).archived_feeds(source, head, None)
    recorded = recorded_feeds(engine, source, head, None)
    return sorted(
        {
            partition_key_of(a.feed.as_of)
            for a in archived
            if (head is None or a.feed.as_of > head)
            and recorded.get(a.feed.as_of, (None, None, None))[1:] != (a.sha256, "quarantined")
        }
    )
