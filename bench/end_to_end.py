"""Benchmark 5: benchmark 3's feed end to end, through the engine and the warehouse write of a reconciliation
step (`write_outcome`: the changed SRs upserted, events, skips and coverage inserted, one transaction), on the
embedded default (a SQLite file) and on PostgreSQL, each warehouse already holding the prior SR state.

The baseline is benchmark 3's: the bare polars read + anti-joins of the same data, measured again here.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import polars as pl

from bench import reconcile
from bench.measure import BenchError, Context, Figure, median, peak, run_child
from bench.warehouse import postgres_databases, remove_sqlite

# --- measured step (run in bench.child) --------------------------------------------------------------------


def step(url: str, state: str, vehicles: str, settings: str) -> dict:
    from dealer_assets.core.warehouse import engine_for
    from dealer_assets.dms.domain.rules import apply_feed
    from dealer_assets.dms.domain.vehicles import FeedRef
    from dealer_assets.dms.settings import parse_settings
    from dealer_assets.dms.state_writes import LATE_SCHEMA, applied_feed_rows, write_outcome

    source = parse_settings(Path(settings).read_text()).sources["generic"]
    engine = engine_for(url)
    with engine.connect() as probe:  # a pooled connection that is already open, as in a run
        probe.exec_driver_sql("SELECT 1")
    start = time.perf_counter()
    prior, feed = pl.read_parquet(state), pl.read_parquet(vehicles)
    outcome = apply_feed(prior, feed, source, FeedRef("generic", reconcile.AS_OF, reconcile.FILE_NAME))
    applied = applied_feed_rows(
        "generic", [(reconcile.AS_OF, reconcile.FILE_NAME, "0" * 64, feed.height)], outcome
    )
    reconciled = time.perf_counter()
    with engine.begin() as conn:
        write_outcome(
            conn,
            "generic",
            outcome,
            prior,
            replay_from=None,
            applied=applied,
            late=pl.DataFrame(schema=LATE_SCHEMA),
        )
    done = time.perf_counter()
    engine.dispose()
    return {
        "seconds": done - start,
        "engine_s": reconciled - start,
        "write_s": done - reconciled,
        "events": outcome.events.height,
        "skipped": outcome.skipped.height,
    }


# --- orchestration (parent) --------------------------------------------------------------------------------


def _sqlite(ctx: Context, paths: dict[str, str]) -> list:
    db = ctx.dir("end_to_end") / "warehouse.db"
    runs = []
    for _ in range(ctx.repeat):
        remove_sqlite(db)
        run_child("warehouse:preload", {"url": f"sqlite:///{db}", "frame": paths["state"]})
        runs.append(run_child("end_to_end:step", {"url": f"sqlite:///{db}", **paths}))
    remove_sqlite(db)
    return runs


def _postgres(ctx: Context, paths: dict[str, str]) -> list:
    runs = []
    with postgres_databases(ctx) as database:
        for _ in range(ctx.repeat):
            with database() as url:
                run_child("warehouse:preload", {"url": url, "frame": paths["state"]})
                runs.append(run_child("end_to_end:step", {"url": url, **paths}))
    return runs


def run(ctx: Context) -> list[Figure]:
    paths = reconcile.scenario(ctx)
    baseline = [run_child("reconcile:polars_baseline", paths) for _ in range(ctx.repeat)]
    figures = []
    for name, where, measure in (
        ("end_to_end.sqlite", "a SQLite file (embedded default)", _sqlite),
        ("end_to_end.postgres", "PostgreSQL", _postgres),
    ):
        label = f"apply_feed + write_outcome, {ctx.rows:,} feed rows vs {ctx.rows:,} SRs, into {where}"
        try:
            runs = measure(ctx, paths)
        except BenchError as exc:
            figures.append(Figure(name, label, None, "s", error=str(exc)))
            continue
        info = {
            **runs[0].info,
            "engine_s": statistics.median(r.info["engine_s"] for r in runs),
            "write_s": statistics.median(r.info["write_s"] for r in runs),
        }
        figures.append(
            Figure(
                name,
                f"{label} (engine {info['engine_s']:.2f} s + write {info['write_s']:.2f} s)",
                median(runs),
                "s",
                baseline=median(baseline),
                baseline_label="polars read + anti-joins",
                peak_mib=peak(runs),
                baseline_peak_mib=peak(baseline),
                info=info,
            )
        )
    return figures
