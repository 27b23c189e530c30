"""The Protractor benchmark runs end to end at a tiny size and reports what it measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import protractor as bench

pytestmark = pytest.mark.e2e


def test_bench_protractor_tiny(tmp_path: Path) -> None:
    out = tmp_path / "protractor.json"
    assert (
        bench.main(
            [
                "--callbacks",
                "200",
                "--concurrency",
                "8",
                "--work-orders",
                "300",
                "--repeat",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    figures = json.loads(out.read_text())
    receiver = figures["receiver"]
    assert receiver["bare"]["ok"] == 200 and receiver["receiver"]["ok"] == 200
    assert receiver["journal_lines"] == 200 + 3 * 200, "warm-up and three rounds, every callback journaled"
    assert figures["snapshots"]["work_orders"] == 300 and figures["snapshots"]["snapshot_build_s"] > 0
