"""Files arriving from outside: what counts as a finished delivery, checksums, atomic and durable writes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import polars as pl

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart")


def sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def is_delivery(path: Path) -> bool:
    """A finished delivery: a regular file, not hidden, not a partial upload (write, then rename into place)."""
    return path.is_file() and not path.name.startswith(".") and not path.name.endswith(IGNORED_SUFFIXES)


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.write_parquet(tmp, compression="zstd", statistics=False)
    os.replace(tmp, path)


def durable_append(path: Path, data: bytes) -> None:
    """Append and fsync, so that what was acknowledged survives a power cut."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
