"""The schema is Alembic's: each area keeps its revisions in `dealer_assets/<area>/migrations/` on a branch
labelled with the area's name, and `upgrade()` applies every pending one (`alembic upgrade heads`).

A warehouse made before migrations existed carries the table `dealer_assets_schema` (version 1); it is
stamped at `dms_0001`, which reproduces that schema exactly, and upgraded from there.

Alembic's own INFO lines ("Context impl SQLiteImpl", "Will assume non-transactional DDL") are kept off every
terminal: a process that logs INFO (the callback receiver) would print them each time it opens the warehouse.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from filelock import FileLock
from sqlalchemy.engine import Engine

from dealer_assets.core.warehouse.locks import lock_key

PACKAGE = Path(__file__).resolve().parents[2]
LEGACY_VERSION_TABLE = "dealer_assets_schema"
LEGACY_REVISION = "dms_0001"
logging.getLogger("alembic").setLevel(logging.WARNING)


def version_locations() -> list[Path]:
    return sorted(p for p in PACKAGE.glob("*/migrations") if p.is_dir())


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("alembic")))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in version_locations()))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply pending revisions, one process at a time per warehouse."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database and database != ":memory:":
            with FileLock(f"{database}.migrate.lock", timeout=600):
                _upgrade(engine)
            return
    _upgrade(engine)


def _upgrade(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(%(key)s)", {"key": lock_key("dealer_assets/migrate")}
            )
        cfg = alembic_config(conn)
        tables = set(sa.inspect(conn).get_table_names())
        if LEGACY_VERSION_TABLE in tables and "alembic_version" not in tables:
            command.stamp(cfg, LEGACY_REVISION)
            conn.exec_driver_sql(f'DROP TABLE "{LEGACY_VERSION_TABLE}"')
        command.upgrade(cfg, "heads")
