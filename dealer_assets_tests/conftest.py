"""Shared fixtures: a throw-away data root, and a throw-away PostgreSQL database when one is configured.

PostgreSQL tests use `DEALER_TEST_POSTGRES_URL` (a SQLAlchemy URL to an existing database on the server, e.g.
`postgresql+psycopg://postgres@127.0.0.1:5432/test`); each test gets a fresh database created beside it.
Without the variable they skip, except under CI=true, where they fail: CI must run them.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from dealer_assets.config import DealerPaths, default_warehouse_url
from dealer_assets.domain.vin import with_check_digit
from dealer_assets.warehouse.store import dispose_engines

HEADER = "DealerID,VIN,StockNo,SystemCode,Year,Make,Model,Trim,Mileage,DateInStock\n"
SHARED = Path(os.environ.get("DEALER_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared")

BASIC_SETTINGS = """
sources:
  generic:
    layout: generic
    track_stock_no_and_client: {mode: for_days, days: 3}
    auto_close: {mode: after_days, days: 3}
    vehicle_type_mappings:
      - {system_code: U, vehicle_type: Used, service_request_type: Used Recon}
    client_dealer_mappings:
      - {client: Client One, dealer_id: D1, service_request_type: Recon}
      - {client: Client Two, dealer_id: D2, service_request_type: Recon}
"""


def vin(n: int, prefix: str = "1FTFW1E5") -> str:
    """A valid VIN (check digit correct) numbered n."""
    return with_check_digit(f"{prefix}0NFA{n:05d}")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, 1 + day, hour, tzinfo=UTC)


def feed_name(source: str, when: datetime, ext: str = "csv") -> str:
    return f"{source}-{when.strftime('%Y%m%dT%H%M%SZ')}.{ext}"


def feed_body(rows: list[tuple[str, str, str, str]]) -> str:
    return HEADER + "".join(f"{d},{v},{s},{c},2022,FORD,F150,XL,1000,2026-10-01\n" for d, v, s, c in rows)


@dataclass
class DataRoot:
    root: Path
    paths: DealerPaths

    @property
    def incoming(self) -> Path:
        return self.paths.incoming

    def drop(self, name: str, content: str | bytes) -> Path:
        path = self.incoming / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def drop_feed(self, source: str, when: datetime, rows: list[tuple[str, str, str, str]]) -> Path:
        return self.drop(feed_name(source, when), feed_body(rows))

    def settings(self, text: str) -> None:
        self.paths.settings_file.write_text(text)

    def env(self) -> dict[str, str]:
        return {"DEALER_DATA_DIR": str(self.paths.data_dir), "DEALER_SETTINGS_FILE": str(self.paths.settings_file),
                "DEALER_WAREHOUSE_URL": self.paths.warehouse_url,
                "DEALER_HISTORY_START": self.paths.history_start.strftime("%Y-%m-%dT%H:%M:%SZ")}


def make_root(tmp: Path, warehouse_url: str | None = None, settings: str = BASIC_SETTINGS) -> DataRoot:
    data = tmp / "data"
    (data / "config").mkdir(parents=True, exist_ok=True)
    (data / "feeds" / "incoming").mkdir(parents=True, exist_ok=True)
    paths = DealerPaths(data_dir=data, settings_file=data / "config" / "dealer_feeds.yaml",
                        warehouse_url=warehouse_url or default_warehouse_url(data),
                        history_start=datetime(2025, 1, 1, tzinfo=UTC))
    root = DataRoot(tmp, paths)
    root.settings(settings)
    return root


@pytest.fixture
def data_root(tmp_path: Path) -> Iterator[DataRoot]:
    yield make_root(tmp_path)
    dispose_engines()


def _postgres_base_url() -> str | None:
    url = os.environ.get("DEALER_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but DEALER_TEST_POSTGRES_URL is not set: PostgreSQL tests must run in CI")
    return None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    base = _postgres_base_url()
    if base is None:
        pytest.skip("set DEALER_TEST_POSTGRES_URL to run PostgreSQL tests")
    name = f"dealer_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on the embedded SQLite warehouse and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
        dispose_engines()
    else:
        yield request.getfixturevalue("postgres_url")
