"""Work orders linked to DMS service requests by VIN, and the GUIDs of the packages write-back adds to them.

A VIN's service request is its active one, else its most recently created one (ties: the higher `sr_id`, so
the choice never depends on row order); NULL when the VIN has none. Write-back GUIDs are uuid5 of our ids, so a
package is named the same on every attempt and Protractor (which upserts by ID) never receives it twice.
"""

from __future__ import annotations

import uuid

import polars as pl

from dealer_assets.core.service_requests import LINKED_SCHEMA

NAMESPACE = uuid.UUID("6f1c3a52-5d0e-4c57-9a4e-2f7b8e1d9c40")
SR_SCHEMA: dict[str, pl.DataType] = LINKED_SCHEMA
"""The columns of the DMS `service_requests` that links read."""
LINK_SCHEMA: dict[str, pl.DataType] = {
    "location_id": pl.String,
    "work_order_id": pl.String,
    "vin": pl.String,
    "sr_id": pl.String,
}


def link_service_requests(work_orders: pl.DataFrame, service_requests: pl.DataFrame) -> pl.DataFrame:
    """Current, not deleted work orders -> their VIN's service request (or NULL)."""
    best = (
        service_requests.filter(pl.col("vin").is_not_null())
        .sort(
            [(pl.col("status") == "active"), "created_at", "sr_id"],
            descending=[True, True, True],
            nulls_last=True,
        )
        .unique("vin", keep="first", maintain_order=True)
        .select("vin", "sr_id")
    )
    return (
        work_orders.filter(pl.col("valid_to").is_null() & ~pl.col("deleted"))
        .select("location_id", "work_order_id", "vin")
        .join(best, on="vin", how="left", nulls_equal=False)
        .select(list(LINK_SCHEMA))
        .cast(LINK_SCHEMA)
        .sort("location_id", "work_order_id")
    )


def package_guid(location_id: str, work_order_id: str, sr_id: str) -> str:
    """The package a work order carries for a service request: the same on every attempt."""
    return str(uuid.uuid5(NAMESPACE, f"package:{location_id}:{work_order_id}:{sr_id}"))


def line_guid(package_id: str, n: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"line:{package_id}:{n}"))
