"""Fixtures of the Xtime tests: a fake Xtime on a loopback port, settings that point at it, a warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from dealer_assets.core.warehouse import engine_for
from dealer_assets.xtime.client import XtimeClient
from dealer_assets.xtime.fake import FakeDealership, FakeState, FakeXtimeServer
from dealer_assets.xtime.settings import XtimeSettings, settings_from_document

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CREDENTIALS = {
    "XTIME_CLIENT_ID": "test-client",
    "XTIME_CLIENT_SECRET": "s3cr3t-value-xyz",
    "XTIME_API_KEY": "api-key-value-abc",
}


def settings_document(base_url: str) -> dict:
    return {
        "xtime": {
            "base_url": base_url,
            "token_url": f"{base_url}/token",
            "client_id_env": "XTIME_CLIENT_ID",
            "client_secret_env": "XTIME_CLIENT_SECRET",
            "api_key_env": "XTIME_API_KEY",
            "dealerships": {
                "d100": {
                    "dealer_code": "X100",
                    "dms_dealer_id": "D100",
                    "time_zone": "America/Los_Angeles",
                    "invitation": {
                        "code": "AA11",
                        "issued_at": "2026-11-01T15:00:00Z",
                        "completed_at": "2026-11-02T15:00:00Z",
                        "confirmed_at": "2026-11-03T15:00:00Z",
                    },
                },
                "d200": {
                    "dealer_code": "X200",
                    "dms_dealer_id": "D200",
                    "time_zone": "America/Denver",
                    "opcode": "DataClover Appt",
                    "invitation": {
                        "code": "BB22",
                        "issued_at": "2026-11-01T15:00:00Z",
                        "completed_at": "2026-11-02T15:00:00Z",
                        "confirmed_at": "2026-11-03T15:00:00Z",
                    },
                },
                "d300": {
                    "dealer_code": "X300",
                    "time_zone": "America/Chicago",
                    "invitation": {"code": "CC33", "issued_at": "2026-11-25T15:00:00Z"},
                },
            },
            "book_service_request_types": ["Mechanical Recon"],
        }
    }


def fake_dealerships() -> dict[str, FakeDealership]:
    return {
        "X100": FakeDealership("X100", "America/Los_Angeles", closed_weekdays=()),
        "X200": FakeDealership("X200", "America/Denver"),
        "X300": FakeDealership("X300", "America/Chicago"),
    }


@pytest.fixture
def fake() -> Iterator[FakeXtimeServer]:
    state = FakeState(
        fake_dealerships(),
        client_id=CREDENTIALS["XTIME_CLIENT_ID"],
        client_secret=CREDENTIALS["XTIME_CLIENT_SECRET"],
        api_key=CREDENTIALS["XTIME_API_KEY"],
        rate_limit=None,
    )
    with FakeXtimeServer(state) as server:
        yield server


@pytest.fixture
def settings(fake: FakeXtimeServer) -> XtimeSettings:
    return settings_from_document(settings_document(fake.url), "test.yaml")


def make_client(settings: XtimeSettings, **kw) -> XtimeClient:
    options = {"timeout_seconds": 0.5, "backoff_seconds": 0.05, "max_backoff_seconds": 2.0} | kw
    return XtimeClient.from_settings(settings, CREDENTIALS, **options)


@pytest.fixture
def client(settings: XtimeSettings) -> Iterator[XtimeClient]:
    c = make_client(settings)
    yield c
    c.close()


@pytest.fixture
def engine(warehouse_url: str) -> sa.Engine:
    """The warehouse as the area uses it (migrated by Alembic), on SQLite and on PostgreSQL."""
    return engine_for(warehouse_url)


def control(server: FakeXtimeServer, path: str, body: dict | None = None) -> dict:
    if body is None and path == "stats":
        return httpx.get(f"{server.url}/_control/stats").json()
    return httpx.post(f"{server.url}/_control/{path}", json=body or {}).json()
