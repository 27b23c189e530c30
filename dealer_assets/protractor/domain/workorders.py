"""Fetched work-order JSON -> snapshot rows and line rows, with explicit schemas.

Protractor's times carry no zone: they are the location's local time, converted here to UTC. An ambiguous time
(the repeated hour when DST ends) is read as its first occurrence and a time inside the spring-forward gap is
moved forward by the gap, as Python's `zoneinfo` does with `fold=0`. `0001-01-01T00:00:00` is an empty date.

Protractor publishes no schema; the field names below are the ones public integrations read, and they read
users in two shapes: top-level `ServiceAdvisor` and `Technician` objects (`ID`, `Name`; null when unset), or
text under `Header`. The advisor is the object's `Name`, else `Header.ServiceAdvisor`; the technician is the
object's `Name`, else `Header.Technician`, else the technician of the first line that names one. The objects'
`ID`s are kept beside the names (null in the text shape).
"""

from __future__ import annotations

import io

import polars as pl

TS = pl.Datetime("us", "UTC")
EMPTY_DATE = "0001-01-01T00:00:00"

_LINE = pl.Struct(
    {
        "ID": pl.String,
        "Type": pl.String,
        "Description": pl.String,
        "Quantity": pl.Float64,
        "Price": pl.Float64,
        "Total": pl.Float64,
        "PartNumber": pl.String,
        "Completed": pl.Boolean,
        "Technician": pl.String,
    }
)
_PACKAGE = pl.Struct(
    {
        "ID": pl.String,
        "ServicePackageHeader": pl.Struct({"Title": pl.String, "Description": pl.String}),
        "ServicePackageLines": pl.Struct({"ItemCollection": pl.List(_LINE)}),
    }
)
_USER = pl.Struct({"ID": pl.String, "Name": pl.String})
RAW_SCHEMA: dict[str, pl.DataType] = {
    "ID": pl.String,
    "WorkOrderNumber": pl.Int64,
    "Type": pl.String,
    "WorkflowStage": pl.String,
    "Completed": pl.Boolean,
    "ServiceItem": pl.Struct({"ID": pl.String, "VIN": pl.String}),
    "Contact": pl.Struct({"ID": pl.String}),
    "ServiceAdvisor": _USER,
    "Technician": _USER,
    "Header": pl.Struct(
        {
            "CreationTime": pl.String,
            "LastModifiedTime": pl.String,
            "ServiceAdvisor": pl.String,
            "Technician": pl.String,
        }
    ),
    "ServicePackages": pl.Struct({"ItemCollection": pl.List(_PACKAGE)}),
}

FETCHED_SCHEMA: dict[str, pl.DataType] = {
    "location_id": pl.String,
    "work_order_id": pl.String,
    "work_order_number": pl.Int64,
    "work_order_type": pl.String,
    "vin": pl.String,
    "protractor_stage": pl.String,
    "protractor_service_advisor": pl.String,
    "protractor_technician": pl.String,
    "protractor_service_advisor_id": pl.String,
    "protractor_technician_id": pl.String,
    "created_time": TS,
    "modified_time": TS,
    "completed": pl.Boolean,
    "deleted": pl.Boolean,
    "observed_at": TS,
}
REF_SCHEMA: dict[str, pl.DataType] = {
    "location_id": pl.String,
    "work_order_id": pl.String,
    "service_item_id": pl.String,
    "contact_id": pl.String,
}
"""What a fetched work order references: a `ServiceItem` or `Contact` notification names one of these."""
LINE_FIELDS: dict[str, pl.DataType] = {
    "package_title": pl.String,
    "line_type": pl.String,
    "description": pl.String,
    "quantity": pl.Float64,
    "price": pl.Float64,
    "total": pl.Float64,
    "part_number": pl.String,
    "completed": pl.Boolean,
}
FETCHED_LINE_SCHEMA: dict[str, pl.DataType] = {
    "location_id": pl.String,
    "work_order_id": pl.String,
    "package_id": pl.String,
    "line_id": pl.String,
    **LINE_FIELDS,
}


def read_documents(ndjson: bytes) -> pl.DataFrame:
    """Fetched work orders (one JSON object a line, as the client lands them) with the explicit raw schema."""
    if not ndjson.strip():
        return pl.DataFrame(schema=RAW_SCHEMA | {"observed_at": pl.String})
    return pl.read_ndjson(io.BytesIO(ndjson), schema=RAW_SCHEMA | {"observed_at": pl.String})


def local_to_utc(col: pl.Expr, zone: str) -> pl.Expr:
    """A zone-less local time string of `zone` -> UTC; empty and `0001-01-01` dates are null."""
    text = col.str.strip_chars()
    naive = (
        pl.when(text.is_in([EMPTY_DATE, ""]) | text.str.starts_with("0001-01-01"))
        .then(None)
        .otherwise(text)
        .str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False)
    )
    direct = naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    shifted = (naive + pl.duration(hours=1)).dt.replace_time_zone(
        zone, ambiguous="earliest", non_existent="null"
    )
    return pl.coalesce(direct, shifted).dt.convert_time_zone("UTC").dt.cast_time_unit("us")


def _clean(col: pl.Expr) -> pl.Expr:
    text = col.str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _guid(col: pl.Expr) -> pl.Expr:
    """Protractor's GUIDs are case-insensitive: kept lower-cased."""
    return _clean(col).str.to_lowercase()


def references(raw: pl.DataFrame, location_id: str) -> pl.DataFrame:
    """Fetched work orders of one location -> the service item and contact each references."""
    return (
        raw.filter(pl.col("ID").is_not_null())
        .select(
            pl.lit(location_id).alias("location_id"),
            _guid(pl.col("ID")).alias("work_order_id"),
            _guid(pl.col("ServiceItem").struct.field("ID")).alias("service_item_id"),
            _guid(pl.col("Contact").struct.field("ID")).alias("contact_id"),
        )
        .unique("work_order_id", keep="last", maintain_order=True)
        .cast(REF_SCHEMA)
    )


def _lines_long(raw: pl.LazyFrame) -> pl.LazyFrame:
    return (
        raw.select(
            pl.col("ID").alias("work_order_id"),
            pl.col("ServicePackages").struct.field("ItemCollection").alias("package"),
        )
        .explode("package")
        .drop_nulls("package")
        .with_columns(
            pl.col("package").struct.field("ID").alias("package_id"),
            pl.col("package")
            .struct.field("ServicePackageHeader")
            .struct.field("Title")
            .alias("package_title"),
            pl.col("package")
            .struct.field("ServicePackageLines")
            .struct.field("ItemCollection")
            .alias("line"),
        )
        .explode("line")
        .drop_nulls("line")
        .unnest("line", separator=".")
    )


def flatten(raw: pl.DataFrame, location_id: str, zone: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Fetched work orders of one location -> (one row per fetched work order, one row per line)."""
    lazy = raw.lazy().filter(pl.col("ID").is_not_null())
    lines = _lines_long(lazy)
    first_tech = (
        lines.filter(_clean(pl.col("line.Technician")).is_not_null())
        .group_by("work_order_id")
        .agg(_clean(pl.col("line.Technician")).first().alias("line_technician"))
    )
    header = pl.col("Header")
    snapshots = (
        lazy.select(
            pl.lit(location_id).alias("location_id"),
            pl.col("ID").str.to_lowercase().alias("work_order_id"),
            pl.col("ID").alias("_raw_id"),
            pl.col("WorkOrderNumber").alias("work_order_number"),
            _clean(pl.col("Type")).alias("work_order_type"),
            _clean(pl.col("ServiceItem").struct.field("VIN"))
            .str.to_uppercase()
            .str.replace_all(r"[\s-]", "")
            .alias("vin"),
            _clean(pl.col("WorkflowStage")).alias("protractor_stage"),
            pl.coalesce(
                _clean(pl.col("ServiceAdvisor").struct.field("Name")),
                _clean(header.struct.field("ServiceAdvisor")),
            ).alias("protractor_service_advisor"),
            pl.coalesce(
                _clean(pl.col("Technician").struct.field("Name")), _clean(header.struct.field("Technician"))
            ).alias("_header_technician"),
            _guid(pl.col("ServiceAdvisor").struct.field("ID")).alias("protractor_service_advisor_id"),
            _guid(pl.col("Technician").struct.field("ID")).alias("protractor_technician_id"),
            local_to_utc(header.struct.field("CreationTime"), zone).alias("created_time"),
            local_to_utc(header.struct.field("LastModifiedTime"), zone).alias("modified_time"),
            pl.col("Completed").fill_null(False).alias("completed"),
            pl.lit(False).alias("deleted"),
            pl.col("observed_at").str.to_datetime(time_unit="us", time_zone="UTC").alias("observed_at"),
        )
        .join(first_tech, left_on="_raw_id", right_on="work_order_id", how="left")
        .with_columns(pl.coalesce("_header_technician", "line_technician").alias("protractor_technician"))
        .select(list(FETCHED_SCHEMA))
        .cast(FETCHED_SCHEMA)
    )
    line_rows = lines.select(
        pl.lit(location_id).alias("location_id"),
        pl.col("work_order_id").str.to_lowercase(),
        pl.col("package_id").str.to_lowercase(),
        pl.col("line.ID").str.to_lowercase().alias("line_id"),
        _clean(pl.col("package_title")).alias("package_title"),
        _clean(pl.col("line.Type")).alias("line_type"),
        _clean(pl.col("line.Description")).alias("description"),
        pl.col("line.Quantity").alias("quantity"),
        pl.col("line.Price").alias("price"),
        pl.col("line.Total").alias("total"),
        _clean(pl.col("line.PartNumber")).alias("part_number"),
        pl.col("line.Completed").fill_null(False).alias("completed"),
    ).cast(FETCHED_LINE_SCHEMA)
    snap, line_frame = pl.collect_all([snapshots, line_rows])
    return snap, line_frame


def name_key(col: pl.Expr) -> pl.Expr:
    """The matching key of stages and user names: case, spaces and underscores ignored."""
    return col.str.replace_all(r"[\s_]+", "").str.to_lowercase()


def apply_mappings(
    snapshots: pl.DataFrame, status_map: dict[str, str], user_map: dict[str, str]
) -> pl.DataFrame:
    """Our status and users beside Protractor's; an unmapped value leaves ours null (the check reports it)."""

    def mapped(col: str, mapping: dict[str, str]) -> pl.Expr:
        return name_key(pl.col(col)).replace_strict(mapping, default=None, return_dtype=pl.String)

    return snapshots.with_columns(
        mapped("protractor_stage", status_map).alias("status"),
        mapped("protractor_service_advisor", user_map).alias("service_advisor"),
        mapped("protractor_technician", user_map).alias("technician"),
    )


def unmapped_values(snapshots: pl.DataFrame) -> pl.DataFrame:
    """Per location, the Protractor stages and users with no mapping (kept raw, ours null)."""
    checks = [
        ("status", "protractor_stage", "status"),
        ("user", "protractor_service_advisor", "service_advisor"),
        ("user", "protractor_technician", "technician"),
    ]
    frames = [
        snapshots.filter(pl.col(raw).is_not_null() & pl.col(ours).is_null()).select(
            "location_id", pl.lit(kind).alias("kind"), pl.col(raw).alias("value")
        )
        for kind, raw, ours in checks
    ]
    return pl.concat(frames).unique().sort("location_id", "kind", "value")
