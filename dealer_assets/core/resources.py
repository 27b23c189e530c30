"""Resources every area shares: where the data lives, and the warehouse."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
from sqlalchemy.engine import Engine

from dealer_assets.core.env import DEFAULT_SETTLE_SECONDS, DealerPaths
from dealer_assets.core.settings_file import read_document
from dealer_assets.core.timeutil import iso_z, parse_utc
from dealer_assets.core.warehouse import engine_for


class DealerEnvironment(dg.ConfigurableResource):
    """Where the drop zones, archive and settings live (CONTRACT section 1)."""

    data_dir: str
    settings_file: str
    history_start: str
    settle_seconds: float = DEFAULT_SETTLE_SECONDS

    @classmethod
    def of(cls, paths: DealerPaths) -> DealerEnvironment:
        return cls(
            data_dir=str(paths.data_dir),
            settings_file=str(paths.settings_file),
            history_start=iso_z(paths.history_start),
            settle_seconds=paths.settle_seconds,
        )

    def paths(self) -> DealerPaths:
        return DealerPaths(
            data_dir=Path(self.data_dir),
            settings_file=Path(self.settings_file),
            history_start=self.start(),
            settle_seconds=self.settle_seconds,
        )

    def start(self) -> datetime:
        return parse_utc(self.history_start, key="DEALER_HISTORY_START", origin="environment")

    def settings_document(self) -> dict:
        """The settings file as it stands now, so that a run always uses the current file."""
        return read_document(self.settings_file)


class WarehouseResource(dg.ConfigurableResource):
    """The SQLAlchemy warehouse: an embedded SQLite file by default, PostgreSQL in production."""

    url: str

    def engine(self) -> Engine:
        return engine_for(self.url)
