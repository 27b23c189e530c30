"""The Xtime scheduling API over httpx.

OAuth2 client credentials (HTTP Basic at `token_url`); every call sends `Authorization: Bearer` and
`x-api-key`. The token is reused until shortly before `expires_in` and refreshed once on a 401. 429, 5xx and
timeouts are retried (core/http.py: backoff, or the server's `Retry-After`); a booking POST is retried only
when it cannot have reached Xtime (429, a refused connection). Any other failure of a booking POST raises
`AnswerLost`: the caller looks the request up instead of sending it again. Logs carry method, path, dealer code,
status and timing, never credentials, tokens, bodies or customers' contact details.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from pyrate_limiter import Limiter

from dealer_assets.core.http import (
    CallStats,
    RetryPolicy,
    acquire,
    is_transient,
    never_reached_server,
    retry_after_of,
    second_rate,
)
from dealer_assets.xtime.settings import SCOPE

log = logging.getLogger(__name__)
BOOKING_PATH = "/service/appointments-bookings"
JITTER_MARGIN = 1.05
"""Calls are spaced 1/rate + 5% apart: against a fake enforcing the same limit, bursts of 10 per second drew
one or two 429s per 200 calls, since our clock and Xtime's never agree exactly."""


class XtimeError(Exception):
    """An answer from Xtime that is an error: `success: false` (whatever the HTTP status) or an HTTP error."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
        *,
        garbled: bool = False,
    ):
        super().__init__(f"Xtime error {code}: {message}" + (f" (HTTP {status})" if status else ""))
        self.code, self.message, self.status, self.retry_after = code, message, status, retry_after
        self.garbled = garbled

    @property
    def retryable(self) -> bool:
        return self.status is not None and (self.status == 429 or self.status >= 500)

    @property
    def about_request(self) -> bool:
        """Xtime refused this request itself (not our credentials, not its load, not a garbled answer)."""
        return not (self.retryable or self.garbled or self.code == "TOKEN" or self.status in (401, 403))


class AnswerLost(Exception):
    """A booking POST may have reached Xtime but its answer did not come back: look it up, never resend."""


def _read_retryable(exc: BaseException) -> bool:
    return is_transient(exc) or (isinstance(exc, XtimeError) and exc.retryable)


def _booking_retryable(exc: BaseException) -> bool:
    """Only what cannot have booked anything: a throttled POST, or one that never left this machine."""
    return never_reached_server(exc) or (isinstance(exc, XtimeError) and exc.status == 429)


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    api_key: str


class TokenCache:
    """The bearer token, reused until `expires_in` less 10% (at most 60 s) as measured by `clock`."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], clock: Callable[[], float]) -> None:
        self._fetch, self._clock = fetch, clock
        self._token: str | None = None
        self._valid_until = 0.0
        self._lock = threading.Lock()

    def get(self, *, refresh: bool = False) -> str:
        with self._lock:
            if refresh or self._token is None or self._clock() >= self._valid_until:
                started = self._clock()
                self._token, expires_in = self._fetch()
                self._valid_until = started + expires_in - min(60.0, expires_in * 0.1)
            return self._token


class XtimeClient:
    """One Xtime account (all dealerships share its API key): one connection pool, token and rate limit."""

    def __init__(
        self,
        base_url: str,
        token_url: str,
        credentials: Credentials,
        *,
        requests_per_second: float = 10.0,
        timeout_seconds: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url, self.token_url, self.retry = base_url, token_url, retry
        self._credentials = credentials
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_seconds))
        self._limiter = Limiter(second_rate(requests_per_second, JITTER_MARGIN), buffer_ms=1)
        self._tokens = TokenCache(self._fetch_token_retrying, clock)
        self.stats = CallStats()

    def __enter__(self) -> XtimeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _fetch_token_retrying(self) -> tuple[str, float]:
        return self.retry.retrying(_read_retryable, self.stats)(self._fetch_token)

    def _fetch_token(self) -> tuple[str, float]:
        started = time.monotonic()
        response = self._http.post(
            self.token_url,
            auth=(self._credentials.client_id, self._credentials.client_secret),
            data={"grant_type": "client_credentials", "scope": SCOPE},
            headers={"Accept": "application/json"},
        )
        self.stats.add(token_fetches=1)
        log.info("POST token -> %s in %.0f ms", response.status_code, (time.monotonic() - started) * 1000)
        if response.status_code >= 400:
            raise XtimeError(
                "TOKEN",
                f"token request refused: HTTP {response.status_code}",
                response.status_code,
                retry_after_of(response),
            )
        body = response.json()
        return body["access_token"], float(body.get("expires_in") or 300)

    def _send(self, method: str, path: str, params: dict[str, Any], body: dict | None) -> dict:
        token = self._tokens.get()
        for refreshed in (False, True):
            started = time.monotonic()
            waited = acquire(self._limiter, "xtime", self.stats)
            response = self._http.request(
                method,
                self.base_url + path,
                params=params,
                json=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "x-api-key": self._credentials.api_key,
                    "Accept": "application/json",
                },
            )
            log.info(
                "%s %s dealerCode=%s -> %s in %.0f ms",
                method,
                path,
                params.get("dealerCode"),
                response.status_code,
                (time.monotonic() - started - waited) * 1000,
            )
            if response.status_code == 401 and not refreshed:
                token = self._tokens.get(refresh=True)
                continue
            return _answer(response)
        raise AssertionError("unreachable")

    def _get(self, path: str, params: dict[str, Any]) -> dict:
        return self.retry.retrying(_read_retryable, self.stats)(self._send, "GET", path, params, None)

    def services(self, dealer_code: str) -> list[dict]:
        return list(self._get("/service/services", {"dealerCode": dealer_code}).get("services") or [])

    def availabilities(
        self, dealer_code: str, opcode: str, start: date, end: date, vin: str | None = None
    ) -> list[dict]:
        params = {
            "dealerCode": dealer_code,
            "opcode": opcode,
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        if vin:
            params["vin"] = vin
        body = self._get("/service/appointments-availabilities", params)
        return list(body.get("availableAppointments") or [])

    def appointments(self, dealer_code: str, vin: str) -> list[dict]:
        return list(
            self._get("/service/appointments", {"dealerCode": dealer_code, "vin": vin}).get("appointments")
            or []
        )

    def book(self, dealer_code: str, payload: dict) -> str:
        """The new appointment's id; XtimeError when it was not booked (`about_request`: Xtime refused this
        request; otherwise credentials or throttling); AnswerLost when the outcome is unknown."""
        try:
            body = self.retry.retrying(_booking_retryable, self.stats)(
                self._send, "POST", BOOKING_PATH, {"dealerCode": dealer_code}, payload
            )
        except XtimeError as exc:
            if (exc.status is not None and exc.status >= 500) or exc.garbled:
                raise AnswerLost(f"booking answered {exc.code} (HTTP {exc.status})") from exc
            raise
        except httpx.TransportError as exc:
            if never_reached_server(exc):
                raise
            raise AnswerLost(f"booking answer lost: {type(exc).__name__}") from exc
        appointment_id = body.get("appointmentId")
        if not appointment_id:
            raise AnswerLost("booking answered success without an appointmentId")
        return str(appointment_id)


def _answer(response: httpx.Response) -> dict:
    """The body of a success; an XtimeError for `success: false`, an HTTP error or a body that is not JSON."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("success") is False:
        raise XtimeError(
            str(body.get("code") or "UNKNOWN"),
            str(body.get("message") or ""),
            response.status_code,
            retry_after_of(response),
        )
    if response.status_code >= 400 or not isinstance(body, dict):
        raise XtimeError(
            f"HTTP_{response.status_code}",
            "unexpected answer",
            response.status_code,
            retry_after_of(response),
            garbled=response.status_code < 400,
        )
    return body
