"""The dealer_assets benchmark suite: `python -m bench` (from the project root) runs every benchmark and prints
one table (figure, value, baseline, ratio, peak memory). `--rows N` scales the big benchmarks, `--only NAME`
runs one (repeatable), `--quick` runs everything at a tiny size. Outputs go to bench/out/ (git-ignored).

Every measured step runs in a fresh subprocess (`python -m bench.child`) that reports its own wall time for
the step and its peak RSS (ru_maxrss); a figure is the median of `--repeat` such runs (3 by default).
"""

from __future__ import annotations

BENCHMARKS = ("synthetic", "parse", "reconcile", "warehouse", "end_to_end", "backfill", "steady")
"""Benchmark names for `--only`, in the order they run."""

FIGURES = {
    "synthetic": ("synthetic.generate",),
    "parse": ("parse.vs_read_csv",),
    "reconcile": ("reconcile.vs_polars", "reconcile.vs_duckdb"),
    "warehouse": ("warehouse.sqlite_insert", "warehouse.pg_copy", "warehouse.pg_upsert"),
    "end_to_end": ("end_to_end.sqlite", "end_to_end.postgres"),
    "backfill": (
        "backfill.catch_up.sqlite",
        "backfill.replay.sqlite",
        "backfill.what_if.sqlite",
        "backfill.catch_up.postgres",
        "backfill.replay.postgres",
        "backfill.spread.sqlite",
    ),
    "steady": (
        "steady.parse",
        *(
            f"steady.{step}.{backend}"
            for backend in ("sqlite", "postgres")
            for step in ("reconcile", "write", "step", "dagster", "day")
        ),
    ),
}
"""The figures each benchmark prints (the first column of the table)."""
