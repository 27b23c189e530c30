"""Refreshes each dealership's opcode catalog from Xtime (what the catalog asset and the opcode check read)."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from sqlalchemy.engine import Engine

from dealer_assets.xtime import store
from dealer_assets.xtime.client import XtimeClient
from dealer_assets.xtime.settings import XtimeSettings


def refresh_catalog(
    engine: Engine, client: XtimeClient, settings: XtimeSettings, now: datetime, dealership: str
) -> None:
    """Fetches one dealership's catalog and replaces what is stored for it."""
    services = client.services(settings.dealerships[dealership].dealer_code)
    frame = pl.DataFrame(
        [
            {
                "dealership": dealership,
                "opcode": str(s.get("opcode")).strip(),
                "name": s.get("name"),
                "fetched_at": now,
            }
            for s in services
            if s.get("opcode")
        ],
        schema=store.SERVICES_SCHEMA,
    ).unique(["dealership", "opcode"], keep="first", maintain_order=True)
    store.replace_services(engine, dealership, frame)


def refresh_catalogs(engine: Engine, client: XtimeClient, settings: XtimeSettings, now: datetime) -> None:
    """Every configured dealership's catalog, in order; the first failure stops (the asset goes one by one)."""
    for dealership in sorted(settings.dealerships):
        refresh_catalog(engine, client, settings, now, dealership)
