"""What the Protractor definitions share: run config, the runtime view of resources, table schemas."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from dealer_assets.core.timeutil import parse_utc
from dealer_assets.protractor.client import ProtractorClient
from dealer_assets.protractor.settings import ProtractorSettings


def resource_key(location_id: str) -> str:
    return f"protractor_{location_id}"


class ProtractorRun(dg.Config):
    """`events` processes pending notifications; `sweep` lists what changed since the last sweep (or `since`)."""

    mode: str = "events"
    since: str | None = None
    locations: list[str] = []

    def since_at(self) -> datetime | None:
        return parse_utc(self.since, key="since", origin="run config") if self.since else None


@dataclass
class Runtime:
    engine: sa.Engine
    data_dir: Path
    history_start: datetime
    resources: object

    def client_for(self, location_id: str) -> ProtractorClient:
        return getattr(self.resources, resource_key(location_id)).client()


def runtime(context, settings: ProtractorSettings) -> Runtime:  # noqa: ANN001
    env = context.resources.dealer_env
    return Runtime(engine=context.resources.warehouse.engine(), data_dir=Path(env.data_dir),
                   history_start=env.start(), resources=context.resources)  # fmt: skip
