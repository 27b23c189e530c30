"""The benchmark suite still runs: `python -m bench --quick` prints every figure with a positive value.

It also cross-checks the reconciliation engine against the same rules written as DuckDB SQL (the
`reconcile` figures turn into errors when the two disagree). PostgreSQL figures may be missing outside CI
when no server answers at DEALER_BENCH_POSTGRES_URL (or DEALER_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import FIGURES

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def _table(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        if not line.startswith("| ") or line.startswith("| figure "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows[cells[0].split(":")[0]] = cells
    return rows


def test_quick_bench_prints_every_figure(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not env.get("DEALER_BENCH_POSTGRES_URL") and env.get("DEALER_TEST_POSTGRES_URL"):
        env["DEALER_BENCH_POSTGRES_URL"] = env["DEALER_TEST_POSTGRES_URL"]
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    rows = _table(proc.stdout)
    ci = os.environ.get("CI", "").lower() == "true"
    problems = []
    for name in [f for names in FIGURES.values() for f in names]:
        cells = rows.get(name)
        if cells is None:
            problems.append(f"{name}: missing from the table")
            continue
        if name.startswith("warehouse.pg_") and "PostgreSQL unreachable" in cells[1] and not ci:
            continue
        number = re.match(r"^([0-9][0-9,]*(?:\.[0-9]+)?)", cells[1])
        if number is None or float(number.group(1).replace(",", "")) <= 0:
            problems.append(f"{name}: no positive value: {cells[1]}")
    assert not problems, (
        "\n".join(problems) + f"\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-3000:]}"
    )
