"""Materialization metadata shared by every area: frame previews and a table's column schema."""

from __future__ import annotations

import dagster as dg
import polars as pl
import sqlalchemy as sa


def markdown_table(frame: pl.DataFrame | None, rows: int = 5) -> dg.MetadataValue:
    if frame is None or frame.is_empty():
        return dg.MetadataValue.md("_no rows_")
    head = frame.head(rows).with_columns(pl.all().cast(pl.String).fill_null(""))
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" for row in head.iter_rows()]
    return dg.MetadataValue.md("\n".join(lines))


def column_schema(table: sa.Table) -> dg.TableSchema:
    """The warehouse table's columns as the UI shows them, with keys and nullability."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=str(c.type),
                description=c.doc,
                constraints=dg.TableColumnConstraints(nullable=c.nullable, unique=False),
            )
            for c in table.columns
        ]
    )


def table_metadata(table: sa.Table, name: str | None = None) -> dict[str, object]:
    """Definition-time metadata for an asset that is a warehouse table (or a view `name` with its columns)."""
    return {"dagster/table_name": name or table.name, "dagster/column_schema": column_schema(table)}
