"""State checkpoints: a source's SRs as a base (the whole state) followed by deltas (the SRs a run changed).

Both hold the stored form (`domain.stored`): an SR a steady hour sees again does not change, so a delta
holds what the run wrote to the warehouse and disk use grows with change, not with hours times inventory.
A new base is written after a replay, when the state could not come from the chain, or once the deltas
since the last base hold as many rows as it does.

A checkpoint is a cache: it is trusted only when the applied-feeds ledger up to its as-of matches the ledger
digest in its name, its bytes match the content digest in its name, and every delta back to its base is
there and verifies. One that does not verify is deleted and the state is rebuilt from the feeds.
Chains whose newest point is more than `KEEP_DAYS` older than the newest checkpoint are removed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from dealer_assets.core.files import write_parquet_atomically

STAMP = "%Y%m%dT%H%M%SZ"
DIGEST_CHARS = 16
KEEP_DAYS = 31
MAX_CHAIN = 720
"""Deltas after one base at most (a month of hourly runs): a restore reads at most this many files."""


def ledger_digest(applied: pl.DataFrame) -> str:
    text = "\n".join(f"{a.isoformat()} {s}" for a, s in applied.select("feed_as_of", "sha256").iter_rows())
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def _content_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:DIGEST_CHARS]


def _stamp(value: datetime) -> str:
    return value.strftime(STAMP)


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, STAMP).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Checkpoint:
    """`<through>-<ledger>-<content>.parquet` (a base) or `<through>-<ledger>-<content>.after-<parent>.parquet`
    (a delta on the checkpoint through `parent`)."""

    through: datetime
    ledger: str
    content: str
    parent: datetime | None
    path: Path

    @classmethod
    def parse(cls, path: Path) -> Checkpoint | None:
        head, _, link = path.name.removesuffix(".parquet").partition(".")
        parts = head.split("-")
        if len(parts) != 3 or (link and not link.startswith("after-")):
            return None
        try:
            parent = _parse_stamp(link.removeprefix("after-")) if link else None
            return cls(_parse_stamp(parts[0]), parts[1], parts[2], parent, path)
        except ValueError:
            return None


@dataclass(frozen=True)
class Restored:
    state: pl.DataFrame
    """Stored form as of `through`."""
    through: datetime
    base_rows: int
    delta_rows: int
    deltas: int


class Checkpoints:
    def __init__(self, root: Path, source: str, read_only: bool = False) -> None:
        """`read_only`: a checkpoint that does not verify is passed over but not deleted (what-if)."""
        self.dir = root / source
        self.read_only = read_only

    def listing(self) -> list[Checkpoint]:
        """Every checkpoint, oldest first."""
        if not self.dir.is_dir():
            return []
        found = (Checkpoint.parse(p) for p in self.dir.glob("[0-9]*.parquet"))
        return sorted((c for c in found if c is not None), key=lambda c: (c.through, c.parent is not None))

    def restore(self, prefix: pl.DataFrame, schema: dict) -> Restored | None:
        """The newest state whose whole chain verifies against `prefix` (applied-feeds rows, as-of order)."""
        listing = self.listing()
        by_through = {c.through: c for c in listing}
        for candidate in reversed(listing):
            covered = prefix.filter(pl.col("feed_as_of") <= candidate.through)
            if not covered.height or covered["feed_as_of"][-1] != candidate.through:
                continue
            if ledger_digest(covered) != candidate.ledger:
                continue
            chain = [candidate]
            while chain[-1].parent is not None and chain[-1].parent in by_through:
                chain.append(by_through[chain[-1].parent])
            if chain[-1].parent is not None:
                continue
            frames = [self._load(c, schema) for c in reversed(chain)]
            if any(f is None for f in frames):
                return self.restore(prefix, schema)
            base, deltas = frames[0], frames[1:]
            state = (
                base
                if not deltas
                else pl.concat([base, *deltas]).unique("sr_id", keep="last", maintain_order=True)
            )
            return Restored(
                state=state,
                through=candidate.through,
                base_rows=base.height,
                delta_rows=sum(d.height for d in deltas),
                deltas=len(deltas),
            )
        return None

    def _load(self, checkpoint: Checkpoint, schema: dict) -> pl.DataFrame | None:
        """Its rows, or None (and the file deleted) when its bytes do not verify."""
        try:
            if _content_digest(checkpoint.path) == checkpoint.content:
                return pl.read_parquet(checkpoint.path).cast(schema)
        except (OSError, pl.exceptions.PolarsError):
            pass
        if not self.read_only:
            checkpoint.path.unlink(missing_ok=True)
        return None

    def save(
        self, rows: pl.DataFrame, through: datetime, digest: str, parent: datetime | None = None
    ) -> None:
        """A base (`parent` None: `rows` is the whole state) or a delta on the checkpoint through `parent`."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".pending.{os.getpid()}.tmp"
        write_parquet_atomically(rows, tmp)
        link = f".after-{_stamp(parent)}" if parent is not None else ""
        final = self.dir / f"{_stamp(through)}-{digest}-{_content_digest(tmp)}{link}.parquet"
        for older in self.listing():
            if older.through == through and older.path != final:
                older.path.unlink(missing_ok=True)
        os.replace(tmp, final)
        self.prune()

    def prune(self) -> None:
        """Drop chains that ended more than KEEP_DAYS before the newest checkpoint, and legacy names."""
        listing = self.listing()
        if listing:
            horizon = listing[-1].through - timedelta(days=KEEP_DAYS)
            bases = [c.through for c in listing if c.parent is None and c.through <= horizon]
            if bases:
                for checkpoint in listing:
                    if checkpoint.through < bases[-1]:
                        checkpoint.path.unlink(missing_ok=True)
        for legacy in self.dir.glob("[0-9]*.parquet"):
            if len(legacy.stem.split("-")) == 2:
                legacy.unlink(missing_ok=True)

    def discard_from(self, as_of: datetime) -> None:
        for checkpoint in self.listing():
            if checkpoint.through >= as_of:
                checkpoint.path.unlink(missing_ok=True)
