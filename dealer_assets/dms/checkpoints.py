"""State checkpoints: parquet of a source's SRs after a run, named by the ledger digest up to it.

A checkpoint is a cache: it is trusted only when the applied-feeds ledger up to its as-of matches the digest
in its name, and any one of them can be deleted. The newest 48 and the last of each day are kept.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from dealer_assets.core.landing import write_parquet_atomic

KEEP_RECENT_CHECKPOINTS = 48
STAMP = "%Y%m%dT%H%M%SZ"


def ledger_digest(applied: pl.DataFrame) -> str:
    text = "\n".join(f"{a.isoformat()} {s}" for a, s in applied.select("feed_as_of", "sha256").iter_rows())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Checkpoints:
    def __init__(self, root: Path, source: str) -> None:
        self.dir = root / source

    def path(self, through: datetime, digest: str) -> Path:
        return self.dir / f"{through.strftime(STAMP)}-{digest}.parquet"

    def listing(self) -> list[tuple[datetime, str, Path]]:
        if not self.dir.is_dir():
            return []
        out = []
        for p in self.dir.glob("*.parquet"):
            stamp, _, digest = p.stem.partition("-")
            try:
                out.append((datetime.strptime(stamp, STAMP).replace(tzinfo=UTC), digest, p))
            except ValueError:
                continue
        return sorted(out)

    def save(self, state: pl.DataFrame, through: datetime, digest: str) -> None:
        write_parquet_atomic(state, self.path(through, digest))
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

    def discard_from(self, as_of: datetime) -> None:
        for through, _, p in self.listing():
            if through >= as_of:
                p.unlink(missing_ok=True)
