"""The Xtime scheduling API over httpx, as a Dagster resource.

OAuth2 client credentials (HTTP Basic at `token_url`); every call sends `Authorization: Bearer` and
`x-api-key`. The token is reused until shortly before `expires_in` and refreshed once on a 401. 429, 5xx and
timeouts are retried by tenacity with exponential backoff, honouring `Retry-After`; a booking POST is retried
only when it cannot have reached Xtime (429, a refused connection). Any other failure of a booking POST raises
`AnswerLost`: the caller looks the request up instead of sending it again. Logs carry method, path, dealer code,
status and timing, never credentials, tokens, bodies or customers' contact details.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any

import dagster as dg
import httpx
from pydantic import PrivateAttr
from pyrate_limiter import Duration, Limiter, Rate
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from tenacity.wait import wait_base

from dealer_assets.core.errors import ConfigError
from dealer_assets.xtime.settings import SCOPE, XtimeSettings

log = logging.getLogger(__name__)
BOOKING_PATH = "/service/appointments-bookings"


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


@dataclass
class ClientStats:
    calls: int = 0
    token_fetches: int = 0
    retries: int = 0
    limiter_wait_seconds: float = 0.0


class _WaitRetryAfter(wait_base):
    """Xtime's `Retry-After` when it sends one (capped), else exponential backoff."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback, self.cap = fallback, cap

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        after = getattr(exc, "retry_after", None)
        return min(float(after), self.cap) if after is not None else self.fallback(retry_state)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _safe_transport_error(exc: BaseException) -> bool:
    """Errors raised before a request left this machine: resending cannot duplicate anything."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


JITTER_MARGIN = 1.05


def limiter_rate(requests_per_second: float) -> Rate:
    """One call per 1/rate seconds plus 5%: spaced evenly rather than in bursts, so that the jitter between our
    clock and Xtime's never lets an extra call into one of Xtime's seconds (measured against a fake enforcing
    the same limit: bursts of 10 per second drew one or two 429s per 200 calls)."""
    return Rate(1, max(1, round(int(Duration.SECOND) / requests_per_second * JITTER_MARGIN)))


class XtimeClient(dg.ConfigurableResource):
    """Xtime scheduling API; one limiter per resource instance (all dealerships share the API key)."""

    base_url: str
    token_url: str
    client_id: str
    client_secret: str
    api_key: str
    requests_per_second: float = 10.0
    timeout_seconds: float = 10.0
    max_attempts: int = 5
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0

    _http: httpx.Client | None = PrivateAttr(default=None)
    _token: str | None = PrivateAttr(default=None)
    _token_valid_until: float = PrivateAttr(default=0.0)
    _limiter: Limiter | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _stats: ClientStats = PrivateAttr(default_factory=ClientStats)

    @classmethod
    def from_settings(
        cls, settings: XtimeSettings, environ: dict[str, str] | None = None, **kw: Any
    ) -> XtimeClient:
        """Credentials from the environment variables the settings name; a missing one is a ConfigError."""
        env = os.environ if environ is None else environ
        values = {}
        for field, var in (
            ("client_id", settings.client_id_env),
            ("client_secret", settings.client_secret_env),
            ("api_key", settings.api_key_env),
        ):
            if not env.get(var):
                raise ConfigError(f"environment: {var}: not set (named by xtime.{field}_env in the settings)")
            values[field] = env[var]
        return cls(
            base_url=settings.base_url,
            token_url=settings.token_url,
            requests_per_second=float(settings.requests_per_second),
            **values,
            **kw,
        )

    @property
    def stats(self) -> ClientStats:
        return self._stats

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=httpx.Timeout(self.timeout_seconds))
            self._limiter = Limiter(limiter_rate(self.requests_per_second), buffer_ms=1)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def _retrying(self, retry_on) -> Retrying:
        def count(_: RetryCallState) -> None:
            self._stats.retries += 1

        return Retrying(
            retry=retry_if_exception(retry_on),
            stop=stop_after_attempt(self.max_attempts),
            wait=_WaitRetryAfter(
                wait_exponential(multiplier=self.backoff_seconds, max=self.max_backoff_seconds),
                self.max_backoff_seconds,
            ),
            before_sleep=count,
            reraise=True,
        )

    # -- token ------------------------------------------------------------------------------------------------

    def _access_token(self, *, refresh: bool = False) -> str:
        with self._lock:
            if refresh or self._token is None or time.monotonic() >= self._token_valid_until:
                self._token, self._token_valid_until = self._retrying(
                    lambda e: (
                        isinstance(e, httpx.TimeoutException | httpx.TransportError)
                        or (isinstance(e, XtimeError) and e.retryable)
                    )
                )(self._fetch_token)
            return self._token

    def _fetch_token(self) -> tuple[str, float]:
        started = time.monotonic()
        response = self._client().post(
            self.token_url,
            auth=(self.client_id, self.client_secret),
            data={"grant_type": "client_credentials", "scope": SCOPE},
            headers={"Accept": "application/json"},
        )
        self._stats.token_fetches += 1
        log.info("POST token -> %s in %.0f ms", response.status_code, (time.monotonic() - started) * 1000)
        if response.status_code >= 400:
            raise XtimeError(
                "TOKEN",
                f"token request refused: HTTP {response.status_code}",
                response.status_code,
                _retry_after(response),
            )
        body = response.json()
        expires_in = float(body.get("expires_in") or 300)
        margin = min(60.0, expires_in * 0.1)
        return body["access_token"], started + expires_in - margin

    # -- calls ------------------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, params: dict[str, Any], body: dict | None) -> dict:
        http = self._client()
        token = self._access_token()
        for refreshed in (False, True):
            started = time.monotonic()
            self._limiter.try_acquire("xtime", blocking=True)
            waited = time.monotonic() - started
            self._stats.limiter_wait_seconds += waited
            self._stats.calls += 1
            response = http.request(
                method,
                self.base_url + path,
                params=params,
                json=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "x-api-key": self.api_key,
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
                token = self._access_token(refresh=True)
                continue
            return self._answer(response)
        raise AssertionError("unreachable")

    @staticmethod
    def _answer(response: httpx.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("success") is False:
            raise XtimeError(
                str(body.get("code") or "UNKNOWN"),
                str(body.get("message") or ""),
                response.status_code,
                _retry_after(response),
            )
        if response.status_code >= 400 or not isinstance(body, dict):
            raise XtimeError(
                f"HTTP_{response.status_code}",
                "unexpected answer",
                response.status_code,
                _retry_after(response),
                garbled=response.status_code < 400,
            )
        return body

    def _get(self, path: str, params: dict[str, Any]) -> dict:
        def retry_on(exc: BaseException) -> bool:
            return isinstance(exc, httpx.TimeoutException | httpx.TransportError) or (
                isinstance(exc, XtimeError) and exc.retryable
            )

        return self._retrying(retry_on)(self._send, "GET", path, params, None)

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

        def retry_on(exc: BaseException) -> bool:
            return _safe_transport_error(exc) or (isinstance(exc, XtimeError) and exc.status == 429)

        try:
            body = self._retrying(retry_on)(
                self._send, "POST", BOOKING_PATH, {"dealerCode": dealer_code}, payload
            )
        except XtimeError as exc:
            if (exc.status is not None and exc.status >= 500) or exc.garbled:
                raise AnswerLost(f"booking answered {exc.code} (HTTP {exc.status})") from exc
            raise
        except httpx.TransportError as exc:
            if _safe_transport_error(exc):
                raise
            raise AnswerLost(f"booking answer lost: {type(exc).__name__}") from exc
        appointment_id = body.get("appointmentId")
        if not appointment_id:
            raise AnswerLost("booking answered success without an appointmentId")
        return str(appointment_id)
