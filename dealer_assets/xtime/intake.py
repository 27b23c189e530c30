"""Where requests come from: JSON-lines files in `<data root>/appointments/incoming/`, and service requests.

A file is copied into the archive (named by its checksum) before anything reads it, its lines are stored in
one transaction with the record of the file, and only then is it removed from the drop zone: a kill at any
point leaves either the file still incoming or the file recorded, never a file lost or read twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
from sqlalchemy.engine import Engine

from dealer_assets.core.files import write_durably
from dealer_assets.xtime import store
from dealer_assets.xtime.domain.requests import (
    LINES_SCHEMA,
    parse_request_lines,
    requests_from_service_requests,
)
from dealer_assets.xtime.settings import XtimeSettings


@dataclass(frozen=True)
class RequestPaths:
    data_dir: Path

    @property
    def incoming(self) -> Path:
        return self.data_dir / "appointments" / "incoming"

    @property
    def archive(self) -> Path:
        return self.data_dir / "appointments" / "archive"


def pending_files(paths: RequestPaths) -> list[Path]:
    if not paths.incoming.is_dir():
        return []
    return sorted(p for p in paths.incoming.iterdir() if p.is_file() and p.suffix == ".jsonl")


def _archive(data: bytes, sha: str, name: str, archive: Path) -> Path:
    target = archive / f"{sha[:16]}-{name}"
    if not target.exists():
        write_durably(target, data)
    return target


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def ingest_files(engine: Engine, settings: XtimeSettings, paths: RequestPaths, now: datetime) -> pl.DataFrame:
    """Stores the requests of every incoming file; returns one row per file handled."""
    summary = []
    for path in pending_files(paths):
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        known = store.file_received(engine, path.name)
        source_file = path.name if known in (None, sha) else f"{path.name}@{sha[:12]}"
        if store.file_received(engine, source_file) == sha:
            path.unlink()
            continue
        archived = _archive(data, sha, path.name, paths.archive)
        texts = [_utf8(raw) for raw in data.removeprefix(b"\xef\xbb\xbf").splitlines()]
        lines = pl.DataFrame(
            {"source_file": source_file, "line_number": range(1, len(texts) + 1), "line": texts},
            schema=LINES_SCHEMA,
        )
        parsed = parse_request_lines(lines, settings, store.existing_request_keys(engine))
        with engine.begin() as conn:
            added = store.insert_new_requests(conn, parsed, now)
            store.record_file(
                conn,
                file_name=source_file,
                sha256=sha,
                archived_as=str(archived),
                received_at=now,
                lines=lines.height,
                invalid_lines=parsed.filter(pl.col("status") == "invalid").height,
            )
        path.unlink()
        summary.append(
            {
                "file": source_file,
                "lines": lines.height,
                "added": added,
                "invalid": parsed.filter(pl.col("status") == "invalid").height,
            }
        )
    return pl.DataFrame(
        summary, schema={"file": pl.String(), "lines": pl.Int64(), "added": pl.Int64(), "invalid": pl.Int64()}
    )


def ingest_service_requests(engine: Engine, settings: XtimeSettings, srs: pl.DataFrame, now: datetime) -> int:
    """Stores a request for each newly eligible service request; one already stored is left as it is."""
    derived = requests_from_service_requests(srs, settings, now)
    with engine.begin() as conn:
        return store.insert_new_requests(conn, derived, now)
