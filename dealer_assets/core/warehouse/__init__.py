"""The warehouse every area writes to: one MetaData, one engine per URL, Alembic migrations, bulk frames."""

from dealer_assets.core.warehouse.engine import dispose_engines, engine_for
from dealer_assets.core.warehouse.frames import insert_frame, is_postgres, read_frame
from dealer_assets.core.warehouse.locks import exclusive_lock
from dealer_assets.core.warehouse.schema import TS, describe, metadata, ts

TS_COLUMN_TYPE = TS

__all__ = [
    "TS",
    "TS_COLUMN_TYPE",
    "describe",
    "dispose_engines",
    "engine_for",
    "exclusive_lock",
    "insert_frame",
    "is_postgres",
    "metadata",
    "read_frame",
    "ts",
]
