"""Write-back: the package each work order linked to an active service request should carry, what to send to
make it so, and the packages a shop user edited after we wrote them.

The DMS changes a service request's stock number and client only under the tracking rule (inside its window,
while the request is active) and a closed request never changes; so a package needs an update exactly when its
service request, still active, reads otherwise than the package. What the package reads is the work order as
last fetched or, when the write log holds a later answered write, what that write sent. A package whose
fetched text matches none of the texts we ever sent was edited in Protractor: it is reported, never
overwritten.
"""

from __future__ import annotations

import polars as pl

from dealer_assets.protractor.domain.links import line_guid, package_guid
from dealer_assets.protractor.domain.workorders import TS

LINE_TYPE = "Labor"
QUANTITY = 1.0
PLAN_SCHEMA: dict[str, pl.DataType] = {
    "location_id": pl.String,
    "work_order_id": pl.String,
    "sr_id": pl.String,
    "package_id": pl.String,
    "line_id": pl.String,
    "action": pl.String,
    "title": pl.String,
    "description": pl.String,
    "stock_no": pl.String,
    "client": pl.String,
}
WRITE_SCHEMA: dict[str, pl.DataType] = {
    "package_id": pl.String,
    "attempt": pl.Int64,
    **{k: v for k, v in PLAN_SCHEMA.items() if k != "package_id"},
    "attempted_at": TS,
    "answered_at": TS,
    "http_status": pl.Int64,
}
"""The columns of `protractor_write_back_log` that plans read: one row per write sent (or attempted)."""
EDITED_SCHEMA: dict[str, pl.DataType] = {
    "location_id": pl.String,
    "work_order_id": pl.String,
    "work_order_number": pl.Int64,
    "package_id": pl.String,
    "package_title": pl.String,
    "description": pl.String,
}


def _description() -> pl.Expr:
    """'<type> for VIN <vin> (stock <stock>, client <client>)', each detail left out when unknown."""
    details = pl.concat_str(
        [pl.format("stock {}", "stock_no"), pl.format("client {}", "client")],
        separator=", ",
        ignore_nulls=True,
    )
    head = pl.format("{} for VIN {}", pl.col("title"), pl.col("vin"))
    return pl.when(details == "").then(head).otherwise(pl.format("{} ({})", head, details))


def desired_packages(
    links: pl.DataFrame, service_requests: pl.DataFrame, locations: list[str]
) -> pl.DataFrame:
    """One package (one labor line) per work order linked to an active SR, at locations that write back.

    uuid5 has no polars expression, so the GUIDs are computed per row; there is one row per linked work order."""
    active = service_requests.filter(pl.col("status") == "active").select(
        "sr_id", "vin", "stock_no", "client", "service_request_type"
    )
    return (
        links.filter(pl.col("location_id").is_in(locations) & pl.col("sr_id").is_not_null())
        .join(active, on=["sr_id", "vin"], how="inner")
        .with_columns(
            pl.struct("location_id", "work_order_id", "sr_id")
            .map_elements(lambda r: package_guid(r["location_id"], r["work_order_id"], r["sr_id"]), pl.String)
            .alias("package_id"),
            pl.col("service_request_type").fill_null("Service request").alias("title"),
        )
        .with_columns(
            pl.col("package_id").map_elements(lambda p: line_guid(p, 1), pl.String).alias("line_id"),
            _description().alias("description"),
            pl.lit(None, pl.String).alias("action"),
        )
        .select(list(PLAN_SCHEMA))
        .cast(PLAN_SCHEMA)
    )


def _edited_lines(log: pl.DataFrame, current_lines: pl.DataFrame) -> pl.DataFrame:
    """Our lines as last fetched whose text matches none we sent."""
    ours = log.filter(pl.col("description").is_not_null()).select("line_id", "title", "description").unique()
    seen = current_lines.filter(pl.col("valid_to").is_null()).join(
        ours.select("line_id"), on="line_id", how="semi"
    )
    as_sent = seen.filter((pl.col("line_type") == LINE_TYPE) & (pl.col("quantity") == QUANTITY)).join(
        ours,
        left_on=["line_id", "package_title", "description"],
        right_on=["line_id", "title", "description"],
    )
    return seen.join(as_sent.select("line_id").unique(), on="line_id", how="anti")


def edited_packages(log: pl.DataFrame, current_lines: pl.DataFrame, snapshots: pl.DataFrame) -> pl.DataFrame:
    """The packages we wrote that someone edited in Protractor since, with their work order's number."""
    numbers = snapshots.filter(pl.col("valid_to").is_null()).select(
        "location_id", "work_order_id", "work_order_number"
    )
    return (
        _edited_lines(log, current_lines)
        .join(numbers, on=["location_id", "work_order_id"], how="left")
        .select(list(EDITED_SCHEMA))
        .cast(EDITED_SCHEMA)
        .sort("location_id", "work_order_number")
    )


def plan_write_back(
    links: pl.DataFrame,
    service_requests: pl.DataFrame,
    current_lines: pl.DataFrame,
    log: pl.DataFrame,
    locations: list[str],
) -> pl.DataFrame:
    """The packages to send: `add` what the work order does not carry, `update` what reads otherwise than its
    active SR; nothing for a package edited in Protractor, nor for one that already reads as planned."""
    answered = (
        log.filter(pl.col("answered_at").is_not_null() & (pl.col("http_status") < 400))
        .sort("attempt")
        .group_by("package_id")
        .agg(pl.col("title").last().alias("sent_title"), pl.col("description").last().alias("sent_text"))
    )
    seen = current_lines.filter(pl.col("valid_to").is_null()).select(
        "line_id", pl.col("package_title").alias("seen_title"), pl.col("description").alias("seen_text")
    )
    edited = _edited_lines(log, current_lines).select("line_id")
    reads_as_planned = (
        (pl.col("title") == pl.col("sent_title")) & (pl.col("description") == pl.col("sent_text"))
    ).fill_null(False) | (
        (pl.col("title") == pl.col("seen_title")) & (pl.col("description") == pl.col("seen_text"))
    ).fill_null(False)
    unknown = pl.col("sent_text").is_null() & pl.col("seen_text").is_null()
    return (
        desired_packages(links, service_requests, locations)
        .join(edited, on="line_id", how="anti")
        .join(answered, on="package_id", how="left")
        .join(seen.unique("line_id"), on="line_id", how="left")
        .filter(~reads_as_planned)
        .with_columns(pl.when(unknown).then(pl.lit("add")).otherwise(pl.lit("update")).alias("action"))
        .select(list(PLAN_SCHEMA))
        .sort("location_id", "work_order_id")
    )


def package_payload(row: dict) -> dict:
    """The body of `POST /WorkOrder/{id}` adding or updating our package: writable fields only (no ID, number or
    header of the work order). Protractor upserts packages and lines by ID, so both send the same body."""
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
                                "Type": LINE_TYPE,
                                "Description": row["description"],
                                "Quantity": QUANTITY,
                            }
                        ]
                    },
                }
            ]
        }
    }
