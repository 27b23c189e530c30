"""Shared fixtures: a throw-away data root, and a throw-away PostgreSQL database when one is configured.

PostgreSQL tests use `DEALER_TEST_POSTGRES_URL` (a SQLAlchemy URL to an existing database on the server, e.g.
`postgresql+psycopg://postgres@127.0.0.1:5432/test`); each test gets a fresh database created beside it.
Without the variable they skip, except under CI=true, where they fail: CI must run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from dealer_assets.core.warehouse import dispose_engines
from dealer_assets_tests.support import DataRoot, Production, dagster_pg_env, make_root, production_home


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
            conn.exec_driver_sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
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


# --- shared by the Dagster, replay, production and celery tests
@pytest.fixture
def pg_databases(postgres_url: str) -> Iterator[Callable[[str], str]]:
    """More fresh databases beside `postgres_url` (warehouses, reference runs), dropped afterwards."""
    base = sa.engine.make_url(postgres_url)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def new(tag: str) -> str:
        name = f"{base.database}_{tag}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        created.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    try:
        yield new
    finally:
        dispose_engines()
        with admin.connect() as conn:
            for name in created:
                conn.exec_driver_sql(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                )
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@pytest.fixture
def production(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Production]:
    """deploy/dagster.yaml in a temp DAGSTER_HOME, its DAGSTER_PG_* pointing at the test's fresh database."""
    env = {**dagster_pg_env(postgres_url), "DAGSTER_HOME": str(production_home(tmp_path / "dagster_home"))}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield Production(Path(env["DAGSTER_HOME"]), env)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `postgres` mark by what a test needs (its fixtures), so `pytest -m "not slow and not e2e and not
    postgres"` is the fast set; `slow` and `e2e` are on the tests themselves.

    Under pytest-xdist (`-n`), the end-to-end tests come first, then the slow ones: they take from seconds to
    minutes each, and handed out first they run beside each other while the short tests fill in behind them,
    instead of one long test starting last and running alone at the end. Every worker sorts the same way.
    """
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        if "postgres_url" in fixtures or (callspec and callspec.params.get("warehouse_url") == "postgresql"):
            item.add_marker(pytest.mark.postgres)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(
            key=lambda item: (item.get_closest_marker("e2e") is None, item.get_closest_marker("slow") is None)
        )
