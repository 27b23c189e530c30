"""Exclusive locks across processes: a PostgreSQL advisory lock, or a lock file beside the data."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock
from sqlalchemy.engine import Engine

LOCK_TIMEOUT_SECONDS = 3600


def lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def exclusive_lock(engine: Engine, lock_dir: Path, name: str) -> Iterator[None]:
    """Hold `name` exclusively: on PostgreSQL for every host sharing the warehouse, on SQLite for this host."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_advisory_lock(%(key)s)", {"key": lock_key(name)})
            conn.commit()
            try:
                yield
            finally:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(%(key)s)", {"key": lock_key(name)})
                conn.commit()
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_dir / f"{name}.lock", timeout=LOCK_TIMEOUT_SECONDS):
        yield
