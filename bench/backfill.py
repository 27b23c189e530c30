"""Benchmark 5: history at the speed of the work. H hourly feeds (default 720 = 30 days) of D dealers (default
100) go through the commands an operator runs, each in its own process on a fresh data root and Dagster home:
the first `dealer-assets catch-up` of every pending feed, then a full `dealer-assets replay`, on the embedded
defaults (SQLite instance and warehouse) and on PostgreSQL (instance and warehouse). The floor, measured in
the same run, is what the work itself needs: a polars loop that reads each feed and anti-joins the running
state, then one bulk insert of every change. `spread` feeds 180 of the same feeds once as hourly and once as
daily deliveries (the second spans 4,465 hours) through a first catch-up: the cost must follow the feeds.

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

from bench.measure import ROOT, BenchError, Context, Figure, run_child, stopwatch

START = datetime(2026, 10, 1, tzinfo=UTC)
SEED = 30
STAY_HOURS = 720.0
TARGET_RATIO = 15
SPREAD_FEEDS = 180
SPREAD_TARGET = 3


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


def write_feeds(
    hours: int, per_dealer: int, incoming: Path, dealer_list: list[str], spacing_hours: int = 1
) -> tuple[int, int]:
    """`hours` feeds of the inventory model, one every `spacing_hours` hours from START."""
    from bench import synthetic

    rng = np.random.default_rng(SEED)
    pool = _pool(hours, len(dealer_list), per_dealer, rng)
    dealers = np.array(dealer_list)[pool["dealer"].to_numpy()]
    attrs = synthetic.vehicles(np.arange(pool.height), dealers, START, SEED)
    arrived = pl.lit(START.date()) + pl.duration(days=pl.col("arrive").clip(0, None) // 24)
    attrs = pl.concat([attrs, pool], how="horizontal").with_columns(
        date_in_stock=pl.when(pl.col("arrive") >= 0).then(arrived).otherwise("date_in_stock")
    )
    dropout = rng.random((hours, len(dealer_list))) < 0.005
    rows = 0
    for h in range(hours):
        as_of = START + timedelta(hours=h * spacing_hours)
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
    return hours, rows


def prepare_feeds(ctx: Context, name: str, hours: int, spacing_hours: int = 1) -> dict:
    """Feed files and settings written once; every scenario copies them into a fresh data root."""
    from bench import synthetic

    root = ctx.out / "backfill" / name
    shutil.rmtree(root, ignore_errors=True)
    (root / "feeds").mkdir(parents=True)
    dealer_list = synthetic.dealer_ids(ctx.dealers)
    (root / "dealer_feeds.yaml").write_text(
        synthetic.settings_yaml(
            dealer_list,
            tracking="{mode: for_days, days: 3}",
            auto_close="{mode: after_days, days: 3}",
            guard="{max_fraction: 0.5, min_active: 10}",
        )
    )
    feeds, rows = write_feeds(hours, ctx.per_dealer, root / "feeds", dealer_list, spacing_hours)
    span = (hours - 1) * spacing_hours + 1
    return {"root": str(root), "feeds": feeds, "rows": rows, "span_hours": span}


def fresh_root(setup: dict, name: str) -> dict:
    """A data root whose drop zone holds every feed, and an empty Dagster home beside it."""
    base = Path(setup["root"]) / name
    shutil.rmtree(base, ignore_errors=True)
    data, home = base / "data", base / "dagster_home"
    (data / "config").mkdir(parents=True)
    home.mkdir(parents=True)
    shutil.copyfile(Path(setup["root"]) / "dealer_feeds.yaml", data / "config" / "dealer_feeds.yaml")
    shutil.copytree(Path(setup["root"]) / "feeds", data / "feeds" / "incoming")
    return {"data_dir": str(data), "home": str(home)}


# --- measured (bench.child) --------------------------------------------------------------------------------


def floor(feeds: str, url: str) -> dict:
    """Read each feed (every column, as text) in as-of order and anti-join it with the running state
    (arrivals, departures), then insert every change in one bulk insert: what any tool must at least do with
    this history."""
    from bench.steady import _bulk_insert
    from dealer_assets.core.warehouse import engine_for

    files = sorted(Path(feeds).iterdir())
    engine = engine_for(url)
    result: dict = {}
    with stopwatch(result):
        state = pl.DataFrame(schema={"vin": pl.String, "dealer_id": pl.String, "stock_no": pl.String})
        changes = []
        for path in files:
            feed = (
                pl.read_csv(path, infer_schema=False)
                .rename({"DealerID": "dealer_id", "VIN": "vin", "StockNo": "stock_no"})
                .select(state.columns)
            )
            arrived = feed.join(state, on="vin", how="anti")
            departed = state.join(feed, on="vin", how="anti")
            changes += [arrived, departed]
            state = pl.concat([state.join(departed, on="vin", how="anti"), arrived])
        every = (
            pl.concat(changes)
            .with_row_index("n")
            .select(pl.format("floor-{}", "n").alias("sr_id"), "vin", "dealer_id", "stock_no")
        )
        result["rows"] = _bulk_insert(engine, every)
    engine.dispose()
    return result


def command(args: list[str], env: dict) -> dict:
    """`dealer-assets ARGS` in its own process, start to exit, then what it left in the instance."""
    import os
    import resource
    import subprocess
    import sys

    full = {**os.environ, **env}
    for key in ("DEALER_SETTINGS_FILE", "DEALER_EXECUTOR", "DEALER_WAREHOUSE_URL"):
        if key not in env:
            full.pop(key, None)
    before = _run_ids(env)
    result: dict = {}
    with stopwatch(result):
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("dealer-assets")), *args],
            env=full,
            capture_output=True,
            text=True,
        )
    if proc.returncode not in (0, 3):
        raise BenchError(f"dealer-assets {' '.join(args)} exited {proc.returncode}: {proc.stderr[-800:]}")
    result["progress_lines"] = sum("feeds/s" in line for line in (proc.stdout + proc.stderr).splitlines())
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result.update(_instance_counts(env, before))
    result.update(
        _warehouse_counts(
            full.get("DEALER_WAREHOUSE_URL") or f"sqlite:///{env['DEALER_DATA_DIR']}/warehouse.db"
        )
    )
    return result


def _run_ids(env: dict) -> set[str]:
    import os

    from dagster import DagsterInstance

    os.environ.update(env)
    with DagsterInstance.get() as instance:
        return {r.run_id for r in instance.get_runs()}


def _instance_counts(env: dict, before: set[str]) -> dict:
    """The runs the command launched and the Dagster events they wrote, by kind."""
    import os

    from dagster import DagsterInstance

    os.environ.update(env)
    with DagsterInstance.get() as instance:
        runs = [r for r in instance.get_runs() if r.run_id not in before]
        entries = [e for r in runs for e in instance.all_logs(r.run_id)]
    kinds: dict[str, int] = {}
    for entry in entries:
        kind = entry.dagster_event.event_type_value if entry.dagster_event else "log"
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"runs": len(runs), "event_log_entries": len(entries), "events_by_kind": kinds}


COUNTS = {
    "active": "SELECT count(*) FROM service_requests WHERE status = 'active'",
    "closed": "SELECT count(*) FROM service_requests WHERE status = 'closed'",
    "events": "SELECT count(*) FROM service_request_events",
    "rejected_rows": "SELECT count(*) FROM rejected_rows",
    "applied_feeds": "SELECT count(*) FROM applied_feeds",
}


def _warehouse_counts(url: str) -> dict:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        counts = {name: conn.exec_driver_sql(sql).scalar() for name, sql in COUNTS.items()}
    engine.dispose()
    return counts


# --- orchestration (parent) --------------------------------------------------------------------------------


def _env(roots: dict, history_start: str, url: str | None, pg_home: dict | None) -> dict:
    env = {
        "DEALER_DATA_DIR": roots["data_dir"],
        "DAGSTER_HOME": roots["home"],
        "DEALER_HISTORY_START": history_start,
        "DEALER_SETTLE_SECONDS": "0",  # the feeds were written whole before: no writer to wait for
    }
    if url:
        env["DEALER_WAREHOUSE_URL"] = url
    if pg_home:
        shutil.copyfile(ROOT / "deploy" / "dagster.yaml", Path(roots["home"]) / "dagster.yaml")
        env.update(pg_home)
    else:
        shutil.copyfile(ROOT / "deploy" / "dagster.dev.yaml", Path(roots["home"]) / "dagster.yaml")
    return env


def _history(setup: dict, name: str, pg: _Databases | None, first_only: bool = False) -> dict[str, dict]:
    """The first catch-up of every feed, then (unless `first_only`) a full replay and, on SQLite, a what-if,
    as `dealer-assets` runs them."""
    roots = fresh_root(setup, name)
    url = pg_home = None
    if pg is not None:
        url, dagster_url = pg.new(f"{name}_wh"), pg.new(f"{name}_dagster")
        pg_home = pg.dagster_env(dagster_url)
    env = _env(roots, START.strftime("%Y-%m-%dT%H:%M:%SZ"), url, pg_home)
    first = run_child("backfill:command", {"args": ["catch-up"], "env": env})
    if first_only:
        return {"catch_up": {"seconds": first.seconds, **first.info}}
    replay = run_child("backfill:command", {"args": ["replay"], "env": env})
    out = {
        "catch_up": {"seconds": first.seconds, **first.info},
        "replay": {"seconds": replay.seconds, **replay.info},
    }
    if pg is None:
        data = Path(roots["data_dir"])
        changed = data / "what_if_settings.yaml"
        settings = (data / "config" / "dealer_feeds.yaml").read_text()
        changed.write_text(settings.replace("{mode: after_days, days: 3}", "{mode: immediately}"))
        args = ["what-if", "--settings", str(changed), "--out", str(data / "what_if_out")]
        what_if = run_child("backfill:command", {"args": args, "env": env})
        out["what_if"] = {"seconds": what_if.seconds, **what_if.info}
    return out


class _Databases:
    """Fresh PostgreSQL databases beside DEALER_BENCH_POSTGRES_URL, dropped at the end."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.base = sa.engine.make_url(url)
        self.admin = sa.create_engine(self.base, isolation_level="AUTOCOMMIT")
        self.made: list[str] = []

    def new(self, tag: str) -> str:
        name = f"bench_backfill_{tag}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return self.base.set(database=name).render_as_string(hide_password=False)

    def dagster_env(self, url: str) -> dict:
        import sqlalchemy as sa

        u = sa.engine.make_url(url)
        return {
            "DAGSTER_PG_HOST": u.host or "127.0.0.1",
            "DAGSTER_PG_PORT": str(u.port or 5432),
            "DAGSTER_PG_USERNAME": u.username or "postgres",
            "DAGSTER_PG_PASSWORD": u.password or "",
            "DAGSTER_PG_DB": u.database or "",
        }

    def drop(self) -> None:
        with self.admin.connect() as conn:
            for name in self.made:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


def _figure(
    name: str, label: str, sample: dict, floor_s: float, target: str = f"<= {TARGET_RATIO}"
) -> Figure:
    events = sample.get("event_log_entries", 0)
    return Figure(
        name,
        f"{label} ({sample.get('runs', '?')} run(s), {events:,} Dagster events)",
        sample["seconds"],
        "s",
        baseline=floor_s,
        baseline_label="floor: polars read + anti-joins per feed, one bulk insert",
        target=target,
        peak_mib=sample.get("peak_mib"),
        info=sample,
    )


def run(ctx: Context) -> list[Figure]:
    setup = prepare_feeds(ctx, "month", ctx.hours)
    what = f"{setup['feeds']} hourly feeds, {ctx.dealers} dealers, {setup['rows']:,} rows"
    wh = str(ctx.out / "backfill" / "floor.db")
    Path(wh).unlink(missing_ok=True)
    floor_s = run_child(
        "backfill:floor", {"feeds": str(Path(setup["root"]) / "feeds"), "url": f"sqlite:///{wh}"}
    ).seconds
    figures = []
    sqlite = _history(setup, "sqlite", None)
    figures.append(
        _figure(
            "backfill.catch_up.sqlite", f"first `catch-up` of {what} (SQLite)", sqlite["catch_up"], floor_s
        )
    )
    figures.append(
        _figure("backfill.replay.sqlite", "`replay` of all of it (SQLite)", sqlite["replay"], floor_s)
    )
    figures.append(_what_if_figure(sqlite))
    pg = _Databases(ctx.pg_url)
    try:
        postgres = _history(setup, "postgres", pg)
    finally:
        pg.drop()
    figures.append(
        _figure(
            "backfill.catch_up.postgres",
            f"first `catch-up` of {what} (PostgreSQL)",
            postgres["catch_up"],
            floor_s,
        )
    )
    figures.append(
        _figure("backfill.replay.postgres", "`replay` of all of it (PostgreSQL)", postgres["replay"], floor_s)
    )
    figures.append(_spread(ctx))
    return figures


def _what_if_figure(history: dict) -> Figure:
    """`what-if` of the whole month under auto close `immediately`, against the replay of the same range."""
    sample, replay = history["what_if"], history["replay"]
    return Figure(
        "backfill.what_if.sqlite",
        "`what-if` of all of it under other settings (auto close immediately), writing nothing but its CSVs",
        sample["seconds"],
        "s",
        baseline=replay["seconds"],
        baseline_label="`replay` of the same range",
        target="<= 1",
        peak_mib=sample.get("peak_mib"),
        baseline_peak_mib=replay.get("peak_mib"),
        info=sample,
    )


def _spread(ctx: Context) -> Figure:
    """The same feeds delivered daily (spanning months) and hourly: a first catch-up of each."""
    feeds = min(SPREAD_FEEDS, ctx.hours)
    hourly = _history(prepare_feeds(ctx, "hourly", feeds, 1), "spread_hourly", None, first_only=True)[
        "catch_up"
    ]
    daily_setup = prepare_feeds(ctx, "daily", feeds, 24)
    daily = _history(daily_setup, "spread_daily", None, first_only=True)["catch_up"]
    return Figure(
        "backfill.spread.sqlite",
        f"first `catch-up` of {feeds} daily feeds spanning {daily_setup['span_hours']:,} hours "
        f"({daily.get('event_log_entries', 0):,} Dagster events) vs the same {feeds} feeds hourly "
        f"({hourly.get('event_log_entries', 0):,} events)",
        daily["seconds"],
        "s",
        baseline=hourly["seconds"],
        baseline_label=f"{feeds} hourly feeds",
        target=f"<= {SPREAD_TARGET}",
        info={"daily": daily, "hourly": hourly},
    )
