"""Helpers the Protractor tests share: two locations' keys, the settings that name them, seeded shops, and the
sync context and clients built from those settings; fixtures are in conftest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from dealer_assets.core.warehouse import engine_for
from dealer_assets.protractor.defs.resources import ProtractorResource
from dealer_assets.protractor.fake import Account, Shop, sample_vehicles
from dealer_assets.protractor.journal import journal_dir, read_new
from dealer_assets.protractor.settings import load_protractor_settings
from dealer_assets.protractor.sync import SyncContext

NORTH = ("7C3E5F2A-91B4-4D6E-A0C8-2F1B9E4D7A63", "B5D2E8F1-3A6C-4E9B-8D7F-1C4A2E6B9F05")
SOUTH = ("0A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9", "F9E8D7C6-B5A4-4392-8170-6F5E4D3C2B1A")
HISTORY = datetime(2025, 1, 1, tzinfo=UTC)
FAST_LIMITS = {"requests_per_second": 50, "requests_per_minute": 3000, "backoff_initial_seconds": 0.05}
"""Limits and backoff that keep tests short; the client's own limits are tested in test_client."""
SETTINGS = """
sources:
  generic:
    layout: generic
    track_stock_no_and_client: {{mode: never}}
    auto_close: {{mode: never}}
    client_dealer_mappings:
      - {{client: Riverside Motors, dealer_id: "D100", service_request_type: Used Recon}}
protractor:
  base_url: {base_url}
  locations:
    north:
      name: North Shop
      time_zone: America/Chicago
      connection_id_env: PT_NORTH_CONN
      api_key_env: PT_NORTH_KEY
      status_map: {{Work In Progress: WIP, Completed: Complete, Approved: Approved}}
      user_map: {{Dana Smith: dana.smith, Lee Park: lee.park, Chris Olsen: chris.olsen, Pat Nguyen: pat.nguyen}}
      write_back: true
    south:
      name: South Shop
      time_zone: America/New_York
      connection_id_env: PT_SOUTH_CONN
      api_key_env: PT_SOUTH_KEY
"""


def accounts(count: int = 12) -> list[Account]:
    """North with `count` work orders and south with half as many, on the DMS sample VINs; north sends its
    users as text under `Header`, south as top-level objects."""
    north = Account("north", *NORTH, "America/Chicago")
    south = Account("south", *SOUTH, "America/New_York", Shop(users="objects"))
    vehicles = sample_vehicles()
    north.shop.seed(vehicles, datetime(2026, 11, 16, 7), count, seed=1)
    south.shop.seed(vehicles[count:], datetime(2026, 11, 16, 8), count // 2, seed=2)
    return [north, south]


def sync_context(settings_file: Path, warehouse_url: str, data_dir: Path, **limits: float) -> SyncContext:
    """What the assets would build from the same settings, keys read from the environment."""
    settings = load_protractor_settings(settings_file)
    api = ProtractorResource.from_environment(settings, **limits)
    return SyncContext(engine_for(warehouse_url), settings, api.client, data_dir, HISTORY)


def journaled(data_dir: Path) -> int:
    """Callbacks the receiver stored under this data root."""
    root = journal_dir(data_dir)
    return read_new(root, {})[0].height if root.exists() else 0


@dataclass(frozen=True)
class Setup:
    """The Protractor definitions over a test warehouse and the fake, with the resources a run gets."""

    defs: dg.Definitions
    resources: dict
    engine: sa.Engine
    data_dir: Path

    @property
    def full(self) -> dg.Definitions:
        d = self.defs
        return dg.Definitions(
            assets=d.assets, jobs=d.jobs, sensors=d.sensors, schedules=d.schedules, resources=self.resources
        )

    def materialize(self, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
        return dg.materialize(list(self.defs.assets), resources=self.resources, run_config=run_config or {})

    def count(self, sql: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
