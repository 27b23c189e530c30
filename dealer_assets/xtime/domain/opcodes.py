"""Which catalog service a dealership's `opcode` setting means, and so which value a booking sends.

The Xtime guide has a dealership create an opcode whose value is a code and whose name is, e.g., "DataClover
Appt", and most installations have "Tell Us More": an operator may write either. The setting is the opcode value
when one matches exactly, or else the one service whose name matches ignoring case and surrounding spaces. A
name shared by two services is ambiguous: nothing is booked until the setting names a value.
"""

from __future__ import annotations

import polars as pl

CATALOG_SCHEMA: dict[str, pl.DataType] = {
    "dealership": pl.String(),
    "opcode": pl.String(),
    "name": pl.String(),
}
OPCODE_SCHEMA: dict[str, pl.DataType] = {
    "dealership": pl.String(),
    "opcode": pl.String(),
    "send_opcode": pl.String(),
    "matched_by": pl.String(),
    "same_name": pl.Int64(),
    "services": pl.String(),
    "problem": pl.String(),
}


def _folded(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().str.to_lowercase()


def resolve_opcodes(dealerships: pl.DataFrame, catalog: pl.DataFrame) -> pl.DataFrame:
    """Per dealership (`dealership`, `opcode` as set): the value to send (`send_opcode`, null when none),
    `matched_by` (`value` or `name`), how many services bear the name (`same_name`), those services as
    `'name' (value)` text, and the `problem` a request waits on."""
    catalog = catalog.select(list(CATALOG_SCHEMA)).cast(CATALOG_SCHEMA)
    wanted = dealerships.select("dealership", "opcode").with_columns(_folded("opcode").alias("_folded"))
    values = catalog.select("dealership", "opcode", pl.col("opcode").alias("_by_value"))
    names = (
        catalog.filter(pl.col("name").is_not_null())
        .with_columns(_folded("name").alias("_folded"))
        .sort("dealership", "opcode")
        .group_by("dealership", "_folded", maintain_order=True)
        .agg(
            pl.col("opcode").alias("_by_name"),
            pl.format("'{}' ({})", "name", "opcode").str.join(", ").alias("services"),
        )
    )
    same_name = pl.col("_by_name").list.len().fill_null(0)
    send = (
        pl.when(pl.col("_by_value").is_not_null())
        .then(pl.col("_by_value"))
        .when(same_name == 1)
        .then(pl.col("_by_name").list.first())
    )
    matched_by = (
        pl.when(pl.col("_by_value").is_not_null())
        .then(pl.lit("value"))
        .when(same_name == 1)
        .then(pl.lit("name"))
    )
    problem = (
        pl.when(send.is_not_null())
        .then(pl.lit(None, pl.String()))
        .when(same_name > 1)
        .then(
            pl.format(
                "opcode '{}' names {} services in the catalog of dealership {}: {}; set the opcode to one of "
                "their values",
                "opcode",
                same_name,
                "dealership",
                "services",
            )
        )
        .otherwise(pl.format("opcode '{}' is not in the catalog of dealership {}", "opcode", "dealership"))
    )
    return (
        wanted.join(values, on=["dealership", "opcode"], how="left")
        .join(names, on=["dealership", "_folded"], how="left")
        .select(
            "dealership",
            "opcode",
            send.alias("send_opcode"),
            matched_by.alias("matched_by"),
            same_name.alias("same_name"),
            "services",
            problem.alias("problem"),
        )
        .cast(OPCODE_SCHEMA)
    )
