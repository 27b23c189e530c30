"""Benchmark 5: a backfill of H hourly feeds (default 720 = 30 days) of D dealers in ONE range run of the real
Dagster job `dms_generic_feeds` (raw -> normalized -> service_requests) on the embedded defaults: SQLite
warehouse under the data root, a temporary DAGSTER_HOME, launched the way `dealer-assets replay` does.

Inventory model: each dealer holds about `per_dealer` vehicles that stay ~30 days (exponential), arrivals
keep the level; 5% of vehicles get a new stock number within 2.5 days, 2% drop out of the feed for 1-8 hours,
a dealer misses 0.5% of the feeds, and every feed carries a little dirt (bad VINs, duplicates, padding).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench.measure import ROOT, Context, Figure, run_child, stopwatch

START = datetime(2026, 10, 1, tzinfo=UTC)
SEED = 30
STAY_HOURS = 720.0
TARGET_SECONDS = 600


# --- data (parent) -----------------------------------------------------------------------------------------


def _pool(hours: int, dealers: int, per_dealer: int, rng: np.random.Generator) -> pl.DataFrame:
    sizes = rng.integers(max(1, per_dealer // 2), per_dealer * 3 // 2 + 1, dealers)
    initial = np.repeat(np.arange(dealers), sizes)
    arrivals = np.repeat(np.arange(dealers), rng.poisson(sizes * hours / STAY_HOURS))
    dealer = np.concatenate([initial, arrivals])
    arrive = np.concatenate([np.full(len(initial), -1), rng.integers(0, hours, len(arrivals))])
    n = len(dealer)
    depart = arrive + 1 + rng.exponential(STAY_HOURS, n).astype(np.int64)
    gap_start = np.where(rng.random(n) < 0.02, arrive + rng.integers(1, 96, n), -10)
    restock_at = np.where(rng.random(n) < 0.05, arrive + rng.integers(6, 60, n), 10**9)
    return pl.DataFrame(
        {
            "dealer": dealer,
            "arrive": arrive,
            "depart": depart,
            "gap_start": gap_start,
            "gap_end": gap_start + rng.integers(1, 9, n),
            "restock_at": restock_at,
        }
    )


def write_feeds(ctx: Context, incoming: Path, dealer_list: list[str]) -> tuple[int, int]:
    from bench import synthetic

    rng = np.random.default_rng(SEED)
    pool = _pool(ctx.hours, len(dealer_list), ctx.per_dealer, rng)
    dealers = np.array(dealer_list)[pool["dealer"].to_numpy()]
    attrs = synthetic.vehicles(np.arange(pool.height), dealers, START, SEED)
    arrived = pl.lit(START.date()) + pl.duration(days=pl.col("arrive").clip(0, None) // 24)
    attrs = pl.concat([attrs, pool], how="horizontal").with_columns(
        date_in_stock=pl.when(pl.col("arrive") >= 0).then(arrived).otherwise("date_in_stock")
    )
    dropout = rng.random((ctx.hours, len(dealer_list))) < 0.005
    rows = 0
    for h, as_of in enumerate(synthetic.hours(START, ctx.hours)):
        absent = np.array(dealer_list)[dropout[h]].tolist()
        present = attrs.filter(
            (pl.col("arrive") <= h)
            & (pl.col("depart") > h)
            & ~((pl.col("gap_start") <= h) & (pl.col("gap_end") > h))
            & ~pl.col("dealer_id").is_in(absent)
        ).with_columns(
            stock_no=pl.when(pl.col("restock_at") <= h).then(pl.col("stock_no") + "R").otherwise("stock_no")
        )
        feed = synthetic.as_feed(present[rng.permutation(present.height)], dirt=0.3, seed=SEED + h)
        synthetic.write_feed(feed, incoming / synthetic.feed_file_name("generic", as_of))
        rows += feed.height
    return ctx.hours, rows


def prepare(ctx: Context) -> dict:
    from bench import synthetic
    from dealer_assets.dms.domain.feed_names import partition_key_of

    root = ctx.out / "backfill"
    shutil.rmtree(root, ignore_errors=True)
    data, home = root / "data", root / "dagster_home"
    for folder in (data / "config", data / "feeds" / "incoming", home):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "deploy" / "dagster.dev.yaml", home / "dagster.yaml")
    dealer_list = synthetic.dealer_ids(ctx.dealers)
    (data / "config" / "dealer_feeds.yaml").write_text(
        synthetic.settings_yaml(
            dealer_list,
            tracking="{mode: for_days, days: 3}",
            auto_close="{mode: after_days, days: 3}",
            guard="{max_fraction: 0.5, min_active: 10}",
        )
    )
    feeds, rows = write_feeds(ctx, data / "feeds" / "incoming", dealer_list)
    last = START + timedelta(hours=ctx.hours - 1)
    return {
        "data_dir": str(data),
        "home": str(home),
        "first": partition_key_of(START),
        "last": partition_key_of(last),
        "cutoff": START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "feeds": feeds,
        "rows": rows,
    }


# --- the measured run (bench.child) ------------------------------------------------------------------------


def range_run(first: str, last: str, cutoff: str, profile: str = "") -> dict:
    import time

    started = time.perf_counter()
    from dagster import DagsterInstance

    from dealer_assets.core.env import DealerEnv, DealerPaths
    from dealer_assets.core.tags import (
        MODE_TAG,
        PARTITION_RANGE_END_TAG,
        PARTITION_RANGE_START_TAG,
        REPLAY_FROM_TAG,
    )
    from dealer_assets.definitions import build_definitions
    from dealer_assets.dms.defs.jobs import job_name

    paths = DealerPaths.from_env()
    job = build_definitions(DealerEnv.for_paths(paths)).resolve_job_def(job_name("generic"))
    instance = DagsterInstance.get()
    tags = {
        PARTITION_RANGE_START_TAG: first,
        PARTITION_RANGE_END_TAG: last,
        MODE_TAG: "replay",
        REPLAY_FROM_TAG: cutoff,
    }
    result: dict = {"setup_s": time.perf_counter() - started}
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    with stopwatch(result):
        run = job.execute_in_process(instance=instance, raise_on_error=False, tags=tags)
    if profiler is not None:
        profiler.disable()
        _write_profile(profiler, Path(profile))
    result.update(
        success=run.success,
        steps=_step_seconds(instance, run.run_id),
        event_log_entries=len(instance.all_logs(run.run_id)),
        **_warehouse_counts(paths.warehouse_url),
    )
    if not run.success:
        failure = next((e for e in run.all_events if e.is_step_failure), None)
        result["failure"] = str(failure.event_specific_data.error.message)[:500] if failure else "run failed"
    return result


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    starts, out = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
            out[event.step_key] = round(entry.timestamp - starts[event.step_key], 2)
    return out


def _warehouse_counts(url: str) -> dict:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        one = lambda sql: conn.exec_driver_sql(sql).scalar()  # noqa: E731
        counts = {
            "active": one("SELECT count(*) FROM service_requests WHERE status = 'active'"),
            "closed": one("SELECT count(*) FROM service_requests WHERE status = 'closed'"),
            "events": one("SELECT count(*) FROM service_request_events"),
            "rejected_rows": one("SELECT count(*) FROM rejected_rows"),
            "applied_feeds": one("SELECT count(*) FROM applied_feeds"),
        }
    engine.dispose()
    return counts


def _write_profile(profiler, path: Path) -> None:
    import io
    import pstats

    path.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(path))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(40)
    path.with_suffix(".txt").write_text(text.getvalue())


# --- orchestration (parent) --------------------------------------------------------------------------------


def run(ctx: Context) -> list[Figure]:
    setup = prepare(ctx)
    env = {
        "DEALER_DATA_DIR": setup["data_dir"],
        "DAGSTER_HOME": setup["home"],
        "DEALER_WAREHOUSE_URL": None,
        "DEALER_SETTINGS_FILE": None,
        "DEALER_HISTORY_START": None,
        "DEALER_EXECUTOR": None,
        "DEALER_SETTLE_SECONDS": "0",  # the feeds were written whole just before: no writer to wait for
    }
    profile = str(ctx.out / "backfill.prof") if ctx.profile else ""
    sample = run_child(
        "backfill:range_run",
        {"first": setup["first"], "last": setup["last"], "cutoff": setup["cutoff"], "profile": profile},
        env=env,
    )
    info = {**sample.info, "feeds": setup["feeds"], "feed_rows": setup["rows"]}
    error = "" if info.get("success") else f"run failed: {info.get('failure', '?')}"
    label = (
        f"one range run of dms_generic_feeds: {setup['feeds']} hourly feeds, {ctx.dealers} dealers, "
        f"{setup['rows']:,} rows (SQLite, temp DAGSTER_HOME; 1 run)"
    )
    return [
        Figure(
            "backfill.range_run",
            label,
            sample.seconds,
            "s",
            baseline=TARGET_SECONDS,
            baseline_label="target",
            target="< 1",
            peak_mib=sample.peak_mib,
            error=error,
            info=info,
        )
    ]
