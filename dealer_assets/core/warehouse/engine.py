"""One SQLAlchemy engine per warehouse URL per process, migrated on first use."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from dealer_assets.core.errors import ConfigError
from dealer_assets.core.warehouse.migrations import upgrade

_ENGINES: dict[str, Engine] = {}
_ENGINE_LOCK = threading.Lock()


def _create(url: str) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
        parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        shown = url.split("@")[-1] if "@" in url else url
        raise ConfigError(
            f"environment: DEALER_WAREHOUSE_URL: not a usable SQLAlchemy URL (…{shown}): {exc}"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 120})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


def engine_for(url: str) -> Engine:
    """The engine of `url`, its schema brought up to date by the areas' migrations."""
    with _ENGINE_LOCK:
        if url not in _ENGINES:
            engine = _create(url)
            upgrade(engine)
            _ENGINES[url] = engine
        return _ENGINES[url]


def dispose_engines() -> None:
    with _ENGINE_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()
