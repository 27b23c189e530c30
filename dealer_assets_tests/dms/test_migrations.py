"""The schema comes from Alembic: a fresh warehouse equals the tables' declarations, a warehouse made before
migrations is upgraded in place, and processes starting together migrate once."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import polars as pl
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dealer_assets.core.warehouse import dispose_engines, engine_for, metadata, read_frame
from dealer_assets.dms import tables as t
from dealer_assets.dms.domain.vehicles import TS

NOW = datetime(2026, 11, 1, tzinfo=UTC)
LATER_THAN_LEGACY = {"guard_decisions", "service_request_state", "service_request_events"}
"""Tables that later revisions add or reshape: a warehouse made before migrations had them otherwise or not."""
EARLIER = datetime(2026, 10, 31, tzinfo=UTC)


def _legacy_service_requests() -> sa.Table:
    """`service_requests` as a table, as it was before revision dms_0003 made it a view."""
    table = t.service_request_state.to_metadata(sa.MetaData(), name="service_requests")
    sa.Index("ix_service_requests_source", table.c.source)
    return table


def _legacy_events() -> sa.Table:
    """`service_request_events` as it was before revision dms_0004 keyed it by feed."""
    return sa.Table(
        "service_request_events",
        sa.MetaData(),
        sa.Column("sr_id", sa.String(96), primary_key=True),
        sa.Column("event", sa.String(24), primary_key=True),
        sa.Column("feed_as_of", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False, index=True),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("feed_file", sa.Text, nullable=False),
        sa.Column("details", sa.Text),
    )


def _sr(sr_id: str, status: str, last_seen_at: datetime) -> dict:
    return {
        "sr_id": sr_id,
        "source": "generic",
        "vin": sr_id[-17:],
        "dealer_id": "D1",
        "client": "Client One",
        "status": status,
        "created_at": EARLIER,
        "updated_at": EARLIER,
        "last_seen_at": last_seen_at,
    }


def _heads(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}


def test_fresh_warehouse_matches_the_declared_tables(warehouse_url: str) -> None:
    engine = engine_for(warehouse_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert any(h.startswith("dms_") for h in _heads(engine))


def test_warehouse_made_before_migrations_upgrades_in_place(warehouse_url: str) -> None:
    legacy = sa.create_engine(warehouse_url)
    with legacy.begin() as conn:
        metadata.create_all(
            conn,
            tables=[
                v for v in vars(t).values() if isinstance(v, sa.Table) and v.name not in LATER_THAN_LEGACY
            ],
        )
        legacy_events = _legacy_events()
        legacy_events.create(conn)
        conn.execute(
            legacy_events.insert(),
            [
                {"sr_id": f"generic-{n}", "event": "created", "feed_as_of": when, "source": "generic"}
                | {"vin": f"{n:017d}", "feed_file": "f.csv", "details": "{}"}
                for n, when in ((2, EARLIER), (1, NOW), (3, EARLIER))
            ],
        )
        legacy_srs = _legacy_service_requests()
        legacy_srs.create(conn)
        conn.execute(
            legacy_srs.insert(),
            [
                _sr("generic-SEEN0000000000001", "active", NOW),
                _sr("generic-GONE0000000000002", "active", EARLIER),
            ],
        )
        conn.execute(
            t.applied_feeds.insert(),
            [
                {
                    "source": "generic",
                    "feed_as_of": when,
                    "feed_file": f"{i}.csv",
                    "sha256": "0" * 64,
                    **dict.fromkeys(("vehicles", "created", "updated", "closed", "held", "skipped"), 1),
                }
                for i, when in enumerate((EARLIER, NOW))
            ],
        )
        conn.exec_driver_sql("CREATE TABLE dealer_assets_schema (version INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO dealer_assets_schema (version) VALUES (1)")
        conn.execute(
            t.late_feeds.insert().values(
                source="generic", feed_as_of=NOW, feed_file="f.csv", applied_through=NOW
            )
        )
    legacy.dispose()
    engine = engine_for(warehouse_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.late_feeds)).scalar() == 1
        assert "dealer_assets_schema" not in sa.inspect(conn).get_table_names()
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert sa.inspect(conn).get_pk_constraint("service_request_events")["constrained_columns"] == [
            "source",
            "feed_as_of",
            "sr_id",
            "event",
        ]
        events = read_frame(
            conn,
            "SELECT sr_id, feed_as_of FROM service_request_events ORDER BY sr_id",
            {"sr_id": pl.String, "feed_as_of": TS},
        )
        assert events.rows() == [("generic-1", NOW), ("generic-2", EARLIER), ("generic-3", EARLIER)]
        stored = {
            sr_id: seen
            for sr_id, seen in conn.execute(
                sa.select(t.service_request_state.c.sr_id, t.service_request_state.c.last_seen_at)
            )
        }
        seen = read_frame(
            conn,
            "SELECT sr_id, last_seen_at FROM service_requests ORDER BY sr_id",
            {"sr_id": pl.String, "last_seen_at": TS},
        )
    assert stored["generic-SEEN0000000000001"] is None, "seen by the newest feed: stored without last_seen_at"
    assert seen.rows() == [("generic-GONE0000000000002", EARLIER), ("generic-SEEN0000000000001", NOW)]
    assert any(h.startswith("dms_") for h in _heads(engine))


@pytest.mark.slow
def test_processes_starting_together_migrate_once(warehouse_url: str) -> None:
    code = "import sys; from dealer_assets.core.warehouse import engine_for; engine_for(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, warehouse_url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    dispose_engines()
    engine = engine_for(warehouse_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
