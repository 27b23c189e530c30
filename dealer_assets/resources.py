"""Resources for every external system: the data root and settings file, and the warehouse."""
from __future__ import annotations

from datetime import datetime

import dagster as dg
from sqlalchemy.engine import Engine

from dealer_assets.config import DealerPaths, parse_utc
from dealer_assets.settings import DealerSettings, SourceSettings, load_settings
from dealer_assets.warehouse.store import engine_for


class DealerEnvironment(dg.ConfigurableResource):
    """Where the drop zone, archive and settings live (CONTRACT section 1)."""

    data_dir: str
    settings_file: str
    history_start: str

    def paths(self) -> DealerPaths:
        from pathlib import Path

        return DealerPaths(data_dir=Path(self.data_dir), settings_file=Path(self.settings_file),
                           warehouse_url="", history_start=self.start())

    def start(self) -> datetime:
        return parse_utc(self.history_start, key="DEALER_HISTORY_START", origin="environment")

    def settings(self) -> DealerSettings:
        """Read and validate the settings file now, so that a run always uses the file as it stands."""
        return load_settings(self.settings_file)

    def source_settings(self, source: str) -> SourceSettings:
        settings = self.settings()
        if source not in settings.sources:
            raise dg.Failure(f"{self.settings_file}: sources.{source}: the source is no longer configured; "
                             "reload the code location after changing the list of sources")
        return settings.sources[source]


class WarehouseResource(dg.ConfigurableResource):
    """The SQLAlchemy warehouse: an embedded SQLite file by default, PostgreSQL in production."""

    url: str

    def engine(self) -> Engine:
        return engine_for(self.url)
