"""Run a measured step in a fresh subprocess, take medians, and hold what every benchmark shares."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT_MARK = "BENCH_RESULT "


class BenchError(RuntimeError):
    pass


@dataclass
class Context:
    out: Path
    rows: int = 1_000_000
    repeat: int = 3
    quick: bool = False
    pg_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    hours: int = 720
    dealers: int = 100
    per_dealer: int = 40
    profile: bool = False
    cache: dict = field(default_factory=dict)
    """Inputs prepared once per invocation and shared between benchmarks (e.g. the reconcile scenario)."""

    def dir(self, name: str) -> Path:
        path = self.out / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class Sample:
    seconds: float
    peak_mib: float
    info: dict


@dataclass
class Figure:
    name: str
    label: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    """How the ratio (value / baseline) should compare, e.g. "<= 2"; shown beside the ratio."""
    peak_mib: float | None = None
    baseline_peak_mib: float | None = None
    error: str = ""
    info: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline


def run_child(
    task: str, args: dict, *, env: dict[str, str | None] | None = None, timeout: float | None = None
) -> Sample:
    """`task` is "module:function" under bench, returning {"seconds": ..., **info}; an env value None unsets."""
    cmd = [sys.executable, "-m", "bench.child", task, json.dumps(args)]
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), child_env.get("PYTHONPATH", "")) if p)
    for key in [k for k, v in child_env.items() if v is None]:
        child_env.pop(key)
    proc = subprocess.run(cmd, cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BenchError(f"{task} exited {proc.returncode}:\n{tail}")
    result = json.loads(lines[-1][len(RESULT_MARK) :])
    return Sample(seconds=result.pop("seconds"), peak_mib=result.pop("peak_kib") / 1024, info=result)


def median_runs(ctx: Context, task: str, args: dict | Callable[[int], dict], **kw) -> list[Sample]:
    runs = []
    for i in range(ctx.repeat):
        runs.append(run_child(task, args(i) if callable(args) else args, **kw))
    return runs


def median(samples: list[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)


def peak(samples: list[Sample]) -> float:
    return max(s.peak_mib for s in samples)


@contextmanager
def stopwatch(into: dict):
    """Put the wall time of the block into `into["seconds"]`."""
    start = time.perf_counter()
    try:
        yield into
    finally:
        into["seconds"] = time.perf_counter() - start


def interleaved(ctx: Context, tasks: dict[str, tuple[str, dict]], **kw) -> dict[str, list[Sample]]:
    """Run each task `ctx.repeat` times, alternating between tasks so that drift hits all of them alike."""
    out: dict[str, list[Sample]] = {k: [] for k in tasks}
    for _ in range(ctx.repeat):
        for key, (task, args) in tasks.items():
            out[key].append(run_child(task, args, **kw))
    return out
