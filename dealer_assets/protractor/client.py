"""Protractor's REST API for one location: signed headers, client-side limits, retries, paging.

Limits are kept on our side (Protractor publishes none and blocks a storm by address): by default 5 requests a
second and 300 a minute (a sliding-window log, pyrate-limiter) and 3 in flight (a semaphore), shared by every
client of the same location in this process. Retries (tenacity) cover 429, 5xx, timeouts and connection
errors with exponential backoff and jitter, or exactly the server's `Retry-After` when it sends one. Every
attempt passes through the limits. Keys are read from the environment variables the settings name, and they
appear in no log line, exception or file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

import dagster as dg
import httpx
from pydantic import Field
from pyrate_limiter import Duration, Limiter, Rate
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from dealer_assets.core.errors import ConfigError

log = logging.getLogger(__name__)
PAGE_SIZE = 100


def authentication(connection_id: str, api_key: str) -> str:
    """base64(HMAC-SHA1(key = API key, message = connection id)), both lower-cased without dashes."""
    key = api_key.replace("-", "").lower().encode()
    msg = connection_id.replace("-", "").lower().encode()
    return base64.b64encode(hmac.new(key, msg, hashlib.sha1).digest()).decode()


class ProtractorError(RuntimeError):
    """A request failed for good; the message names the location and the path, never a key."""


class _Retryable(Exception):
    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _WaitRetryAfter:
    """tenacity wait: the server's Retry-After when given (capped), else exponential backoff with jitter."""

    def __init__(self, initial: float, cap: float) -> None:
        self._backoff = wait_exponential_jitter(initial=initial, max=cap, jitter=initial)
        self._cap = cap

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self._cap)
        return self._backoff(state)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, _Retryable | httpx.TimeoutException | httpx.TransportError)


WINDOW_MARGIN = 1.1
"""The limits are kept over windows 10% longer than Protractor's: requests spaced exactly at the limit reach
the server with network and scheduling jitter, and it would then count one too many in some second."""
_SHARED: dict[tuple, tuple[Limiter, threading.BoundedSemaphore]] = {}
_SHARED_LOCK = threading.Lock()


def _limits(
    key: tuple, per_second: int, per_minute: int, concurrent: int
) -> tuple[Limiter, threading.BoundedSemaphore]:
    with _SHARED_LOCK:
        if key not in _SHARED:
            rates = [
                Rate(per_second, int(Duration.SECOND * WINDOW_MARGIN)),
                Rate(per_minute, int(Duration.MINUTE * WINDOW_MARGIN)),
            ]
            _SHARED[key] = (Limiter(rates, buffer_ms=50), threading.BoundedSemaphore(concurrent))
        return _SHARED[key]


class ProtractorClient:
    """One location's API session. Use as a context manager; thread-safe."""

    def __init__(
        self,
        *,
        location_id: str,
        base_url: str,
        connection_id: str,
        api_key: str,
        timeout_seconds: float = 30.0,
        requests_per_second: int = 5,
        requests_per_minute: int = 300,
        max_concurrent: int = 3,
        max_attempts: int = 6,
        backoff_initial_seconds: float = 0.5,
        backoff_max_seconds: float = 60.0,
    ) -> None:
        self.location_id = location_id
        self.max_concurrent = max_concurrent
        headers = {
            "connectionId": connection_id,
            "apiKey": api_key,
            "authentication": authentication(connection_id, api_key),
            "Accept": "application/json",
        }
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
            limits=httpx.Limits(max_connections=max_concurrent, max_keepalive_connections=max_concurrent),
        )
        key = (location_id, base_url, requests_per_second, requests_per_minute, max_concurrent)
        self._limiter, self._slots = _limits(key, requests_per_second, requests_per_minute, max_concurrent)
        self._retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            wait=_WaitRetryAfter(backoff_initial_seconds, backoff_max_seconds),
            stop=stop_after_attempt(max_attempts),
            reraise=True,
            before_sleep=self._log_retry,
        )

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "protractor %s: attempt %d failed (%s); retrying in %.1fs",
            self.location_id,
            state.attempt_number,
            type(exc).__name__ if not isinstance(exc, _Retryable) else exc,
            state.upcoming_sleep,
        )

    def __enter__(self) -> ProtractorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _attempt(self, method: str, path: str, params: dict | None, body: dict | None) -> httpx.Response:
        self._limiter.try_acquire(self.location_id)
        with self._slots:
            response = self._http.request(method, path, params=params, json=body)
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(response.status_code, _retry_after(response.headers.get("Retry-After")))
        return response

    def request(
        self, method: str, path: str, *, params: dict | None = None, body: dict | None = None
    ) -> httpx.Response:
        """One call with limits and retries; 404 is returned to the caller, any other 4xx is an error."""
        try:
            response = self._retrying(self._attempt, method, path, params, body)
        except _Retryable as exc:
            raise ProtractorError(
                f"protractor {self.location_id}: {method} {path}: {exc} after retries"
            ) from None
        except httpx.HTTPError as exc:
            raise ProtractorError(
                f"protractor {self.location_id}: {method} {path}: {type(exc).__name__} after retries"
            ) from None
        if response.status_code >= 400 and response.status_code != 404:
            raise ProtractorError(
                f"protractor {self.location_id}: {method} {path}: HTTP {response.status_code}: {response.text[:200]}"
            )
        return response

    def get_work_order(self, work_order_id: str) -> dict | None:
        """The whole work order, or None when Protractor no longer has it (404)."""
        response = self.request("GET", f"/WorkOrder/{work_order_id}")
        return None if response.status_code == 404 else response.json()

    def list_changed(self, start: date, end: date) -> list[dict]:
        """Work orders changed between two dates (inclusive), thin: paged `take=100&skip=N` to a short page."""
        items: list[dict] = []
        skip = 0
        while True:
            params = {
                "startDate": start.isoformat(),
                "endDate": end.isoformat(),
                "readInProgress": "True",
                "take": PAGE_SIZE,
                "skip": skip,
            }
            page = self.request("GET", "/WorkOrder/", params=params).json().get("ItemCollection") or []
            items.extend(page)
            if len(page) < PAGE_SIZE:
                return items
            skip += PAGE_SIZE

    def fetch_many(self, work_order_ids: Iterable[str]) -> list[tuple[str, dict | None]]:
        """Whole work orders, up to `max_concurrent` at once; order follows the input."""
        ids = list(work_order_ids)
        with ThreadPoolExecutor(max_workers=self.max_concurrent, thread_name_prefix="protractor") as pool:
            return list(zip(ids, pool.map(self.get_work_order, ids), strict=True))

    def post_work_order(self, work_order_id: str, body: dict) -> None:
        """Create or update (Protractor upserts by the GUID the caller chooses)."""
        self.request("POST", f"/WorkOrder/{work_order_id}", body=body)


def read_key(env_name: str, location_id: str, key: str) -> str:
    value = os.environ.get(env_name, "").strip()
    if not value:
        raise ConfigError(
            f"environment variable {env_name} (protractor.locations.{location_id}.{key}) is not set"
        )
    return value


class ProtractorResource(dg.ConfigurableResource):
    """One Protractor location's API, configured from its settings entry; keys come from the environment."""

    location_id: str
    base_url: str
    connection_id_env: str
    api_key_env: str
    timeout_seconds: float = Field(default=30.0, gt=0)
    requests_per_second: int = Field(default=5, ge=1)
    requests_per_minute: int = Field(default=300, ge=1)
    max_concurrent: int = Field(default=3, ge=1)
    max_attempts: int = Field(default=6, ge=1)
    backoff_initial_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)

    def client(self) -> ProtractorClient:
        return ProtractorClient(
            location_id=self.location_id,
            base_url=self.base_url,
            connection_id=read_key(self.connection_id_env, self.location_id, "connection_id_env"),
            api_key=read_key(self.api_key_env, self.location_id, "api_key_env"),
            timeout_seconds=self.timeout_seconds,
            requests_per_second=self.requests_per_second,
            requests_per_minute=self.requests_per_minute,
            max_concurrent=self.max_concurrent,
            max_attempts=self.max_attempts,
            backoff_initial_seconds=self.backoff_initial_seconds,
            backoff_max_seconds=self.backoff_max_seconds,
        )
