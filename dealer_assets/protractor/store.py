"""Reading and writing Protractor's tables: current versions in, new versions and closings out, one
transaction per batch so a killed run leaves nothing half-written."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dealer_assets.core.warehouse import insert_frame, read_frame
from dealer_assets.protractor import tables as t
from dealer_assets.protractor.domain.events import EVENT_SCHEMA
from dealer_assets.protractor.domain.links import SR_SCHEMA
from dealer_assets.protractor.domain.versions import LINE_SCHEMA, SNAPSHOT_SCHEMA
from dealer_assets.protractor.domain.workorders import REF_SCHEMA
from dealer_assets.protractor.domain.write_back import WRITE_SCHEMA

WRITE_BACK_KEYS = ("package_id", "location_id", "work_order_id", "sr_id")


def _cols(schema: dict) -> str:
    return ", ".join(f'"{c}"' for c in schema)


def current_snapshots(conn: Connection, location_id: str | None = None) -> pl.DataFrame:
    where = "valid_to IS NULL" + (" AND location_id = :loc" if location_id else "")
    sql = f"SELECT {_cols(SNAPSHOT_SCHEMA)} FROM work_order_snapshots WHERE {where}"
    return read_frame(conn, sql, SNAPSHOT_SCHEMA, {"loc": location_id} if location_id else None)


def current_lines(conn: Connection, location_id: str | None = None) -> pl.DataFrame:
    where = "valid_to IS NULL" + (" AND location_id = :loc" if location_id else "")
    sql = f"SELECT {_cols(LINE_SCHEMA)} FROM work_order_lines WHERE {where}"
    return read_frame(conn, sql, LINE_SCHEMA, {"loc": location_id} if location_id else None)


def all_rows(conn: Connection, table: sa.Table, schema: dict) -> pl.DataFrame:
    return read_frame(conn, f'SELECT {_cols(schema)} FROM "{table.name}"', schema)


def pending_events(conn: Connection) -> pl.DataFrame:
    sql = (
        f"SELECT {_cols(EVENT_SCHEMA)} FROM protractor_events WHERE processed_at IS NULL ORDER BY received_at"
    )
    return read_frame(conn, sql, EVENT_SCHEMA)


def known_event_ids(conn: Connection, event_ids: list[str]) -> pl.DataFrame:
    """Which of these journal event ids are already in `protractor_events` (a re-read after lost offsets)."""
    c = t.protractor_events.c
    found: list[str] = []
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        found += conn.execute(sa.select(c.event_id).where(c.event_id.in_(chunk))).scalars().all()
    return pl.DataFrame({"event_id": found}, schema={"event_id": pl.String})


def service_requests(conn: Connection) -> pl.DataFrame:
    """The DMS service requests of every source (the DMS area's table, read by name: areas share no code)."""
    if not sa.inspect(conn).has_table("service_requests"):
        return pl.DataFrame(schema=SR_SCHEMA)
    return read_frame(conn, f"SELECT {_cols(SR_SCHEMA)} FROM service_requests", SR_SCHEMA)


def write_versions(conn: Connection, out: dict[str, pl.DataFrame]) -> None:
    """Close what ended, then insert the new versions (their keys never collide with a closed row's)."""
    if out["closed"].height:
        stmt = (
            t.work_order_snapshots.update()
            .where(
                t.work_order_snapshots.c.location_id == sa.bindparam("b_loc"),
                t.work_order_snapshots.c.work_order_id == sa.bindparam("b_wo"),
                t.work_order_snapshots.c.valid_from == sa.bindparam("b_from"),
            )
            .values(valid_to=sa.bindparam("b_to"))
        )
        conn.execute(
            stmt,
            [dict(zip(("b_loc", "b_wo", "b_from", "b_to"), r, strict=True)) for r in out["closed"].rows()],
        )
    if out["closed_lines"].height:
        stmt = (
            t.work_order_lines.update()
            .where(
                t.work_order_lines.c.location_id == sa.bindparam("b_loc"),
                t.work_order_lines.c.work_order_id == sa.bindparam("b_wo"),
                t.work_order_lines.c.line_id == sa.bindparam("b_line"),
                t.work_order_lines.c.valid_from == sa.bindparam("b_from"),
            )
            .values(valid_to=sa.bindparam("b_to"))
        )
        rows = out["closed_lines"].rows()
        conn.execute(
            stmt, [dict(zip(("b_loc", "b_wo", "b_line", "b_from", "b_to"), r, strict=True)) for r in rows]
        )
    insert_frame(conn, t.work_order_snapshots, out["snapshots"])
    insert_frame(conn, t.work_order_lines, out["lines"])


def update_mapped(conn: Connection, changed: pl.DataFrame) -> None:
    """Our status and users are derived from the settings: rewritten in place when the maps change."""
    if changed.is_empty():
        return
    c = t.work_order_snapshots.c
    stmt = (
        t.work_order_snapshots.update()
        .where(
            c.location_id == sa.bindparam("b_loc"),
            c.work_order_id == sa.bindparam("b_wo"),
            c.valid_from == sa.bindparam("b_from"),
        )
        .values(
            status=sa.bindparam("b_status"),
            service_advisor=sa.bindparam("b_adv"),
            technician=sa.bindparam("b_tech"),
        )
    )
    keys = ("b_loc", "b_wo", "b_from", "b_status", "b_adv", "b_tech")
    cols = ["location_id", "work_order_id", "valid_from", "status", "service_advisor", "technician"]
    conn.execute(stmt, [dict(zip(keys, r, strict=True)) for r in changed.select(cols).rows()])


def mark_processed(conn: Connection, event_ids: list[str], when: datetime) -> None:
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        conn.execute(
            t.protractor_events.update()
            .where(t.protractor_events.c.event_id.in_(chunk))
            .values(processed_at=when)
        )


def journal_offsets(conn: Connection) -> dict[str, int]:
    return dict(
        conn.execute(
            sa.select(t.protractor_journal_offsets.c.journal_file, t.protractor_journal_offsets.c.byte_offset)
        ).all()
    )


def save_offsets(conn: Connection, offsets: dict[str, int]) -> None:
    frame = pl.DataFrame(
        {"journal_file": list(offsets), "byte_offset": list(offsets.values())},
        schema={"journal_file": pl.String, "byte_offset": pl.Int64},
    )
    insert_frame(conn, t.protractor_journal_offsets, frame, on_conflict="update")


def swept_until(conn: Connection, location_id: str) -> datetime | None:
    c = t.protractor_sweeps.c
    value = conn.execute(sa.select(c.swept_until).where(c.location_id == location_id)).scalar()
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def save_sweep(conn: Connection, location_id: str, until: datetime) -> None:
    frame = pl.DataFrame(
        {"location_id": [location_id], "swept_until": [until]},
        schema={"location_id": pl.String, "swept_until": pl.Datetime("us", "UTC")},
    )
    insert_frame(conn, t.protractor_sweeps, frame, on_conflict="update")


def replace_links(conn: Connection, links: pl.DataFrame) -> None:
    conn.execute(t.service_request_work_orders.delete())
    insert_frame(conn, t.service_request_work_orders, links)


def record_write_back(conn: Connection, package: dict, attempted_at: datetime) -> None:
    """The attempt to add a package, kept before it is sent (a second attempt keeps the first's time)."""
    row = {k: package[k] for k in WRITE_BACK_KEYS} | {"attempted_at": attempted_at}
    frame = pl.DataFrame([row]).cast({"attempted_at": pl.Datetime("us", "UTC")})
    insert_frame(conn, t.protractor_write_backs, frame, on_conflict="ignore")


def mark_sent(conn: Connection, package_id: str, sent_at: datetime) -> None:
    c = t.protractor_write_backs.c
    conn.execute(t.protractor_write_backs.update().where(c.package_id == package_id).values(sent_at=sent_at))


def refs(conn: Connection, location_id: str) -> pl.DataFrame:
    sql = f"SELECT {_cols(REF_SCHEMA)} FROM protractor_work_order_refs WHERE location_id = :loc"
    return read_frame(conn, sql, REF_SCHEMA, {"loc": location_id})


def save_refs(conn: Connection, fetched: pl.DataFrame) -> None:
    insert_frame(conn, t.protractor_work_order_refs, fetched, on_conflict="update")


def write_log(conn: Connection) -> pl.DataFrame:
    return all_rows(conn, t.protractor_write_back_log, WRITE_SCHEMA)


def record_write(conn: Connection, row: dict, request: str, attempted_at: datetime) -> int:
    """A write about to be sent, as the next attempt of its package; its number."""
    c = t.protractor_write_back_log.c
    last = conn.execute(sa.select(sa.func.max(c.attempt)).where(c.package_id == row["package_id"])).scalar()
    attempt = (last or 0) + 1
    keys = [k for k in WRITE_SCHEMA if k in row and k not in ("attempt", "attempted_at")]
    values = {k: row[k] for k in keys} | {
        "attempt": attempt,
        "request": request,
        "attempted_at": attempted_at,
    }
    conn.execute(t.protractor_write_back_log.insert().values(**values))
    return attempt


def record_answer(
    conn: Connection, package_id: str, attempt: int, answered_at: datetime, status: int | None, answer: str
) -> None:
    c = t.protractor_write_back_log.c
    conn.execute(
        t.protractor_write_back_log.update()
        .where(c.package_id == package_id, c.attempt == attempt)
        .values(answered_at=answered_at, http_status=status, answer=answer)
    )
