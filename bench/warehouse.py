"""Benchmark 4: load N rows of the SR state that benchmark 3's feed produces into the warehouse.

SQLite: `insert_frame` into a fresh file database. PostgreSQL: per run a fresh database (created and dropped
here) that already holds the SR state before the feed, then `copy_into_staging` and the set-based
`upsert_from_staging(on_conflict="update")` in one transaction (timed up to and including the commit).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import polars as pl

from bench import reconcile
from bench.measure import BenchError, Context, Figure, run_child, stopwatch

# --- measured steps (run in bench.child) -------------------------------------------------------------------


def remove_sqlite(db: Path | str) -> None:
    """Delete a SQLite database file with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def make_result(state: str, vehicles: str, settings: str, out: str, rows: int) -> dict:
    from dealer_assets.dms.domain.rules import apply_feed
    from dealer_assets.dms.domain.vehicles import FeedRef
    from dealer_assets.dms.settings import parse_settings

    source = parse_settings(Path(settings).read_text()).sources["generic"]
    result: dict = {}
    with stopwatch(result):
        outcome = apply_feed(
            pl.read_parquet(state),
            pl.read_parquet(vehicles),
            source,
            FeedRef("generic", reconcile.AS_OF, reconcile.FILE_NAME),
        )
    outcome.state.head(rows).write_parquet(out)
    result["rows"] = min(rows, outcome.state.height)
    return result


def sqlite_insert(frame: str, db: str) -> dict:
    from dealer_assets.core.warehouse import engine_for, insert_frame
    from dealer_assets.dms import tables as t

    remove_sqlite(db)
    engine = engine_for(f"sqlite:///{db}")
    data = pl.read_parquet(frame)
    result: dict = {}
    with stopwatch(result), engine.begin() as conn:  # timed up to and including the commit
        rows = insert_frame(conn, t.service_request_state, data)
    engine.dispose()
    result["rows"] = rows
    return result


def preload(url: str, frame: str) -> dict:
    """A fresh warehouse (SQLite file or PostgreSQL database) that already holds `frame` as its SR state."""
    from dealer_assets.core.warehouse import engine_for, insert_frame
    from dealer_assets.dms import tables as t

    engine = engine_for(url)
    data = pl.read_parquet(frame)
    result: dict = {}
    with stopwatch(result), engine.begin() as conn:
        insert_frame(conn, t.service_request_state, data, on_conflict="update")
        conn.exec_driver_sql("ANALYZE service_request_state")
    engine.dispose()
    return result


def pg_load(url: str, frame: str) -> dict:
    import time

    from dealer_assets.core.warehouse import engine_for
    from dealer_assets.core.warehouse.frames import copy_into_staging, upsert_from_staging
    from dealer_assets.dms import tables as t

    engine = engine_for(url)
    data = pl.read_parquet(frame)
    columns = [c.name for c in t.service_request_state.columns if c.name in data.columns]
    with engine.connect() as probe:  # a pooled connection that is already open, as in a run
        probe.exec_driver_sql("SELECT 1")
    with engine.begin() as conn:
        start = time.perf_counter()
        staging = copy_into_staging(conn, t.service_request_state, data)
        copied = time.perf_counter()
        upserted = upsert_from_staging(conn, t.service_request_state, staging, columns, on_conflict="update")
    done = time.perf_counter()
    engine.dispose()
    return {
        "seconds": done - start,
        "copy_s": copied - start,
        "upsert_s": done - copied,
        "rows": data.height,
        "upserted": upserted,
    }


# --- orchestration (parent) --------------------------------------------------------------------------------


def result_state(ctx: Context) -> tuple[str, str]:
    """(prior state, resulting state's first N rows) as parquet paths."""
    paths = reconcile.scenario(ctx)
    out = str(ctx.dir("warehouse") / "result.parquet")
    if "result_state" not in ctx.cache:
        run_child("warehouse:make_result", {**paths, "out": out, "rows": ctx.rows})
        ctx.cache["result_state"] = out
    return paths["state"], out


@contextmanager
def postgres_databases(ctx: Context) -> Iterator[Callable[[], AbstractContextManager[str]]]:
    """Yields `database()`: a context giving the URL of a new, empty database, dropped afterwards.

    Raises BenchError when no server answers at `ctx.pg_url`.
    """
    import sqlalchemy as sa

    server = sa.create_engine(ctx.pg_url, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        server.dispose()
        raise BenchError(f"PostgreSQL unreachable at {ctx.pg_url} ({type(exc).__name__})") from exc

    @contextmanager
    def database() -> Iterator[str]:
        name = f"dealer_bench_{uuid.uuid4().hex[:12]}"
        with server.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield sa.engine.make_url(ctx.pg_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with server.connect() as conn:
                conn.exec_driver_sql(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                )
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')

    try:
        yield database
    finally:
        server.dispose()


def run_postgres(ctx: Context, prior: str, frame: str) -> list:
    runs = []
    with postgres_databases(ctx) as database:
        for _ in range(ctx.repeat):
            with database() as url:
                run_child("warehouse:preload", {"url": url, "frame": prior})
                runs.append(run_child("warehouse:pg_load", {"url": url, "frame": frame}))
    return runs


def run(ctx: Context) -> list[Figure]:
    import statistics

    prior, frame = result_state(ctx)
    db = ctx.dir("warehouse") / "sqlite-bench.db"
    lite = [run_child("warehouse:sqlite_insert", {"frame": frame, "db": str(db)}) for _ in range(ctx.repeat)]
    remove_sqlite(db)
    rows = lite[0].info["rows"]
    figures = [
        Figure(
            "warehouse.sqlite_insert",
            f"insert_frame of {rows:,} SR rows into a fresh SQLite file",
            rows / statistics.median(s.seconds for s in lite),
            "rows/s",
            peak_mib=max(s.peak_mib for s in lite),
            info=lite[0].info,
        )
    ]
    label_copy = f"copy_into_staging of {rows:,} SR rows (PostgreSQL, fresh database)"
    label_upsert = f"upsert_from_staging of {rows:,} rows over the prior {ctx.rows:,}-SR state (incl. commit)"
    try:
        pg = run_postgres(ctx, prior, frame)
    except BenchError as exc:
        return figures + [
            Figure("warehouse.pg_copy", label_copy, None, "rows/s", error=str(exc)),
            Figure("warehouse.pg_upsert", label_upsert, None, "rows/s", error=str(exc)),
        ]
    peak_pg = max(s.peak_mib for s in pg)
    figures += [
        Figure(
            "warehouse.pg_copy",
            label_copy,
            rows / statistics.median(s.info["copy_s"] for s in pg),
            "rows/s",
            baseline=300_000,
            baseline_label="target",
            target=">= 1",
            peak_mib=peak_pg,
            info=pg[0].info,
        ),
        Figure(
            "warehouse.pg_upsert",
            label_upsert,
            rows / statistics.median(s.info["upsert_s"] for s in pg),
            "rows/s",
            peak_mib=peak_pg,
            info=pg[0].info,
        ),
    ]
    return figures
