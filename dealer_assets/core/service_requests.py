"""The contract's `service_requests` (CONTRACT section 5) as every area reads it: the DMS area writes the
table, Protractor and Xtime read it by name. Published once here, since areas never import each other."""

from __future__ import annotations

import polars as pl

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
LINKED_COLUMNS = (
    "sr_id",
    "source",
    "vin",
    "dealer_id",
    "client",
    "stock_no",
    "service_request_type",
    "status",
    "created_at",
)
LINKED_SCHEMA = {c: SERVICE_REQUEST_COLUMNS[c] for c in LINKED_COLUMNS}
"""What an area that links its own records to service requests reads of them (Protractor by VIN, Xtime to
request bookings): who the vehicle is, whose it is, and whether the request is still open."""
