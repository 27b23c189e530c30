"""Where the areas meet: asset keys one area publishes and others depend on (areas never import each other).

The DMS area publishes each source's reconciled `service_requests` (CONTRACT section 5) under
`dms/<source>/service_requests`; Protractor links work orders to them and Xtime books appointments from them,
reading the warehouse view `service_requests` with the columns below.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

DMS_PREFIX = "dms"
SERVICE_REQUEST_COLUMNS = {
    "sr_id": pl.String,
    "source": pl.String,
    "vin": pl.String,
    "dealer_id": pl.String,
    "client": pl.String,
    "stock_no": pl.String,
    "vehicle_type": pl.String,
    "service_request_type": pl.String,
    "status": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "updated_at": pl.Datetime("us", "UTC"),
    "closed_at": pl.Datetime("us", "UTC"),
    "close_reason": pl.String,
    "last_seen_at": pl.Datetime("us", "UTC"),
    "auto_close_at": pl.Datetime("us", "UTC"),
}
"""The contract's `service_requests` columns, as other areas read them."""


def dms_key(source: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([DMS_PREFIX, source, name])


def service_requests_key(source: str) -> dg.AssetKey:
    return dms_key(source, "service_requests")
