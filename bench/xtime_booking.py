"""Bookings per second against the fake Xtime at its rate limit, and the share of time spent waiting on the
client's limiter.

    python -m bench.xtime_booking [--requests 60] [--rate 10]

Each booking costs two calls (availabilities, then the POST); the fake enforces `--rate` calls per second
(429 beyond it) and the client holds itself to the same rate, so the ceiling is about rate / 2 bookings per
second. The run uses a throw-away SQLite warehouse and a fake on a free loopback port.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from dealer_assets.core.warehouse import dispose_engines, engine_for
from dealer_assets.xtime.book_appointments import Booker
from dealer_assets.xtime.defs.resources import XtimeResource
from dealer_assets.xtime.fake import FakeDealership, FakeState, FakeXtimeServer
from dealer_assets.xtime.intake import RequestPaths, ingest_files
from dealer_assets.xtime.refresh_catalog import refresh_catalogs
from dealer_assets.xtime.settings import settings_from_document

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CREDENTIALS = ("bench-client", "bench-secret", "bench-key")


def run(requests: int, rate: float, workdir: Path) -> dict:
    state = FakeState(
        {"B100": FakeDealership("B100", "America/Chicago", open_hour=0, close_hour=24, closed_weekdays=())},
        *CREDENTIALS,
        rate_limit=rate,
        clock=lambda: NOW,
    )
    with FakeXtimeServer(state) as server:
        settings = settings_from_document(
            {
                "xtime": {
                    "base_url": server.url,
                    "token_url": f"{server.url}/token",
                    "client_id_env": "C",
                    "client_secret_env": "S",
                    "api_key_env": "K",
                    "requests_per_second": rate,
                    "dealerships": {
                        "b100": {
                            "dealer_code": "B100",
                            "time_zone": "America/Chicago",
                            "invitation": {
                                "code": "B",
                                "issued_at": "2026-11-01T00:00:00Z",
                                "completed_at": "2026-11-01T01:00:00Z",
                                "confirmed_at": "2026-11-01T02:00:00Z",
                            },
                        }
                    },
                }
            },
            "bench.yaml",
        )
        client = XtimeResource.from_environment(settings, dict(zip("CSK", CREDENTIALS, strict=True))).client()
        engine = engine_for(f"sqlite:///{workdir / 'bench.db'}")
        paths = RequestPaths(workdir)
        paths.incoming.mkdir(parents=True, exist_ok=True)
        lines = [
            json.dumps(
                {
                    "request_id": f"b{i:05d}",
                    "dealership": "b100",
                    "first_name": "Bench",
                    "last_name": f"Customer {i}",
                    "email": f"c{i}@example.com",
                    "phone": "555-000-0000",
                    "vin": f"1FTFW1E50NF{i:06d}",
                    "earliest": "2026-12-01T00:00",
                }
            )
            for i in range(requests)
        ]
        (paths.incoming / "bench.jsonl").write_text("\n".join(lines) + "\n")
        ingest_files(engine, settings, paths, NOW)
        booker = Booker(engine, client, settings, now=lambda: NOW)
        refresh_catalogs(engine, client, settings, NOW)
        waited_before, calls_before = client.stats.limiter_wait_seconds, client.stats.calls
        started = time.perf_counter()
        result = booker.run()
        elapsed = time.perf_counter() - started
        stats = json.loads(httpx.get(f"{server.url}/_control/stats").text)
        dispose_engines()
    booked = result.outcomes.get("booked", 0)
    return {
        "requests": requests,
        "booked": booked,
        "rate_limit_per_s": rate,
        "seconds": round(elapsed, 2),
        "bookings_per_s": round(booked / elapsed, 2),
        "api_calls": client.stats.calls - calls_before,
        "calls_per_s": round((client.stats.calls - calls_before) / elapsed, 2),
        "limiter_wait_share": round((client.stats.limiter_wait_seconds - waited_before) / elapsed, 3),
        "fake_429s": stats["calls"].get("rate_limited", 0),
        "max_calls_in_any_second": stats["max_calls_in_any_second"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--rate", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(args.requests, args.rate, Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
