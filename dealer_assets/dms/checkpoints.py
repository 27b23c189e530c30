"""State checkpoints: parquet of a source's SRs after a run, named by the ledger digest up to it and by the
digest of its own bytes.

A checkpoint is a cache: it is trusted only when the applied-feeds ledger up to its as-of matches the ledger
digest in its name and its bytes match the content digest in its name. One that does not verify (empty,
corrupt, or another state copied under its name) is deleted and the state is rebuilt from the feeds. The
newest 48 and the last of each day are kept.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from dealer_assets.core.landing import write_parquet_atomic

KEEP_RECENT_CHECKPOINTS = 48
STAMP = "%Y%m%dT%H%M%SZ"
DIGEST_CHARS = 16


def ledger_digest(applied: pl.DataFrame) -> str:
    text = "\n".join(f"{a.isoformat()} {s}" for a, s in applied.select("feed_as_of", "sha256").iter_rows())
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def _content_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:DIGEST_CHARS]


class Checkpoints:
    def __init__(self, root: Path, source: str) -> None:
        self.dir = root / source

    def listing(self) -> list[tuple[datetime, str, Path]]:
        """(through, ledger digest, path) of every checkpoint named in the current form, oldest first."""
        if not self.dir.is_dir():
            return []
        out = []
        for p in self.dir.glob("[0-9]*.parquet"):
            parts = p.stem.split("-")
            if len(parts) != 3:
                continue
            try:
                out.append((datetime.strptime(parts[0], STAMP).replace(tzinfo=UTC), parts[1], p))
            except ValueError:
                continue
        return sorted(out)

    def load(self, path: Path, schema: dict) -> pl.DataFrame | None:
        """The state a checkpoint holds, or None (and the file deleted) when its bytes do not verify."""
        try:
            if _content_digest(path) == path.stem.split("-")[2]:
                return pl.read_parquet(path).cast(schema)
        except (OSError, pl.exceptions.PolarsError):
            pass
        path.unlink(missing_ok=True)
        return None

    def save(self, state: pl.DataFrame, through: datetime, digest: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".pending.{os.getpid()}.tmp"
        write_parquet_atomic(state, tmp)
        final = self.dir / f"{through.strftime(STAMP)}-{digest}-{_content_digest(tmp)}.parquet"
        for older, ledger, p in self.listing():
            if older == through and ledger == digest and p != final:
                p.unlink(missing_ok=True)
        os.replace(tmp, final)
        self.prune()

    def prune(self) -> None:
        listing = self.listing()
        keep = {p for _, _, p in listing[-KEEP_RECENT_CHECKPOINTS:]}
        last_of_day: dict[str, Path] = {}
        for through, _, p in listing:
            last_of_day[through.strftime("%Y%m%d")] = p
        keep |= set(last_of_day.values())
        for _, _, p in listing:
            if p not in keep:
                p.unlink(missing_ok=True)
        for legacy in self.dir.glob("[0-9]*.parquet"):
            if len(legacy.stem.split("-")) == 2:
                legacy.unlink(missing_ok=True)

    def discard_from(self, as_of: datetime) -> None:
        for through, _, p in self.listing():
            if through >= as_of:
                p.unlink(missing_ok=True)
