"""Moving polars frames in and out of the warehouse, the same on SQLite and PostgreSQL.

PostgreSQL bulk writes COPY into a temporary staging table and then run one set-based upsert; SQLite
uses the driver's executemany. Both write in primary-key order: the time goes to the B-trees, not to the
drivers, and rows in key order visit each index page once (SQLite, 1M SRs: 104k rows/s sorted against 44k
unsorted; PostgreSQL, 12,000 SRs upserted into 1M: 0.34 s against 0.56 s).
Everything a step writes goes through one transaction.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

SQLITE_TS = "%Y-%m-%d %H:%M:%S.%6f"
PG_TS = "%Y-%m-%d %H:%M:%S%.f+00"
COPY_CHUNK_ROWS = 200_000
"""Rows per COPY write: PostgreSQL parses one chunk while the next is formatted."""


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
                col = (
                    col.dt.convert_time_zone("UTC").dt.strftime(fmt)
                    if dtype.time_zone
                    else col.dt.strftime(fmt)
                )
        exprs.append(col)
    return frame.select(exprs)


def insert_frame(
    conn: Connection, table: sa.Table, frame: pl.DataFrame, *, on_conflict: str | None = None
) -> int:
    """Bulk insert every row of `frame`; on a primary-key conflict: fail (None), `update` or `ignore`."""
    if frame.height == 0:
        return 0
    keys = [c.name for c in table.primary_key.columns if c.name in frame.columns]
    if keys and frame.height > 1:
        frame = frame.sort(keys)
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
        cur.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" (LIKE "{table.name}" INCLUDING DEFAULTS) '
            f"ON COMMIT DROP"
        )
        cur.execute(f'TRUNCATE "{staging}"')
    _copy(conn, staging, _prepare(frame, table, PG_TS))
    return staging


def upsert_from_staging(
    conn: Connection, table: sa.Table, staging: str, columns: list[str], *, on_conflict: str | None
) -> int:
    keys = [c.name for c in table.primary_key.columns]
    cols = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{staging}" ORDER BY {", ".join(keys)}'
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in keys)
    if on_conflict == "update" and updates:
        sql += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    elif on_conflict is not None:
        sql += f" ON CONFLICT ({', '.join(keys)}) DO NOTHING"
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


def read_frame(
    conn: Connection, sql: str, schema_: dict[str, pl.DataType], params: dict | None = None
) -> pl.DataFrame:
    """Run a SELECT (raw SQL with :named parameters) and return its rows with the given polars schema."""
    schema_ = {n: (t() if isinstance(t, type) else t) for n, t in schema_.items()}
    text_schema = {
        n: (pl.String if isinstance(t, pl.Datetime | pl.Boolean) else t) for n, t in schema_.items()
    }
    if is_postgres(conn):
        compiled = sa.text(sql).bindparams(**(params or {})).compile(dialect=conn.dialect)
        raw = conn.connection.driver_connection
        buffer = bytearray()
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY ({compiled}) TO STDOUT (FORMAT csv, HEADER true)", compiled.params) as copy,
        ):
            for chunk in copy:
                buffer += chunk
        frame = pl.read_csv(bytes(buffer), schema=text_schema) if buffer else pl.DataFrame(schema=text_schema)
        frame = frame.with_columns(
            pl.col(n).replace({"t": "true", "f": "false"})
            for n, t in schema_.items()
            if isinstance(t, pl.Boolean)
        )
    else:
        rows = conn.execute(sa.text(sql), params or {}).fetchall()
        frame = pl.DataFrame([tuple(r) for r in rows], schema=text_schema, orient="row", strict=False)
    exprs = []
    for name, dtype in schema_.items():
        if isinstance(dtype, pl.Datetime):
            exprs.append(_parse_ts(pl.col(name)).alias(name))
        elif isinstance(dtype, pl.Boolean):
            exprs.append(
                pl.col(name)
                .cast(pl.String)
                .str.to_lowercase()
                .is_in(["1", "true"])
                .and_(pl.col(name).is_not_null())
                .alias(name)
            )
        else:
            exprs.append(pl.col(name).cast(dtype))
    return frame.select(exprs)


def _parse_ts(col: pl.Expr) -> pl.Expr:
    text = col.cast(pl.String).str.replace(" ", "T").str.replace(r"(\+00(:00)?|Z)$", "")
    return text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us").dt.replace_time_zone(
        "UTC"
    )
