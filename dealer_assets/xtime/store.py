"""Reads and writes of the Xtime tables. Each write that guards a send commits on its own, before the send."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dealer_assets.xtime.domain.booking import ATTEMPT_SCHEMA
from dealer_assets.xtime.domain.requests import EXISTING_SCHEMA, REQUEST_SCHEMA, SERVICE_REQUEST_SCHEMA
from dealer_assets.xtime.tables import (
    TS,
    appointment_request_files,
    appointment_requests,
    xtime_booking_attempts,
    xtime_bookings,
    xtime_services,
)

SERVICES_SCHEMA = {
    "dealership": pl.String(),
    "opcode": pl.String(),
    "name": pl.String(),
    "fetched_at": pl.Datetime("us", "UTC"),
}
BOOKING_SCHEMA = {
    "request_id": pl.String(),
    "dealership": pl.String(),
    "appointment_id": pl.String(),
    "appointment_local": pl.String(),
    "appointment_at": pl.Datetime("us", "UTC"),
    "opcode": pl.String(),
    "booked_at": pl.Datetime("us", "UTC"),
    "attempt_no": pl.Int64(),
    "found_by": pl.String(),
}


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without a zone; every stored timestamp is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _frame(conn: Connection, table: sa.Table, schema: dict, where=None) -> pl.DataFrame:
    cols = [table.c[name] for name in schema]
    query = sa.select(*cols)
    if where is not None:
        query = query.where(where)
    rows = conn.execute(query).all()
    ts = [k for k, v in schema.items() if isinstance(v, pl.Datetime)]
    data = [{k: (_utc(v) if k in ts else v) for k, v in zip(schema, row, strict=True)} for row in rows]
    return pl.DataFrame(data, schema=schema, orient="row")


def read_requests(engine: Engine, where=None) -> pl.DataFrame:
    with engine.connect() as conn:
        return _frame(conn, appointment_requests, REQUEST_SCHEMA, where)


def existing_request_keys(engine: Engine) -> pl.DataFrame:
    with engine.connect() as conn:
        return _frame(conn, appointment_requests, EXISTING_SCHEMA)


def insert_new_requests(conn: Connection, frame: pl.DataFrame, now: datetime) -> int:
    """Inserts the requests whose id is not stored yet; a stored request is never overwritten."""
    if frame.is_empty():
        return 0
    stored: set[str] = set()
    ids = frame["request_id"].to_list()
    for i in range(0, len(ids), 500):
        stored |= set(
            conn.execute(
                sa.select(appointment_requests.c.request_id).where(
                    appointment_requests.c.request_id.in_(ids[i : i + 500])
                )
            ).scalars()
        )
    rows = [
        r | {"received_at": now, "updated_at": now}
        for r in frame.filter(~pl.col("request_id").is_in(list(stored))).to_dicts()
    ]
    if rows:
        conn.execute(appointment_requests.insert(), rows)
    return len(rows)


def set_status(engine: Engine, request_id: str, status: str, reason: str | None, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            appointment_requests.update()
            .where(appointment_requests.c.request_id == request_id)
            .where(
                (appointment_requests.c.status != status)
                | appointment_requests.c.reason.is_distinct_from(reason)
            )
            .values(status=status, reason=reason, updated_at=now)
        )


def read_attempts(engine: Engine) -> pl.DataFrame:
    with engine.connect() as conn:
        return _frame(conn, xtime_booking_attempts, ATTEMPT_SCHEMA)


def claim_attempt(
    engine: Engine, request_id: str, attempt_no: int, dealership: str, slot: str, opcode: str, now: datetime
) -> bool:
    """Records the attempt before it is sent; False when another run claimed the same attempt first."""
    try:
        with engine.begin() as conn:
            conn.execute(
                xtime_booking_attempts.insert().values(
                    request_id=request_id,
                    attempt_no=attempt_no,
                    dealership=dealership,
                    appointment_local=slot,
                    opcode=opcode,
                    sent_at=now,
                    outcome=None,
                )
            )
        return True
    except sa.exc.IntegrityError:
        return False


def resolve_attempt(
    conn: Connection, request_id: str, attempt_no: int, outcome: str, detail: str | None, now: datetime
) -> None:
    conn.execute(
        xtime_booking_attempts.update()
        .where(xtime_booking_attempts.c.request_id == request_id)
        .where(xtime_booking_attempts.c.attempt_no == attempt_no)
        .values(outcome=outcome, detail=detail, resolved_at=now)
    )


def record_outcome(
    engine: Engine,
    request_id: str,
    attempt_no: int,
    outcome: str,
    status: str,
    reason: str | None,
    now: datetime,
    booking: dict | None = None,
) -> None:
    """The attempt's outcome, the request's status and the booking (if any) in one transaction."""
    with engine.begin() as conn:
        resolve_attempt(conn, request_id, attempt_no, outcome, reason, now)
        if booking is not None:
            conn.execute(xtime_bookings.insert().values(**booking))
        conn.execute(
            appointment_requests.update()
            .where(appointment_requests.c.request_id == request_id)
            .values(status=status, reason=reason, updated_at=now)
        )


def read_bookings(engine: Engine) -> pl.DataFrame:
    with engine.connect() as conn:
        return _frame(conn, xtime_bookings, BOOKING_SCHEMA)


def read_services(engine: Engine) -> pl.DataFrame:
    with engine.connect() as conn:
        return _frame(conn, xtime_services, SERVICES_SCHEMA)


def replace_services(engine: Engine, dealership: str, frame: pl.DataFrame) -> None:
    with engine.begin() as conn:
        conn.execute(xtime_services.delete().where(xtime_services.c.dealership == dealership))
        if not frame.is_empty():
            conn.execute(xtime_services.insert(), frame.to_dicts())


def file_received(engine: Engine, file_name: str) -> str | None:
    """The sha256 of the file received under that name, if any."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(appointment_request_files.c.sha256).where(
                appointment_request_files.c.file_name == file_name
            )
        ).scalar()


def record_file(conn: Connection, **values) -> None:
    conn.execute(appointment_request_files.insert().values(**values))


def read_service_requests(engine: Engine, settings) -> pl.DataFrame:
    """Active DMS service requests that could become requests: read by table name, as the contract names it."""
    dealers = sorted(d.dms_dealer_id for d in settings.dealerships.values() if d.dms_dealer_id)
    types = sorted(settings.book_service_request_types)
    if not dealers or not types or not sa.inspect(engine).has_table("service_requests"):
        return pl.DataFrame(schema=SERVICE_REQUEST_SCHEMA)
    sr = sa.table(
        "service_requests",
        *(sa.column(c, TS if c == "created_at" else sa.Text) for c in SERVICE_REQUEST_SCHEMA),
    )
    query = sa.select(sr).where(
        sr.c.status == "active", sr.c.dealer_id.in_(dealers), sr.c.service_request_type.in_(types)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    data = [dict(zip(SERVICE_REQUEST_SCHEMA, r, strict=True)) for r in rows]
    for row in data:
        row["created_at"] = _utc(row["created_at"])
    return pl.DataFrame(data, schema=SERVICE_REQUEST_SCHEMA, orient="row")
