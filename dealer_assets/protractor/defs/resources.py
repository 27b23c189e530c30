"""Protractor's API as one Dagster resource: every location's keys and limits as typed config."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from dealer_assets.core.errors import ConfigError
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.protractor.client import ProtractorClient, ProtractorLocation
from dealer_assets.protractor.settings import ProtractorSettings, required_protractor
from dealer_assets.protractor.sync import SyncContext


class ProtractorResource(dg.ConfigurableResource):
    """Protractor's API at `base_url`, one `ProtractorLocation` per location id of the settings."""

    base_url: str
    locations: dict[str, ProtractorLocation]

    def client(self, location_id: str) -> ProtractorClient:
        if location_id not in self.locations:
            raise ConfigError(
                f"protractor.locations.{location_id}: added after the definitions loaded (reload the code location)"
            )
        return ProtractorClient(location_id, self.base_url, self.locations[location_id])

    @classmethod
    def for_definitions(cls, settings: ProtractorSettings) -> ProtractorResource:
        """Keys as `EnvVar`s of the variables the settings name: Dagster reads them when a run starts and
        stores only their names."""
        return cls(
            base_url=settings.base_url,
            locations={
                location_id: ProtractorLocation(
                    connection_id=dg.EnvVar(loc.connection_id_env), api_key=dg.EnvVar(loc.api_key_env)
                )
                for location_id, loc in settings.locations.items()
            },
        )

    @classmethod
    def from_environment(cls, settings: ProtractorSettings, **limits: float) -> ProtractorResource:
        """The same resource outside Dagster, keys read now from the variables the settings name; `limits`
        override `ProtractorLocation`'s defaults."""
        return cls(
            base_url=settings.base_url,
            locations={
                location_id: ProtractorLocation(
                    connection_id=_read_key(loc.connection_id_env, location_id, "connection_id_env"),
                    api_key=_read_key(loc.api_key_env, location_id, "api_key_env"),
                    **limits,
                )
                for location_id, loc in settings.locations.items()
            },
        )


def _read_key(env_name: str, location_id: str, key: str) -> str:
    value = os.environ.get(env_name, "").strip()
    if not value:
        raise ConfigError(
            f"environment variable {env_name} (protractor.locations.{location_id}.{key}) is not set"
        )
    return value


def sync_context(
    dealer_env: DealerEnvironment, warehouse: WarehouseResource, protractor: ProtractorResource
) -> SyncContext:
    """A run's view of the resources, with the settings file as it stands when the run starts."""
    return SyncContext(
        engine=warehouse.engine(),
        settings=required_protractor(dealer_env.settings_document(), dealer_env.settings_file),
        client_for=protractor.client,
        data_dir=Path(dealer_env.data_dir),
        history_start=dealer_env.start(),
    )
