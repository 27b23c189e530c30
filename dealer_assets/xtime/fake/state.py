"""The fake Xtime's in-memory world: dealerships with opening hours and catalogs, appointments, injected
failures, the call counters the tests and the benchmark read, and the clock it refuses past bookings by.

Catalog services carry a value (the code a booking sends) and a name that differs from it, as the Xtime guide's
dealerships set them up ("DCAPPT" named "DataClover Appt")."""

from __future__ import annotations

import itertools
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

BASE_SERVICES = (
    ("TUM", "Tell Us More"),
    ("LOF", "Oil Change"),
    ("ROT", "Tire Rotation"),
    ("MPI", "Multi-Point Inspection"),
)
"""(value, name) of the services every fake dealership publishes."""
BOOKING_PATH = "/service/appointments-bookings"
API_PATHS = (
    "/service/services",
    "/service/appointments-availabilities",
    BOOKING_PATH,
    "/service/appointments",
)


@dataclass
class FakeDealership:
    dealer_code: str
    time_zone: str
    extra_services: tuple[tuple[str, str], ...] = ()
    open_hour: int = 7
    close_hour: int = 17
    slot_minutes: int = 30
    closed_weekdays: tuple[int, ...] = (6,)

    @property
    def catalog(self) -> list[dict]:
        return [{"opcode": o, "name": n} for o, n in (*BASE_SERVICES, *self.extra_services)]

    def slots(self, day: date) -> list[datetime]:
        """Opening-hour slots of one local day, stepped in UTC so DST days get the right offsets."""
        zone = ZoneInfo(self.time_zone)
        if day.weekday() in self.closed_weekdays:
            return []
        start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        end = (datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(days=1, hours=2)).astimezone(
            UTC
        )
        out, t = [], start
        while t < end:
            local = t.astimezone(zone)
            if (
                local.date() == day
                and self.open_hour * 60 <= local.hour * 60 + local.minute < self.close_hour * 60
            ):
                out.append(local)
            t += timedelta(minutes=self.slot_minutes)
        return out


def local_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M%z")


def parse_local(text: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, fmt)
        except (TypeError, ValueError):
            continue
    return None


@dataclass
class Failure:
    kind: str
    path: str | None = None
    count: int = 1
    retry_after: float | None = None
    delay: float = 2.0
    code: str = "INVALID_REQUEST"
    message: str = "injected failure"


@dataclass
class FakeState:
    dealerships: dict[str, FakeDealership]
    client_id: str
    client_secret: str
    api_key: str
    token_ttl: float = 3600.0
    rate_limit: float | None = 10.0
    tokens: dict[str, float] = field(default_factory=dict)
    appointments: list[dict] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)
    call_times: list[float] = field(default_factory=list)
    recent: deque = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    closing: bool = False
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """What "now" is to the fake: a slot that has begun by then is refused (tests set their own)."""

    def take_failure(self, path: str) -> Failure | None:
        """The next injected failure for this path; one without a path applies to every API call (not tokens)."""
        with self.lock:
            for f in self.failures:
                if f.count > 0 and (f.path == path or (f.path is None and path != "/token")):
                    f.count -= 1
                    return f
        return None


SAMPLE_DEALERSHIPS = (
    FakeDealership("X100100", "America/Los_Angeles"),
    FakeDealership("X200200", "America/Denver", extra_services=(("DCAPPT", "DataClover Appt"),)),
    FakeDealership("X300300", "America/Chicago"),
    FakeDealership("X400400", "America/New_York"),
    FakeDealership("X201201", "America/Denver"),
    FakeDealership("X101101", "America/Los_Angeles"),
)
"""The sample settings' dealerships (data/config/dealer_feeds.yaml): d200 published its dedicated opcode, d300
has not yet, so the sample shows the opcode check failing."""


def seeded_dealerships(settings_zones: dict[str, str]) -> dict[str, FakeDealership]:
    """The sample dealerships, plus one with the base catalog for every other configured dealer code."""
    seeded = {d.dealer_code: d for d in SAMPLE_DEALERSHIPS}
    for code, zone in settings_zones.items():
        seeded.setdefault(code, FakeDealership(code, zone))
    return seeded
