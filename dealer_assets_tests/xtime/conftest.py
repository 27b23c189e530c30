"""Fixtures of the Xtime tests: a fake Xtime on a loopback port, settings that point at it, a client, a
warehouse. Helpers are in `support.py`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from dealer_assets.core.warehouse import engine_for
from dealer_assets.xtime.client import XtimeClient
from dealer_assets.xtime.fake import FakeXtimeServer
from dealer_assets.xtime.settings import XtimeSettings, settings_from_document
from dealer_assets_tests.xtime.support import fake_state, make_client, settings_document


@pytest.fixture
def fake() -> Iterator[FakeXtimeServer]:
    with FakeXtimeServer(fake_state()) as server:
        yield server


@pytest.fixture
def settings(fake: FakeXtimeServer) -> XtimeSettings:
    return settings_from_document(settings_document(fake.url), "test.yaml")


@pytest.fixture
def client(settings: XtimeSettings) -> Iterator[XtimeClient]:
    with make_client(settings) as c:
        yield c


@pytest.fixture
def engine(warehouse_url: str) -> sa.Engine:
    """The warehouse as the area uses it (migrated by Alembic), on SQLite and on PostgreSQL."""
    return engine_for(warehouse_url)
