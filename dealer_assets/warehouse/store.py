"""Moving polars frames in and out of the warehouse, the same on SQLite and PostgreSQL.

PostgreSQL bulk writes COPY into a temporary staging table and then run one set-based upsert; SQLite
uses the driver's executemany. Everything a step writes goes through one transaction.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dealer_assets.warehouse import schema
from dealer_assets.warehouse.schema import SCHEMA_VERSION, metadata

_ENGINES: dict[str, Engine] = {}
_ENGINE_LOCK = threading.Lock()
SQLITE_TS = "%Y-%m-%d %H:%M:%S.%6f"
PG_TS = "%Y-%m-%d %H:%M:%S%.f+00"
COPY_CHUNK_ROWS = 200_000
"""Rows per COPY write: PostgreSQL parses one chunk while the next is formatted."""


def engine_for(url: str) -> Engine:
    """One engine per URL per process, with the schema created or migrated on first use."""
    with _ENGINE_LOCK:
        if url not in _ENGINES:
            if url.startswith("sqlite"):
                db_path = sa.engine.make_url(url).database
                if db_path and db_path != ":memory:":
                    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
                engine = sa.create_engine(url, connect_args={"timeout": 120})

                @sa.event.listens_for(engine, "connect")
                def _pragmas(dbapi_conn, _record):  # noqa: ANN001
                    cur = dbapi_conn.cursor()
                    cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute("PRAGMA synchronous=NORMAL")
                    cur.close()
            else:
                engine = sa.create_engine(url, pool_pre_ping=True)
            migrate(engine)
            _ENGINES[url] = engine
        return _ENGINES[url]


def dispose_engines() -> None:
    with _ENGINE_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


def migrate(engine: Engine) -> None:
    """Create what is missing and record the schema version; later versions add steps here."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(724100)")
        metadata.create_all(conn, checkfirst=True)
        current = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
        if current is None:
            conn.execute(schema.schema_version.insert().values(version=SCHEMA_VERSION))
        elif current > SCHEMA_VERSION:
            raise RuntimeError(f"warehouse schema version {current} is newer than this code ({SCHEMA_VERSION})")


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _ts_columns(table: sa.Table) -> list[str]:
    return [c.name for c in table.columns if isinstance(c.type, sa.DateTime)]


def _prepare(frame: pl.DataFrame, table: sa.Table, fmt: str) -> pl.DataFrame:
    columns = [c.name for c in table.columns if c.name in frame.columns]
    exprs = []
    for name in columns:
        col = pl.col(name)
        if name in _ts_columns(table):
            dtype = frame.schema[name]
            if isinstance(dtype, pl.Datetime):
                col = col.dt.convert_time_zone("UTC").dt.strftime(fmt) if dtype.time_zone else col.dt.strftime(fmt)
        exprs.append(col)
    return frame.select(exprs)


def insert_frame(conn: Connection, table: sa.Table, frame: pl.DataFrame, *, on_conflict: str | None = None) -> int:
    """Bulk insert every row of `frame`; on a primary-key conflict: fail (None), `update` or `ignore`."""
    if frame.height == 0:
        return 0
    if is_postgres(conn):
        return _copy_upsert(conn, table, frame, on_conflict=on_conflict)
    data = _prepare(frame, table, SQLITE_TS)
    cols = ", ".join(f'"{c}"' for c in data.columns)
    marks = ", ".join("?" for _ in data.columns)
    verb = {None: "INSERT", "update": "INSERT OR REPLACE", "ignore": "INSERT OR IGNORE"}[on_conflict]
    conn.exec_driver_sql(f'{verb} INTO "{table.name}" ({cols}) VALUES ({marks})', data.rows())
    return data.height


def copy_into_staging(conn: Connection, table: sa.Table, frame: pl.DataFrame) -> str:
    """COPY `frame` into a temporary table shaped like `table`; returns the staging table's name."""
    staging = f"staging_{table.name}"
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" (LIKE "{table.name}" INCLUDING DEFAULTS) '
                    f"ON COMMIT DROP")
        cur.execute(f'TRUNCATE "{staging}"')
    _copy(conn, staging, _prepare(frame, table, PG_TS))
    return staging


def upsert_from_staging(conn: Connection, table: sa.Table, staging: str, columns: list[str], *,
                        on_conflict: str | None) -> int:
    keys = [c.name for c in table.primary_key.columns]
    cols = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{staging}"'
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in keys)
    if on_conflict == "update" and updates:
        sql += f' ON CONFLICT ({", ".join(keys)}) DO UPDATE SET {updates}'
    elif on_conflict is not None:
        sql += f' ON CONFLICT ({", ".join(keys)}) DO NOTHING'
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(sql)
        return cur.rowcount


def _copy(conn: Connection, target: str, frame: pl.DataFrame) -> None:
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        cols = ", ".join(f'"{c}"' for c in frame.columns)
        with cur.copy(f'COPY "{target}" ({cols}) FROM STDIN (FORMAT csv)') as copy:
            for chunk in frame.iter_slices(COPY_CHUNK_ROWS):
                copy.write(chunk.write_csv(include_header=False, null_value="", quote_style="necessary"))


def _copy_upsert(conn: Connection, table: sa.Table, frame: pl.DataFrame, *, on_conflict: str | None) -> int:
    """A plain insert COPYs straight into the table; an upsert goes through a staging table."""
    if on_conflict is None:
        _copy(conn, table.name, _prepare(frame, table, PG_TS))
        return frame.height
    columns = [c.name for c in table.columns if c.name in frame.columns]
    staging = copy_into_staging(conn, table, frame)
    return upsert_from_staging(conn, table, staging, columns, on_conflict=on_conflict)


def read_frame(conn: Connection, sql: str, schema_: dict[str, pl.DataType], params: dict | None = None) -> pl.DataFrame:
    """Run a SELECT (raw SQL with :named parameters) and return its rows with the given polars schema."""
    schema_ = {n: (t() if isinstance(t, type) else t) for n, t in schema_.items()}
    text_schema = {n: (pl.String if isinstance(t, pl.Datetime | pl.Boolean) else t) for n, t in schema_.items()}
    if is_postgres(conn):
        if params:
            sql = str(sa.text(sql).bindparams(**params).compile(dialect=conn.dialect,
                                                               compile_kwargs={"literal_binds": True}))
        raw = conn.connection.driver_connection
        buffer = bytearray()
        with raw.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER true)") as copy:
            for chunk in copy:
                buffer += chunk
        frame = pl.read_csv(bytes(buffer), schema=text_schema) if buffer else pl.DataFrame(schema=text_schema)
        frame = frame.with_columns(pl.col(n).replace({"t": "true", "f": "false"}) for n, t in schema_.items()
                                   if isinstance(t, pl.Boolean))
    else:
        rows = conn.execute(sa.text(sql), params or {}).fetchall()
        frame = pl.DataFrame([tuple(r) for r in rows], schema=text_schema, orient="row", strict=False)
    exprs = []
    for name, dtype in schema_.items():
        if isinstance(dtype, pl.Datetime):
            exprs.append(_parse_ts(pl.col(name)).alias(name))
        elif isinstance(dtype, pl.Boolean):
            exprs.append(pl.col(name).cast(pl.String).str.to_lowercase().is_in(["1", "true"])
                         .and_(pl.col(name).is_not_null()).alias(name))
        else:
            exprs.append(pl.col(name).cast(dtype))
    return frame.select(exprs)


def _parse_ts(col: pl.Expr) -> pl.Expr:
    text = col.cast(pl.String).str.replace(" ", "T").str.replace(r"(\+00(:00)?|Z)$", "")
    return text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us").dt.replace_time_zone("UTC")


@contextlib.contextmanager
def source_lock(engine: Engine, lock_dir: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on `name` across processes: a PostgreSQL advisory lock, or a lock file for SQLite."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
            conn.commit()
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
                conn.commit()
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{name}.lock"
    with open(path, "a+") as handle:
        deadline = time.monotonic() + 3600
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not lock {path} within an hour") from None
                time.sleep(0.2)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
