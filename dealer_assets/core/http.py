"""What every external system's client shares: the retry policy, `Retry-After`, client-side rate limits and
call statistics.

Each area's client (Protractor, Xtime) says which failures may be retried for which call; this module says how
they are retried: tenacity with exponential backoff and jitter, or exactly the server's `Retry-After` (capped)
when it sends one, and every attempt counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from pyrate_limiter import Duration, Limiter, Rate
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter


def retry_after_seconds(
    value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """A `Retry-After` header in seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - now()).total_seconds())


def retry_after_of(response: httpx.Response) -> float | None:
    return retry_after_seconds(response.headers.get("Retry-After"))


class WaitRetryAfter:
    """tenacity wait: the failure's `retry_after` when it carries one (capped), else exponential backoff."""

    def __init__(self, initial: float, cap: float) -> None:
        self._backoff = wait_exponential_jitter(multiplier=initial, max=cap, jitter=initial)
        self._cap = cap

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after", None)
        return min(float(after), self._cap) if after is not None else self._backoff(state)


@dataclass
class CallStats:
    """What a client did, for a run's metadata: calls sent, retries, time spent waiting on the rate limit."""

    calls: int = 0
    token_fetches: int = 0
    retries: int = 0
    limiter_wait_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and the backoff between them (seconds)."""

    max_attempts: int = 5
    initial_seconds: float = 0.5
    max_seconds: float = 30.0

    def retrying(
        self,
        retry_on: Callable[[BaseException], bool],
        stats: CallStats | None = None,
        on_retry: Callable[[RetryCallState], None] | None = None,
    ) -> Retrying:
        def before_sleep(state: RetryCallState) -> None:
            if stats is not None:
                stats.add(retries=1)
            if on_retry is not None:
                on_retry(state)

        return Retrying(
            retry=retry_if_exception(retry_on),
            stop=stop_after_attempt(self.max_attempts),
            wait=WaitRetryAfter(self.initial_seconds, self.max_seconds),
            before_sleep=before_sleep,
            reraise=True,
        )


def is_transient(exc: BaseException) -> bool:
    """A timeout or a failed connection: worth another attempt for a call that is safe to repeat."""
    return isinstance(exc, httpx.TimeoutException | httpx.TransportError)


def never_reached_server(exc: BaseException) -> bool:
    """Failures before a request left this machine: resending cannot duplicate anything."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def window(duration: int, margin: float) -> int:
    """A rate window lengthened by `margin`: requests spaced exactly at a server's limit reach it with network
    and scheduling jitter, and it would then count one too many in some window."""
    return max(1, round(duration * margin))


def second_rate(per_second: float, margin: float) -> Rate:
    """One call per 1/rate seconds (lengthened by `margin`): spaced evenly rather than in bursts."""
    return Rate(1, window(round(int(Duration.SECOND) / per_second), margin))


_SHARED: dict[tuple, Limiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(key: tuple, rates: list[Rate]) -> Limiter:
    """One limiter per key in this process, so every client of the same account shares the same budget."""
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = Limiter(rates, buffer_ms=10)
        return _SHARED[key]


_SLOTS: dict[tuple, threading.BoundedSemaphore] = {}


def shared_slots(key: tuple, size: int) -> threading.BoundedSemaphore:
    """At most `size` calls in flight per key in this process, whichever client sends them."""
    with _SHARED_LOCK:
        if key not in _SLOTS:
            _SLOTS[key] = threading.BoundedSemaphore(size)
        return _SLOTS[key]


def acquire(limiter: Limiter, name: str, stats: CallStats) -> float:
    """Wait for the rate limit; the time waited is added to the stats and returned."""
    started = time.monotonic()
    limiter.try_acquire(name, blocking=True)
    waited = time.monotonic() - started
    stats.add(calls=1, limiter_wait_seconds=waited)
    return waited
