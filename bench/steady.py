"""Benchmark 7: the steady state. A large, already reconciled inventory (N vehicles across 1,000 dealers) and
one hourly feed that barely changes it: 0.5% arrivals, 0.5% departures, 0.2% stock number changes.

Every figure runs the project's own step functions (ingest, normalize, reconcile) on a fresh copy of the
reconciled data root and warehouse, from the file in the drop zone to committed warehouse rows, on the
embedded default (SQLite) and on PostgreSQL. Baselines are measured in the same run: a bare `polars.read_csv`
of the feed, the anti-joins against the state, a bulk insert (SQLite) or COPY (PostgreSQL) of exactly the SR
rows that changed, and the sum of the three as the floor of the whole step.

A day of such hours then reports rows written per feed, the warehouse's growth and the checkpoints' disk use.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench import synthetic
from bench.measure import BenchError, Context, Figure, run_child, stopwatch
from bench.warehouse import postgres_databases

SOURCE = "generic"
START = datetime(2026, 10, 1, tzinfo=UTC)
SEED = 2026
ARRIVALS, DEPARTURES, STOCK_CHANGES = 0.005, 0.005, 0.002
DAY_HOURS = 24
"""Hours in the `day` figure; `--hours` lowers it (`--quick` runs 6)."""


def _day_hours(ctx: Context) -> int:
    return min(DAY_HOURS, ctx.hours)


SETTINGS = "config/dealer_feeds.yaml"


def _as_of(hour: int) -> datetime:
    return START + timedelta(hours=hour)


def _feed(feeds: str, hour: int) -> Path:
    return Path(feeds) / synthetic.feed_file_name(SOURCE, _as_of(hour))


def _paths(data_dir: str, url: str | None):
    from dealer_assets.core.env import DealerPaths, default_warehouse_url

    root = Path(data_dir)
    return DealerPaths(
        data_dir=root,
        settings_file=root / SETTINGS,
        history_start=START,
        warehouse_url=url or default_warehouse_url(root),
        settle_seconds=0,
    )


def _stage(paths, feeds: str, hour: int) -> None:
    paths.incoming.mkdir(parents=True, exist_ok=True)
    shutil.copy2(_feed(feeds, hour), paths.incoming / _feed(feeds, hour).name)
    old = time.time() - 60
    os.utime(paths.incoming / _feed(feeds, hour).name, (old, old))


def _engine(paths):
    from dealer_assets.core.warehouse import engine_for

    engine = engine_for(paths.warehouse_url)
    with engine.connect() as probe:  # migrated and pooled before the clock starts, as in a running process
        probe.exec_driver_sql("SELECT 1")
    return engine


def _run_hour(paths, engine, hour: int):
    """The step a run performs for one hourly partition: ingest, normalize, reconcile (no Dagster)."""
    from dealer_assets.dms.apply_feeds import reconcile
    from dealer_assets.dms.ingest import ingest_raw_feeds
    from dealer_assets.dms.normalize_feeds import normalize_window
    from dealer_assets.dms.settings import load_settings

    settings = load_settings(paths.settings_file)
    source = settings.sources[SOURCE]
    start, end = _as_of(hour), _as_of(hour + 1)
    ingest_raw_feeds(paths, SOURCE, source, set(settings.sources), engine, start, end, datetime.now(UTC))
    normalize_window(paths, SOURCE, source, engine, start, end)
    return reconcile(paths, SOURCE, source, engine, start=start, end=end, mode="incremental")


def _timed_hour(paths, engine, feeds: str, hour: int) -> tuple[dict, object]:
    """Stage the hour's feed, run its step under the stopwatch, and insist that the feed was applied."""
    _stage(paths, feeds, hour)
    result: dict = {}
    with stopwatch(result):
        report = _run_hour(paths, engine, hour)
    if report.applied != [_feed(feeds, hour).name]:
        raise BenchError(f"hour {hour} was not applied: {report.applied}")
    return result, report


def _state_and_vehicles(paths, engine, feeds: str, hour: int):
    from dealer_assets.dms.domain.parsing import parse_feed
    from dealer_assets.dms.domain.vehicles import FeedRef, normalize_feed
    from dealer_assets.dms.ledger import read_applied, starting_state
    from dealer_assets.dms.settings import load_settings

    source = load_settings(paths.settings_file).sources[SOURCE]
    with engine.connect() as conn:
        applied = read_applied(conn, SOURCE)
    state = starting_state(paths, SOURCE, source, applied, None).state
    feed = _feed(feeds, hour)
    parsed = parse_feed(feed, source.file_layout)
    vehicles = normalize_feed(parsed.rows, source.file_layout, FeedRef(SOURCE, _as_of(hour), feed.name))
    return source, state, vehicles.vehicles


# --- measured steps (run in bench.child) -------------------------------------------------------------------


def make_feeds(feeds: str, rows: int, dealers: int, hours: int) -> dict:
    """Hour 0's inventory and `hours` hourly feeds after it, each churned from the one before."""
    rng = np.random.default_rng(SEED)
    arrivals, departures = max(1, round(rows * ARRIVALS)), max(1, round(rows * DEPARTURES))
    stock = max(1, round(rows * STOCK_CHANGES))
    pool_size = rows + arrivals * hours
    names = np.array(synthetic.dealer_ids(dealers))
    pool = synthetic.vehicles(np.arange(pool_size), names[rng.integers(0, dealers, pool_size)], START, SEED)
    current, next_new = pool.head(rows), rows
    for hour in range(hours + 1):
        if hour:
            keep = np.ones(current.height, dtype=bool)
            keep[rng.choice(current.height, departures, replace=False)] = False
            changed = np.zeros(current.height, dtype=bool)
            changed[rng.choice(np.flatnonzero(keep), stock, replace=False)] = True
            current = pl.concat(
                [
                    current.with_columns(
                        stock_no=pl.when(pl.Series(changed))
                        .then(pl.format("{}-R{}", pl.col("stock_no"), pl.lit(hour)))
                        .otherwise(pl.col("stock_no"))
                    ).filter(pl.Series(keep)),
                    pool.slice(next_new, arrivals),
                ]
            )
            next_new += arrivals
        synthetic.write_feed(synthetic.as_feed(current), _feed(feeds, hour))
    (Path(feeds) / "settings.yaml").write_text(synthetic.settings_yaml(list(names)))
    return {"seconds": 0.0, "arrivals": arrivals, "departures": departures, "stock_changes": stock}


def load(
    data_dir: str, url: str | None, feeds: str, state_out: str, vehicles_out: str = "", changed_out: str = ""
) -> dict:
    """The reconciled inventory of hour 0, and the inputs the baselines of hour 1 read."""
    from dealer_assets.dms.domain.rules import apply_feed
    from dealer_assets.dms.domain.vehicles import FeedRef

    paths = _paths(data_dir, url)
    paths.settings_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(feeds) / "settings.yaml", paths.settings_file)
    engine = _engine(paths)
    result, _ = _timed_hour(paths, engine, feeds, 0)
    if state_out:
        source, state, vehicles = _state_and_vehicles(paths, engine, feeds, 1)
        state.write_parquet(state_out)
        vehicles.write_parquet(vehicles_out)
        outcome = apply_feed(state, vehicles, source, FeedRef(SOURCE, _as_of(1), _feed(feeds, 1).name))
        touched = outcome.events.select("sr_id").vstack(
            outcome.state.filter(pl.col("missing_since") == _as_of(1)).select("sr_id")
        )
        outcome.state.join(touched.unique(), on="sr_id", how="semi").write_parquet(changed_out)
    engine.dispose()
    return result


def parse(feed: str, settings: str) -> dict:
    from dealer_assets.dms.domain.parsing import parse_feed
    from dealer_assets.dms.domain.vehicles import FeedRef, normalize_feed
    from dealer_assets.dms.settings import parse_settings

    layout = parse_settings(Path(settings).read_text()).sources[SOURCE].file_layout
    result: dict = {}
    with stopwatch(result):
        parsed = parse_feed(Path(feed), layout)
        normalized = normalize_feed(parsed.rows, layout, FeedRef(SOURCE, _as_of(1), Path(feed).name))
    result.update(vehicles=normalized.vehicles.height, rejected=normalized.rejected.height)
    return result


def read_csv(feed: str) -> dict:
    result: dict = {}
    with stopwatch(result):
        frame = pl.read_csv(feed)
    result["rows"] = frame.height
    return result


def reconcile_step(data_dir: str, url: str | None, feeds: str) -> dict:
    """The state as a run finds it (checkpoint, verified against the ledger) and one feed applied to it."""
    from dealer_assets.dms.domain.rules import apply_feed
    from dealer_assets.dms.domain.vehicles import FeedRef
    from dealer_assets.dms.ledger import read_applied, starting_state
    from dealer_assets.dms.settings import load_settings

    paths = _paths(data_dir, url)
    engine = _engine(paths)
    source = load_settings(paths.settings_file).sources[SOURCE]
    _, _, vehicles = _state_and_vehicles(paths, engine, feeds, 1)
    result: dict = {}
    with stopwatch(result):
        with engine.connect() as conn:
            applied = read_applied(conn, SOURCE)
        state = starting_state(paths, SOURCE, source, applied, None).state
        outcome = apply_feed(state, vehicles, source, FeedRef(SOURCE, _as_of(1), _feed(feeds, 1).name))
    result.update(events=outcome.events.height, state=outcome.state.height)
    engine.dispose()
    return result


def anti_joins(state: str, vehicles: str) -> dict:
    """The least work that finds the creates, the missing and the stock changes: a read and three joins."""
    result: dict = {}
    with stopwatch(result):
        result.update(_anti_joins(pl.read_parquet(state), pl.read_parquet(vehicles)))
    return result


def _anti_joins(state: pl.DataFrame, vehicles: pl.DataFrame) -> dict:
    active = state.lazy().filter(pl.col("status") == "active").select("vin", "dealer_id", "stock_no")
    feed = vehicles.lazy().select("vin", "dealer_id", "stock_no")
    creates = feed.join(active, on="vin", how="anti")
    missing = active.join(feed.select("dealer_id").unique(), on="dealer_id", how="semi").join(
        feed, on="vin", how="anti"
    )
    stock = feed.join(active.select("vin", pl.col("stock_no").alias("_old")), on="vin").filter(
        pl.col("stock_no").ne_missing(pl.col("_old"))
    )
    found = pl.collect_all([creates, missing, stock])
    return {"creates": found[0].height, "missing": found[1].height, "stock_changes": found[2].height}


def write_step(data_dir: str, url: str | None, feeds: str) -> dict:
    """`write_outcome` of hour 1's outcome, up to and including the commit."""
    from dealer_assets.dms.domain.rules import apply_feed
    from dealer_assets.dms.domain.vehicles import FeedRef
    from dealer_assets.dms.state_writes import LATE_SCHEMA, applied_feed_rows, write_outcome

    paths = _paths(data_dir, url)
    engine = _engine(paths)
    source, state, vehicles = _state_and_vehicles(paths, engine, feeds, 1)
    ref = FeedRef(SOURCE, _as_of(1), _feed(feeds, 1).name)
    outcome = apply_feed(state, vehicles, source, ref)
    applied = applied_feed_rows(SOURCE, [(ref.as_of, ref.file_name, "0" * 64, vehicles.height)], outcome)
    result: dict = {}
    with stopwatch(result), engine.begin() as conn:
        written = write_outcome(
            conn,
            SOURCE,
            outcome,
            state,
            replay_from=None,
            applied=applied,
            late=pl.DataFrame(schema=LATE_SCHEMA),
        )
    result["rows_written"] = sum(written.rows.values())
    result["sr_rows"] = written.rows["service_request_state"]
    engine.dispose()
    return result


def _floor_table(conn) -> str:
    """An empty table shaped like the contract's `service_requests` (primary key included)."""
    import sqlalchemy as sa

    from dealer_assets.dms.domain.state import SR_SCHEMA

    columns = ", ".join(
        f'"{c}" {"TIMESTAMP" if isinstance(t, pl.Datetime) else "TEXT"}' for c, t in SR_SCHEMA.items()
    )
    conn.execute(sa.text("DROP TABLE IF EXISTS floor_service_requests"))
    conn.execute(sa.text(f'CREATE TABLE floor_service_requests ({columns}, PRIMARY KEY ("sr_id"))'))
    return "floor_service_requests"


def _bulk_insert(engine, frame: pl.DataFrame) -> int:
    """COPY (PostgreSQL) or one executemany (SQLite) of `frame` into the floor table, committed."""
    with engine.begin() as conn:
        table = _floor_table(conn)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        cols = ", ".join(f'"{c}"' for c in frame.columns)
        if conn.dialect.name == "postgresql":
            with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(frame.write_csv(include_header=False))
        else:
            marks = ", ".join("?" for _ in frame.columns)
            text = frame.with_columns(pl.selectors.datetime().dt.strftime("%Y-%m-%d %H:%M:%S.%6f"))
            raw.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", text.rows())
    return frame.height


def insert_changed(url: str, changed: str) -> dict:
    from dealer_assets.core.warehouse import engine_for

    engine = engine_for(url)
    frame = pl.read_parquet(changed)
    result: dict = {}
    with stopwatch(result):
        result["rows"] = _bulk_insert(engine, frame)
    engine.dispose()
    return result


def floor(feed: str, state: str, vehicles: str, changed: str, url: str) -> dict:
    """The physical floor of the whole step: read the feed, the joins against the state, insert the changes."""
    from dealer_assets.core.warehouse import engine_for

    engine = engine_for(url)
    result: dict = {}
    with stopwatch(result):
        pl.read_csv(feed)
        result.update(_anti_joins(pl.read_parquet(state), pl.read_parquet(vehicles)))
        result["rows"] = _bulk_insert(engine, pl.read_parquet(changed))
    engine.dispose()
    return result


def whole_step(data_dir: str, url: str | None, feeds: str) -> dict:
    paths = _paths(data_dir, url)
    engine = _engine(paths)
    result, report = _timed_hour(paths, engine, feeds, 1)
    result["rows_written"] = sum(report.written.values())
    result["written"] = report.written
    engine.dispose()
    return result


def catch_up(data_dir: str, url: str | None, feeds: str) -> dict:
    """`dealer-assets catch-up` as an operator or the sensor's run would, process start to exit."""
    paths = _paths(data_dir, url)
    _stage(paths, feeds, 1)
    env = {
        **os.environ,
        "DEALER_DATA_DIR": data_dir,
        "DEALER_SETTLE_SECONDS": "0",
        "DEALER_HISTORY_START": START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "DAGSTER_HOME": str(Path(data_dir) / "dagster_home"),
    }
    env.pop("DEALER_SETTINGS_FILE", None)
    env.pop("DEALER_EXECUTOR", None)
    if url:
        env["DEALER_WAREHOUSE_URL"] = url
    else:
        env.pop("DEALER_WAREHOUSE_URL", None)
    command = [str(Path(sys.executable).with_name("dealer-assets")), "catch-up"]
    result: dict = {}
    with stopwatch(result):
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"catch-up exited {proc.returncode}: {(proc.stdout + proc.stderr)[-800:]}")
    return result


def dagster_home(data_dir: str) -> dict:
    """A Dagster instance as a deployment has one (created once, before the day being measured)."""
    import dagster as dg

    home = Path(data_dir) / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:  # its storage created, as a deployment's is
        instance.get_runs_count()
    return {"seconds": 0.0}


def day(data_dir: str, url: str | None, feeds: str, hours: int) -> dict:
    """`hours` steady hours one after another: rows written per feed, warehouse growth, checkpoints' disk."""
    paths = _paths(data_dir, url)
    engine = _engine(paths)
    before = _warehouse_bytes(engine, paths)
    written, seconds = [], []
    for hour in range(1, hours + 1):
        _stage(paths, feeds, hour)
        started = time.perf_counter()
        report = _run_hour(paths, engine, hour)
        seconds.append(time.perf_counter() - started)
        written.append(sum(report.written.values()))
    after = _warehouse_bytes(engine, paths)
    engine.dispose()
    checkpoints = sum(p.stat().st_size for p in (paths.state / SOURCE).rglob("*") if p.is_file())
    return {
        "seconds": sum(seconds),
        "median_hour_s": statistics.median(seconds),
        "rows_per_feed": statistics.median(written),
        "growth_mib": (after - before) / 2**20,
        "checkpoint_mib": checkpoints / 2**20,
    }


def _warehouse_bytes(engine, paths) -> int:
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar())
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db = Path(engine.url.database)
    return sum(Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists())


# --- orchestration (parent) --------------------------------------------------------------------------------


def _prepare(ctx: Context) -> dict:
    if "steady" in ctx.cache:
        return ctx.cache["steady"]
    base = ctx.dir("steady")
    dealers = max(2, min(1000, ctx.rows // 1000))
    feeds = base / f"feeds-{ctx.rows}-{dealers}-{_day_hours(ctx)}"
    if not (feeds / "settings.yaml").exists():
        shutil.rmtree(feeds, ignore_errors=True)
        feeds.mkdir(parents=True)
        run_child(
            "steady:make_feeds",
            {"feeds": str(feeds), "rows": ctx.rows, "dealers": dealers, "hours": _day_hours(ctx)},
        )
    sqlite_root = base / "sqlite-base"
    shutil.rmtree(sqlite_root, ignore_errors=True)
    inputs = {k: str(base / f"{k}.parquet") for k in ("state", "vehicles", "changed")}
    loaded = run_child(
        "steady:load",
        {
            "data_dir": str(sqlite_root),
            "url": None,
            "feeds": str(feeds),
            "state_out": inputs["state"],
            "vehicles_out": inputs["vehicles"],
            "changed_out": inputs["changed"],
        },
    )
    run_child("steady:dagster_home", {"data_dir": str(sqlite_root)})
    ctx.cache["steady"] = {
        "feeds": str(feeds),
        "sqlite_root": sqlite_root,
        "dealers": dealers,
        "load_s": loaded.seconds,
        **inputs,
    }
    return ctx.cache["steady"]


def _fresh_copy(base: Path, name: str) -> str:
    target = base.parent / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(base, target)
    return str(target)


def _backend_runs(ctx: Context, setup: dict, url: str | None, base: Path, floor: dict) -> dict[str, list]:
    """Each measured task `ctx.repeat` times, every run on a fresh copy of the reconciled data root. The floor
    runs in the same rounds, just before the tasks, so that the machine's drift weighs on both alike."""
    tasks = ("reconcile_step", "write_step", "whole_step", "catch_up")
    runs: dict[str, list] = {k: [] for k in ("floor", *tasks)}
    for _ in range(ctx.repeat):
        runs["floor"].append(run_child("steady:floor", floor))
        for task in tasks:
            data_dir = _fresh_copy(base, "run")
            run_url = url() if callable(url) else url
            try:
                runs[task].append(
                    run_child(
                        f"steady:{task}", {"data_dir": data_dir, "url": run_url, "feeds": setup["feeds"]}
                    )
                )
            finally:
                if callable(url):
                    url.drop(run_url)
    data_dir = _fresh_copy(base, "run")
    run_url = url() if callable(url) else url
    try:
        runs["day"] = [
            run_child(
                "steady:day",
                {"data_dir": data_dir, "url": run_url, "feeds": setup["feeds"], "hours": _day_hours(ctx)},
            )
        ]
    finally:
        if callable(url):
            url.drop(run_url)
    shutil.rmtree(data_dir, ignore_errors=True)
    return runs


class _PostgresCopies:
    """Fresh databases copied from one that holds the reconciled hour 0 (CREATE DATABASE ... TEMPLATE)."""

    def __init__(self, ctx: Context, template_url: str) -> None:
        import sqlalchemy as sa

        self.server = sa.create_engine(ctx.pg_url, isolation_level="AUTOCOMMIT")
        self.template = sa.engine.make_url(template_url).database
        self.base_url = template_url
        self.count = 0

    def __call__(self) -> str:
        import sqlalchemy as sa

        self.count += 1
        name = f"{self.template}_run{self.count}"
        with self.server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return sa.engine.make_url(self.base_url).set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        import sqlalchemy as sa

        from dealer_assets.core.warehouse import dispose_engines

        dispose_engines()
        name = sa.engine.make_url(url).database
        with self.server.connect() as conn:
            conn.exec_driver_sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')


def _figures(ctx: Context, setup: dict, backend: str, runs: dict, baselines: dict) -> list[Figure]:
    def med(key: str) -> float:
        return statistics.median(r.seconds for r in runs[key])

    def top(key: str) -> float:
        return max(r.peak_mib for r in runs[key])

    day_info = runs["day"][0].info
    step = med("whole_step")
    return [
        Figure(
            f"steady.reconcile.{backend}",
            "reconciliation: the state from its checkpoint + apply_feed",
            med("reconcile_step"),
            "s",
            baseline=statistics.median(r.seconds for r in baselines["anti_joins"]),
            baseline_label="read state + anti-joins",
            peak_mib=top("reconcile_step"),
            baseline_peak_mib=max(r.peak_mib for r in baselines["anti_joins"]),
        ),
        Figure(
            f"steady.write.{backend}",
            f"warehouse write (write_outcome, committed): {runs['write_step'][0].info['rows_written']:,} rows, "
            f"{runs['write_step'][0].info['sr_rows']:,} of them SRs",
            med("write_step"),
            "s",
            baseline=statistics.median(r.seconds for r in baselines["insert"]),
            baseline_label=f"bulk insert of the {baselines['insert'][0].info['rows']:,} changed SRs",
        ),
        Figure(
            f"steady.step.{backend}",
            "whole step, drop zone to committed rows (ingest + normalize + reconcile, no Dagster)",
            step,
            "s",
            baseline=med("floor"),
            baseline_label="floor: read_csv + anti-joins + insert of the changes",
            target="<= 3",
            peak_mib=top("whole_step"),
            baseline_peak_mib=top("floor"),
            info={"written": runs["whole_step"][0].info["written"]},
        ),
        Figure(
            f"steady.dagster.{backend}",
            f"`dealer-assets catch-up` for the hour (process start to exit): adds {med('catch_up') - step:.1f} s",
            med("catch_up"),
            "s",
            baseline=step,
            baseline_label="the whole step without Dagster",
        ),
        Figure(
            f"steady.day.{backend}",
            f"{_day_hours(ctx)} steady hours: {day_info['rows_per_feed']:,.0f} rows written per feed (median), "
            f"warehouse +{day_info['growth_mib']:.0f} MiB, checkpoints {day_info['checkpoint_mib']:.0f} MiB on disk",
            day_info["median_hour_s"],
            "s",
            info=day_info,
        ),
    ]


def run(ctx: Context) -> list[Figure]:
    setup = _prepare(ctx)
    feed, settings = str(_feed(setup["feeds"], 1)), str(Path(setup["feeds"]) / "settings.yaml")
    parse_runs, read_runs = [], []
    for _ in range(ctx.repeat):  # in turn, so that the machine's drift weighs on both alike
        read_runs.append(run_child("steady:read_csv", {"feed": feed}))
        parse_runs.append(run_child("steady:parse", {"feed": feed, "settings": settings}))
    joins = [
        run_child("steady:anti_joins", {"state": setup["state"], "vehicles": setup["vehicles"]})
        for _ in range(ctx.repeat)
    ]
    figures = [
        Figure(
            "steady.parse",
            f"parse + normalize one hourly feed ({read_runs[0].info['rows']:,} rows)",
            statistics.median(r.seconds for r in parse_runs),
            "s",
            baseline=statistics.median(r.seconds for r in read_runs),
            baseline_label="bare polars.read_csv",
            target="<= 2.5",
            peak_mib=max(r.peak_mib for r in parse_runs),
            baseline_peak_mib=max(r.peak_mib for r in read_runs),
        )
    ]
    floor_db = Path(ctx.dir("steady")) / "floor.db"
    figures += _backend(ctx, setup, "sqlite", setup["sqlite_root"], None, f"sqlite:///{floor_db}", joins)
    with ExitStack() as stack:
        try:
            database = stack.enter_context(postgres_databases(ctx))
        except BenchError as exc:
            return [*figures, Figure("steady.step.postgres", "PostgreSQL", None, "s", error=str(exc))]
        template_url, floor_url = stack.enter_context(database()), stack.enter_context(database())
        pg_root = Path(ctx.dir("steady")) / "postgres-base"
        shutil.rmtree(pg_root, ignore_errors=True)
        run_child(
            "steady:load",
            {"data_dir": str(pg_root), "url": template_url, "feeds": setup["feeds"], "state_out": ""},
        )
        run_child("steady:dagster_home", {"data_dir": str(pg_root)})
        copies = _PostgresCopies(ctx, template_url)
        figures += _backend(ctx, setup, "postgres", pg_root, copies, floor_url, joins)
    return figures


def _backend(
    ctx: Context, setup: dict, name: str, base: Path, url, floor_url: str, joins: list
) -> list[Figure]:
    baselines = {
        "anti_joins": joins,
        "insert": [
            run_child("steady:insert_changed", {"url": floor_url, "changed": setup["changed"]})
            for _ in range(ctx.repeat)
        ],
    }
    floor = {
        "feed": str(_feed(setup["feeds"], 1)),
        "state": setup["state"],
        "vehicles": setup["vehicles"],
        "changed": setup["changed"],
        "url": floor_url,
    }
    return _figures(ctx, setup, name, _backend_runs(ctx, setup, url, Path(base), floor), baselines)
