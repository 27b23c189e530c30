"""Work orders linked to DMS service requests by VIN, and the write-back plan derived from those links.

A VIN's service request is its active one, else its most recently created one (ties: the higher `sr_id`, so
the choice never depends on row order); NULL when the VIN has none. Write-back GUIDs are uuid5 of our ids, so a
package is named the same on every attempt and Protractor (which upserts by ID) never receives it twice.
"""

from __future__ import annotations

import uuid

import polars as pl

from dealer_assets.core.service_requests import SERVICE_REQUEST_COLUMNS

NAMESPACE = uuid.UUID("6f1c3a52-5d0e-4c57-9a4e-2f7b8e1d9c40")
SR_SCHEMA: dict[str, pl.DataType] = {
    c: SERVICE_REQUEST_COLUMNS[c]
    for c in (
        "sr_id",
        "source",
        "vin",
        "dealer_id",
        "stock_no",
        "service_request_type",
        "status",
        "created_at",
    )
}
"""The columns of the DMS `service_requests` that links read."""
LINK_SCHEMA: dict[str, pl.DataType] = {
    "location_id": pl.String,
    "work_order_id": pl.String,
    "vin": pl.String,
    "sr_id": pl.String,
}
PLAN_SCHEMA: dict[str, pl.DataType] = {
    "location_id": pl.String,
    "work_order_id": pl.String,
    "sr_id": pl.String,
    "package_id": pl.String,
    "line_id": pl.String,
    "title": pl.String,
    "description": pl.String,
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
    return str(uuid.uuid5(NAMESPACE, f"package:{location_id}:{work_order_id}:{sr_id}"))


def line_guid(package_id: str, n: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"line:{package_id}:{n}"))


def plan_write_back(
    links: pl.DataFrame,
    service_requests: pl.DataFrame,
    current_lines: pl.DataFrame,
    locations: list[str],
) -> pl.DataFrame:
    """One package (one labor line) per work order linked to an active SR, at locations that write back,
    unless the work order as last fetched already carries that package.

    uuid5 has no polars expression, so the GUIDs are computed per row; there is one row per linked work order."""
    active = service_requests.filter(pl.col("status") == "active").select(
        "sr_id", "vin", "stock_no", "service_request_type"
    )
    plan = (
        links.filter(pl.col("location_id").is_in(locations) & pl.col("sr_id").is_not_null())
        .join(active, on=["sr_id", "vin"], how="inner")
        .with_columns(
            pl.struct("location_id", "work_order_id", "sr_id")
            .map_elements(lambda r: package_guid(r["location_id"], r["work_order_id"], r["sr_id"]), pl.String)
            .alias("package_id")
        )
        .with_columns(
            pl.col("package_id").map_elements(lambda p: line_guid(p, 1), pl.String).alias("line_id"),
            pl.col("service_request_type").fill_null("Service request").alias("title"),
            pl.format(
                "{} for VIN {}{}",
                pl.col("service_request_type").fill_null("Service request"),
                "vin",
                pl.when(pl.col("stock_no").is_not_null())
                .then(pl.format(" (stock {})", "stock_no"))
                .otherwise(pl.lit("")),
            ).alias("description"),
        )
    )
    present = current_lines.filter(pl.col("valid_to").is_null()).select(
        "location_id", "work_order_id", "package_id"
    )
    return (
        plan.join(present.unique(), on=["location_id", "work_order_id", "package_id"], how="anti")
        .select(list(PLAN_SCHEMA))
        .cast(PLAN_SCHEMA)
        .sort("location_id", "work_order_id")
    )


def package_payload(row: dict) -> dict:
    """The body of `POST /WorkOrder/{id}` adding one package: writable fields only (no ID, number, header)."""
    return {
        "ServicePackages": {
            "ItemCollection": [
                {
                    "ID": row["package_id"],
                    "ServicePackageHeader": {"Title": row["title"], "Description": row["description"]},
                    "ServicePackageLines": {
                        "ItemCollection": [
                            {
                                "ID": row["line_id"],
                                "Type": "Labor",
                                "Description": row["description"],
                                "Quantity": 1.0,
                            }
                        ]
                    },
                }
            ]
        }
    }
