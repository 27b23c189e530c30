"""Helpers the Xtime tests share: credentials, settings pointing at a fake, clients, the fake's control API."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from dealer_assets.xtime.client import XtimeClient
from dealer_assets.xtime.defs.resources import XtimeResource
from dealer_assets.xtime.fake import FakeDealership, FakeState, FakeXtimeServer
from dealer_assets.xtime.settings import XtimeSettings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CREDENTIALS = {
    "XTIME_CLIENT_ID": "test-client",
    "XTIME_CLIENT_SECRET": "s3cr3t-value-xyz",
    "XTIME_API_KEY": "api-key-value-abc",
}
REQUEST = {
    "request_id": "web-1",
    "dealership": "d100",
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann@example.com",
    "phone": "555-201-3344",
    "vin": "1FTFW1E50NFA00001",
    "earliest": "2026-12-01T09:00",
}
"""A request line for dealership d100 (confirmed, opcode published), as a request file holds it."""


def settings_document(base_url: str) -> dict:
    """d100 and d200 confirmed (d200's opcode is not in its catalog), d300 invited on 2026-11-25."""
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


def fake_state(rate_limit: float | None = None, clock: Callable[[], datetime] = lambda: NOW) -> FakeState:
    """The fake's clock is NOW, the tests' booking clock: it refuses a slot that has begun by then."""
    return FakeState(fake_dealerships(), *CREDENTIALS.values(), rate_limit=rate_limit, clock=clock)


def days_ahead(days: int = 3, at: str = "09:00") -> str:
    """A local time `days` days after today, for requests booked under the wall clock (assets, commands)."""
    return f"{(datetime.now(UTC) + timedelta(days=days)).date().isoformat()}T{at}"


def make_resource(settings: XtimeSettings, **options) -> XtimeResource:
    """The resource as the CLI builds it, with short timeouts and backoffs so that retries are quick."""
    quick = {"timeout_seconds": 0.5, "backoff_initial_seconds": 0.05, "backoff_max_seconds": 2.0} | options
    return XtimeResource.from_environment(settings, CREDENTIALS, **quick)


def make_client(
    settings: XtimeSettings, clock: Callable[[], float] = time.monotonic, **options
) -> XtimeClient:
    return make_resource(settings, **options).client(clock)


def control(server: FakeXtimeServer, path: str, body: dict | None = None) -> dict:
    """The fake's `/_control/<path>`: `stats` is read, anything else posted (e.g. `failures` to inject)."""
    if body is None and path == "stats":
        return httpx.get(f"{server.url}/_control/stats").json()
    return httpx.post(f"{server.url}/_control/{path}", json=body or {}).json()
