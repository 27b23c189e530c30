"""The Xtime client over real HTTP against the fake: token, retries, errors, rate limit, quiet logs."""

from __future__ import annotations

import logging
import time
from datetime import date

import httpx
import pytest

from dealer_assets.xtime.client import AnswerLost, XtimeError
from dealer_assets.xtime.fake import FakeXtimeServer
from dealer_assets.xtime.settings import settings_from_document
from dealer_assets_tests.xtime.support import CREDENTIALS, control, fake_state, make_client, settings_document

SLOT = {
    "firstName": "Ann",
    "lastName": "Lee",
    "emailAddress": "ann.lee@example.com",
    "phoneNumber": "555-201-3344",
    "services": [{"opcode": "TUM"}],
    "label": "r1",
    "vin": "1FTFW1E50NFA00001",
}


def test_token_is_reused_until_shortly_before_expiry_then_fetched_again(fake, settings):
    """`expires_in` 100 s: reused for 90 s by the client's clock (10% margin), then fetched again before the
    fake would refuse it (the fake's tokens still hold: a client that kept one would not be caught by a 401)."""
    fake.state.token_ttl = 100.0
    now = [0.0]
    client = make_client(settings, clock=lambda: now[0])
    for moment in (0.0, 45.0, 89.9):
        now[0] = moment
        assert client.services("X100")
    assert client.stats.token_fetches == 1
    assert fake.state.calls["/token"] == 1
    now[0] = 90.0
    client.services("X100")
    assert client.stats.token_fetches == 2
    assert fake.state.calls.get("unauthorized", 0) == 0


def test_a_401_refreshes_the_token_once(fake, client):
    client.services("X100")
    control(fake, "failures", {"kind": "expire_tokens", "count": 1})
    assert {s["opcode"] for s in client.services("X100")} >= {"TUM"}
    assert fake.state.calls["unauthorized"] == 1
    assert client.stats.token_fetches == 2


def test_a_401_after_the_refresh_is_an_error_not_a_loop(fake, client):
    client.services("X100")
    control(fake, "failures", {"kind": "expire_tokens", "count": 2})
    with pytest.raises(XtimeError) as info:
        client.services("X100")
    assert info.value.status == 401 and info.value.code == "UNAUTHORIZED"
    assert fake.state.calls["unauthorized"] == 2
    assert client.stats.token_fetches == 2


@pytest.mark.slow
def test_429_is_retried_after_retry_after(fake, client):
    control(fake, "failures", {"kind": "429", "count": 2, "retry_after": 0.4})
    started = time.monotonic()
    assert client.services("X100")
    assert time.monotonic() - started >= 0.8
    assert fake.state.calls["/service/services"] == 3
    assert client.stats.retries == 2


@pytest.mark.slow
def test_500_and_timeouts_are_retried_on_reads(fake, client):
    control(fake, "failures", {"kind": "500", "path": "/service/services", "count": 1})
    control(fake, "failures", {"kind": "timeout", "path": "/service/services", "count": 1, "delay": 1.0})
    assert client.services("X100")
    assert fake.state.calls["/service/services"] == 3
    assert client.stats.retries == 2


def test_retries_stop_after_max_attempts(fake, settings):
    client = make_client(settings, max_attempts=3)
    control(fake, "failures", {"kind": "500", "count": 5})
    with pytest.raises(XtimeError) as info:
        client.services("X100")
    assert info.value.status == 500
    assert fake.state.calls["/service/services"] == 3


def test_success_false_with_http_200_is_an_error_with_its_code(fake, client):
    control(
        fake,
        "failures",
        {"kind": "success_false", "count": 1, "code": "DEALER_SUSPENDED", "message": "dealer is suspended"},
    )
    with pytest.raises(XtimeError) as info:
        client.services("X100")
    assert (info.value.code, info.value.message, info.value.status) == (
        "DEALER_SUSPENDED",
        "dealer is suspended",
        200,
    )
    with pytest.raises(XtimeError) as unknown:
        client.services("NOPE")
    assert unknown.value.code == "DEALER_NOT_FOUND"


def _first_slot(client) -> str:
    return client.availabilities("X100", "TUM", date(2026, 12, 1), date(2026, 12, 1))[0][
        "appointmentDateTimeLocal"
    ]


def test_a_booking_is_never_resent_blindly(fake, client):
    slot = _first_slot(client)
    control(fake, "failures", {"kind": "500", "path": "/service/appointments-bookings", "count": 1})
    with pytest.raises(AnswerLost):
        client.book("X100", SLOT | {"appointmentDateTimeLocal": slot})
    control(
        fake, "failures", {"kind": "lost", "path": "/service/appointments-bookings", "count": 1, "delay": 1.0}
    )
    with pytest.raises(AnswerLost):
        client.book("X100", SLOT | {"appointmentDateTimeLocal": slot})
    assert fake.state.calls["/service/appointments-bookings"] == 2
    assert [a["label"] for a in client.appointments("X100", SLOT["vin"])] == ["r1"]


def test_the_fake_refuses_a_slot_that_has_begun_as_xtime_would(fake, client):
    """The fake's clock is the tests' NOW (2026-11-26T12:00Z, 04:00 in Los Angeles); it still lists the day's
    earlier slots, so only the booking rule keeps them out."""
    fake.state.dealerships["X100"].open_hour = 0
    listed = client.availabilities("X100", "TUM", date(2026, 11, 26), date(2026, 11, 26))
    assert listed[0]["appointmentDateTimeLocal"] == "2026-11-26T00:00-0800"
    for slot in ("2026-11-26T03:30-0800", "2026-11-26T04:00-0800"):
        with pytest.raises(XtimeError) as info:
            client.book("X100", SLOT | {"appointmentDateTimeLocal": slot})
        assert (info.value.code, info.value.about_request) == ("APPOINTMENT_IN_PAST", True)
    assert not fake.state.appointments
    assert client.book("X100", SLOT | {"appointmentDateTimeLocal": "2026-11-26T04:30-0800"})


def test_a_throttled_booking_is_retried_because_it_was_not_processed(fake, client):
    slot = _first_slot(client)
    control(
        fake,
        "failures",
        {"kind": "429", "path": "/service/appointments-bookings", "count": 1, "retry_after": 0.1},
    )
    appointment_id = client.book("X100", SLOT | {"appointmentDateTimeLocal": slot})
    assert [a["appointmentId"] for a in client.appointments("X100", SLOT["vin"])] == [appointment_id]


@pytest.mark.slow
def test_the_rate_limit_holds_and_the_wait_is_measured():
    with FakeXtimeServer(fake_state(rate_limit=10)) as server:
        settings = settings_from_document(settings_document(server.url), "test.yaml")
        client = make_client(settings, timeout_seconds=5)
        started = time.monotonic()
        for _ in range(25):
            client.services("X100")
        elapsed = time.monotonic() - started
        stats = control(server, "stats")
    assert stats["max_calls_in_any_second"] <= 10
    assert stats["calls"].get("rate_limited", 0) == 0
    assert elapsed >= 2.0
    assert client.stats.limiter_wait_seconds >= 1.5


def test_logs_carry_no_secrets_and_no_contact_details(fake, client, caplog):
    caplog.set_level(logging.DEBUG)
    slot = _first_slot(client)
    control(fake, "failures", {"kind": "expire_tokens", "count": 1})
    client.book("X100", SLOT | {"appointmentDateTimeLocal": slot})
    text = caplog.text
    assert "/service/appointments-bookings" in text
    for secret in (
        *CREDENTIALS.values(),
        *fake.state.tokens,
        "ann.lee@example.com",
        "555-201-3344",
        "Ann",
        "Lee",
    ):
        assert secret not in text


def test_a_refused_connection_is_an_error_after_retries(settings):
    dead = settings.model_copy(
        update={"base_url": "http://127.0.0.1:9", "token_url": "http://127.0.0.1:9/token"}
    )
    client = make_client(dead, max_attempts=2)
    with pytest.raises(httpx.ConnectError):
        client.services("X100")
