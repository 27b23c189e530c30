"""The Xtime benchmark runs and its figures hold together (a small run; docs/benchmarks.md has the full one)."""

from __future__ import annotations

import pytest

from bench.xtime_booking import run

pytestmark = pytest.mark.slow


def test_the_benchmark_books_everything_within_the_rate_limit(tmp_path):
    figures = run(requests=12, rate=20, workdir=tmp_path)
    assert figures["booked"] == 12 and figures["api_calls"] == 24
    assert figures["fake_429s"] == 0 and figures["max_calls_in_any_second"] <= 20
    assert 0 < figures["limiter_wait_share"] < 1
    assert figures["bookings_per_s"] <= 10.5
