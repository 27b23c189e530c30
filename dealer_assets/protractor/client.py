"""Protractor's REST API for one location: signed headers, client-side limits, retries, paging.

Limits are kept on our side (Protractor publishes none and blocks a storm by address): by default 5 requests a
second and 300 a minute, each over a window `WINDOW_MARGIN` longer, and 3 in flight, shared by every client of
the same location in this process. 429, 5xx, timeouts and connection errors are retried as `core.http` does
(exponential backoff with jitter, or exactly the server's `Retry-After`); every attempt passes through the
limits. Keys appear in no log line, exception or file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import dagster as dg
import httpx
from pydantic import Field
from pyrate_limiter import Duration, Rate
from tenacity import RetryCallState

from dealer_assets.core.http import (
    CallStats,
    RetryPolicy,
    acquire,
    is_transient,
    retry_after_of,
    shared_limiter,
    shared_slots,
    window,
)

log = logging.getLogger(__name__)
PAGE_SIZE = 100
WINDOW_MARGIN = 1.1
"""Protractor's limits are kept over windows 10% longer than its own: requests spaced exactly at the limit
reach the server with network and scheduling jitter, and it would then count one too many in some second."""


def authentication(connection_id: str, api_key: str) -> str:
    """base64(HMAC-SHA1(key = API key, message = connection id)), both lower-cased without dashes."""
    key = api_key.replace("-", "").lower().encode()
    msg = connection_id.replace("-", "").lower().encode()
    return base64.b64encode(hmac.new(key, msg, hashlib.sha1).digest()).decode()


class ProtractorError(RuntimeError):
    """A request failed for good; the message names the location and the path, never a key."""


class ProtractorLocation(dg.Config):
    """One location's keys and the limits we keep on its API."""

    connection_id: str = Field(repr=False)
    api_key: str = Field(repr=False)
    timeout_seconds: float = Field(default=30.0, gt=0)
    requests_per_second: int = Field(default=5, ge=1)
    requests_per_minute: int = Field(default=300, ge=1)
    max_concurrent: int = Field(default=3, ge=1)
    max_attempts: int = Field(default=6, ge=1)
    backoff_initial_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)

    def headers(self) -> dict[str, str]:
        return {
            "connectionId": self.connection_id,
            "apiKey": self.api_key,
            "authentication": authentication(self.connection_id, self.api_key),
            "Accept": "application/json",
        }

    def rates(self) -> list[Rate]:
        return [
            Rate(self.requests_per_second, window(int(Duration.SECOND), WINDOW_MARGIN)),
            Rate(self.requests_per_minute, window(int(Duration.MINUTE), WINDOW_MARGIN)),
        ]

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.backoff_initial_seconds, self.backoff_max_seconds)


class _Retryable(Exception):
    """A 429 or 5xx answer; `retry_after` is what `core.http` waits when the server named it."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, _Retryable) or is_transient(exc)


class ProtractorClient:
    """One location's API session. Use as a context manager; thread-safe."""

    def __init__(self, location_id: str, base_url: str, config: ProtractorLocation) -> None:
        self.location_id = location_id
        self.config = config
        self.stats = CallStats()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=config.headers(),
            timeout=httpx.Timeout(config.timeout_seconds, connect=min(10.0, config.timeout_seconds)),
            limits=httpx.Limits(
                max_connections=config.max_concurrent, max_keepalive_connections=config.max_concurrent
            ),
        )
        key = (
            "protractor",
            location_id,
            base_url,
            config.requests_per_second,
            config.requests_per_minute,
            config.max_concurrent,
        )
        self._limiter = shared_limiter(key, config.rates())
        self._slots = shared_slots(key, config.max_concurrent)
        self._retrying = config.retry_policy().retrying(_is_retryable, self.stats, self._log_retry)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "protractor %s: attempt %d failed (%s); retrying in %.1fs",
            self.location_id,
            state.attempt_number,
            exc if isinstance(exc, _Retryable) else type(exc).__name__,
            state.upcoming_sleep,
        )

    def __enter__(self) -> ProtractorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _attempt(self, method: str, path: str, params: dict | None, body: dict | None) -> httpx.Response:
        acquire(self._limiter, self.location_id, self.stats)
        with self._slots:
            response = self._http.request(method, path, params=params, json=body)
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(response.status_code, retry_after_of(response))
        return response

    def _failed(self, method: str, path: str, reason: object) -> ProtractorError:
        return ProtractorError(f"protractor {self.location_id}: {method} {path}: {reason}")

    def request(
        self, method: str, path: str, *, params: dict | None = None, body: dict | None = None
    ) -> httpx.Response:
        """One call with limits and retries; 404 is returned to the caller, any other 4xx is an error."""
        try:
            response = self._retrying(self._attempt, method, path, params, body)
        except _Retryable as exc:
            raise self._failed(method, path, f"{exc} after retries") from None
        except httpx.HTTPError as exc:
            raise self._failed(method, path, f"{type(exc).__name__} after retries") from None
        if response.status_code >= 400 and response.status_code != 404:
            raise self._failed(method, path, f"HTTP {response.status_code}: {response.text[:200]}")
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
        workers = self.config.max_concurrent
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="protractor") as pool:
            return list(zip(ids, pool.map(self.get_work_order, ids), strict=True))

    def post_work_order(self, work_order_id: str, body: dict) -> httpx.Response:
        """Create or update (Protractor upserts by the GUID the caller chooses); its answer."""
        return self.request("POST", f"/WorkOrder/{work_order_id}", body=body)
