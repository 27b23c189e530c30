"""Durable and atomic file writes: a reader sees a whole file or none of it, and what was acknowledged
survives a power cut."""

from __future__ import annotations

import os
import time
from pathlib import Path

import polars as pl

PARQUET_ZSTD_LEVEL = 1
"""Feeds' text compresses as well at level 1 as at the default, in two thirds of the time."""


def sync_directory(path: Path) -> None:
    """fsync a directory, so that a file created or renamed in it survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes | str) -> None:
    """Write beside, fsync, rename, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    with open(tmp, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    sync_directory(path.parent)


def write_parquet_atomically(frame: pl.DataFrame, path: Path) -> None:
    """Write beside and rename, without fsync: for files rebuilt from the archive when lost."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.write_parquet(tmp, compression="zstd", compression_level=PARQUET_ZSTD_LEVEL, statistics=False)
    os.replace(tmp, path)


def append_durably(path: Path, data: bytes) -> None:
    """Append and fsync (and fsync the directory when the file is new)."""
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        sync_directory(path.parent)
