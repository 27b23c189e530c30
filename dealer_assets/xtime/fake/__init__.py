"""A fake Xtime for development, tests and the benchmark: the token endpoint and the four scheduling calls over
in-memory dealerships, its own rate limit, and failures on demand. Real HTTP on loopback; no mocks."""

from dealer_assets.xtime.fake.app import FakeXtimeServer, create_fake_app, serve
from dealer_assets.xtime.fake.state import FakeDealership, FakeState, seeded_dealerships

__all__ = ["FakeDealership", "FakeState", "FakeXtimeServer", "create_fake_app", "seeded_dealerships", "serve"]
