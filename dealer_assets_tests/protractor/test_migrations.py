"""Protractor's Alembic revisions create exactly the tables `tables.py` declares, on a branch of its own."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dealer_assets.core.warehouse import engine_for, metadata
from dealer_assets.protractor import tables


def test_migration_matches_declared_tables(warehouse_url: str) -> None:
    engine = engine_for(warehouse_url)
    ours = {name for name, table in metadata.tables.items() if table in vars(tables).values()}
    assert {
        "protractor_events",
        "work_order_snapshots",
        "work_order_lines",
        "service_request_work_orders",
        "protractor_write_back_log",
        "protractor_work_order_refs",
    } <= ours
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        heads = {row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
        assert ours <= set(sa.inspect(conn).get_table_names())
    assert [d for d in diff if any(name in repr(d) for name in ours)] == []
    assert "protractor_0002" in heads
