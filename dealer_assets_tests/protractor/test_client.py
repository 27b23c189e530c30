"""The API client against the fake over loopback HTTP: signature, paging, retries, Retry-After, limits."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest
from pyrate_limiter import Rate

from dealer_assets.core.errors import ConfigError
from dealer_assets.core.http import window
from dealer_assets.protractor.client import (
    WINDOW_MARGIN,
    ProtractorClient,
    ProtractorError,
    ProtractorLocation,
    authentication,
)
from dealer_assets.protractor.defs.resources import ProtractorResource
from dealer_assets.protractor.fake import Account, FakeProtractor, sample_vehicles
from dealer_assets.protractor.settings import load_protractor_settings
from dealer_assets_tests.protractor.support import NORTH


def test_authentication_header_matches_a_known_vector() -> None:
    assert authentication(*NORTH) == "T0rBk/NPP/cJjKCYTgWoQFA4Wu8="


def _client(fake: FakeProtractor, api_key: str = NORTH[1], **kw: float) -> ProtractorClient:
    options = {"backoff_initial_seconds": 0.05, "backoff_max_seconds": 2.0, "timeout_seconds": 2.0} | kw
    config = ProtractorLocation(connection_id=NORTH[0], api_key=api_key, **options)
    return ProtractorClient("north", fake.base_url, config)


def _faults(fake: FakeProtractor, *faults: tuple) -> None:
    httpx.post(
        fake.base_url + "/_control/faults", json={"faults": [list(f) for f in faults]}
    ).raise_for_status()


def _stats(fake: FakeProtractor) -> dict:
    return httpx.get(fake.base_url + "/_control/stats").json()


@pytest.fixture
def big_fake() -> Iterator[FakeProtractor]:
    north = Account("north", *NORTH, "America/Chicago")
    vehicles = sample_vehicles()
    north.shop.seed(vehicles * 5, datetime(2026, 11, 1, 7), 250, seed=3)
    with FakeProtractor([north]) as fake:
        yield fake


def test_headers_checked_and_wrong_key_fails_without_leaking(fake: FakeProtractor) -> None:
    with _client(fake, api_key="0" * 32) as c:
        with pytest.raises(ProtractorError) as err:
            c.list_changed(date(2026, 11, 1), date(2026, 11, 30))
    assert "401" in str(err.value) and "0" * 32 not in str(err.value) and NORTH[1] not in str(err.value)
    assert _stats(fake)["_unauthorized"] == 1


def test_paging_until_short_page(big_fake: FakeProtractor) -> None:
    with _client(big_fake, requests_per_second=50, requests_per_minute=1000) as c:
        items = c.list_changed(date(2026, 1, 1), date(2026, 12, 31))
    assert len(items) == 250 and len({i["ID"] for i in items}) == 250
    assert all("ServicePackages" not in i for i in items), "the listing is thin"
    assert _stats(big_fake)["north"]["requests"] == 3  # 100 + 100 + 50


@pytest.mark.slow
def test_retries_through_429_500_and_timeouts_honouring_retry_after(fake: FakeProtractor, caplog) -> None:
    wo = next(iter(fake.accounts["north"].shop.orders))
    _faults(fake, ("429", 1), ("500",), ("timeout", 3.0), ("500",))
    caplog.set_level(logging.WARNING)
    with _client(fake) as c:
        started = time.monotonic()
        doc = c.get_work_order(wo)
        elapsed = time.monotonic() - started
    assert doc["ID"] == wo
    assert elapsed >= 1.0 + 2.0, "waited the Retry-After second and the 2 s timeout"
    seen = _stats(fake)
    assert seen["north"]["requests"] == 5, "429, 500, timeout, 500, then the answer"
    assert seen["_statuses"]["429"] == 1 and seen["_statuses"]["500"] == 2
    assert NORTH[1] not in caplog.text and NORTH[0] not in caplog.text and "north" in caplog.text


def test_gives_up_after_max_attempts(fake: FakeProtractor) -> None:
    _faults(fake, *[("500",)] * 3)
    with _client(fake, max_attempts=3) as c, pytest.raises(ProtractorError, match="HTTP 500 after retries"):
        c.get_work_order(next(iter(fake.accounts["north"].shop.orders)))


def test_missing_work_order_is_none(fake: FakeProtractor) -> None:
    with _client(fake) as c:
        assert c.get_work_order("00000000-0000-4000-8000-000000000000") is None


def test_each_limit_is_kept_over_a_window_a_tenth_longer_than_protractors() -> None:
    config = ProtractorLocation(
        connection_id=NORTH[0], api_key=NORTH[1], requests_per_second=5, requests_per_minute=30
    )
    assert [(r.limit, r.interval) for r in config.rates()] == [(5, 1_100), (30, 66_000)]


class ShortMinute(ProtractorLocation):
    """The per-minute budget kept over 4 s instead of 60 s: the same limiter, seen to bind in seconds."""

    def rates(self) -> list[Rate]:
        per_second, per_minute = super().rates()
        return [per_second, Rate(per_minute.limit, window(4_000, WINDOW_MARGIN))]


@pytest.mark.slow
def test_limits_never_exceeded_measured_at_the_fake(big_fake: FakeProtractor) -> None:
    ids = list(big_fake.accounts["north"].shop.orders)[:20]
    _faults(big_fake, *[("slow", 0.7)] * 9)
    config = ShortMinute(
        connection_id=NORTH[0],
        api_key=NORTH[1],
        requests_per_second=5,
        requests_per_minute=8,
        max_concurrent=3,
    )
    with ProtractorClient("north", big_fake.base_url, config) as c:
        started = time.monotonic()
        docs = c.fetch_many(ids)
        elapsed = time.monotonic() - started
    assert [d["ID"] for _, d in docs] == ids
    seen = httpx.get(big_fake.base_url + "/_control/stats", params={"window": 4.0}).json()["north"]
    assert seen["requests"] == 20
    assert seen["max_per_second"] <= 5 and seen["max_per_window"] <= 8 and seen["max_in_flight"] <= 3
    assert seen["max_in_flight"] == 3, "the slow answers did overlap"
    assert elapsed >= 8.0, "20 requests at 8 per 4 s wait out two windows"


def test_the_fakes_request_log_refuses_a_window_that_is_not_a_positive_number(fake: FakeProtractor) -> None:
    for bad in ("abc", "0", "-4", "nan"):
        answer = httpx.get(fake.base_url + "/_control/stats", params={"window": bad})
        assert answer.status_code == 400 and "window" in answer.json()["Message"], bad
    with _client(fake) as c:
        c.list_changed(date(2026, 11, 1), date(2026, 11, 30))
    seen = httpx.get(fake.base_url + "/_control/stats", params={"window": 2}).json()["north"]
    assert seen["max_per_window"] >= 1


def test_resource_from_environment_reads_the_variables_the_settings_name(
    fake: FakeProtractor, settings_file: Path, keys: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_protractor_settings(settings_file)
    with ProtractorResource.from_environment(settings).client("north") as c:
        assert len(c.list_changed(date(2026, 11, 1), date(2026, 11, 30))) > 0
    monkeypatch.delenv("PT_NORTH_KEY")
    with pytest.raises(ConfigError, match=r"PT_NORTH_KEY \(protractor.locations.north.api_key_env\)"):
        ProtractorResource.from_environment(settings)


def test_keys_are_not_in_the_config_repr() -> None:
    config = ProtractorLocation(connection_id=NORTH[0], api_key=NORTH[1])
    assert NORTH[0] not in repr(config) and NORTH[1] not in repr(config)
