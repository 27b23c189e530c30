"""Every column of every warehouse table has a description, and the UI's column schemas carry it (issue 22)."""

from __future__ import annotations

import os
from unittest import mock

import dagster as dg
import sqlalchemy as sa

from dealer_assets.core.asset_metadata import column_schema
from dealer_assets.core.warehouse import metadata
from dealer_assets.definitions import build_definitions
from dealer_assets.dms import tables as dms_tables
from dealer_assets.protractor import tables as protractor_tables
from dealer_assets.xtime import tables as xtime_tables


def test_every_warehouse_column_has_a_description() -> None:
    for area in (dms_tables, protractor_tables, xtime_tables):
        declared = [v for v in vars(area).values() if isinstance(v, sa.Table)]
        assert declared and all(metadata.tables[t.name] is t for t in declared), area.__name__
    missing = [
        f"{table.name}.{column.name}"
        for table in metadata.tables.values()
        for column in table.columns
        if not (column.doc or "").strip()
    ]
    assert missing == []
    for table in metadata.tables.values():
        shown = [(c.name, c.description) for c in column_schema(table).columns]
        assert shown == [(c.name, c.doc) for c in table.columns], table.name


def test_every_asset_column_schema_has_descriptions() -> None:
    with mock.patch.dict(os.environ):  # loading the development env fills os.environ: leave it as it was
        specs = build_definitions().resolve_all_asset_specs()
    schemas = {
        spec.key.to_user_string(): value
        for spec in specs
        if (value := spec.metadata.get("dagster/column_schema")) is not None
    }
    assert schemas, "no asset declares dagster/column_schema"
    undescribed = []
    for key, value in schemas.items():
        schema = value.schema if isinstance(value, dg.TableSchemaMetadataValue) else value
        assert isinstance(schema, dg.TableSchema), key
        assert schema.columns, key
        undescribed += [f"{key}: {c.name}" for c in schema.columns if not (c.description or "").strip()]
    assert undescribed == []
