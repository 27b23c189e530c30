"""Protractor sync without Dagster: journal -> events; events, sweeps and backfills -> fetches -> versions;
links; write-back. The assets, the commands and the benchmark call these.

Every writer holds one lock (`protractor`), so a sensor run, a sweep and `catch-up` never interleave. Each
location's batch is one transaction: a killed run leaves its events pending and the next run redoes it,
writing the same rows (versions come from the data, not the clock).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy.engine import Engine

from dealer_assets.core.warehouse import exclusive_lock, insert_frame
from dealer_assets.protractor import store
from dealer_assets.protractor import tables as t
from dealer_assets.protractor.client import ProtractorClient
from dealer_assets.protractor.domain.events import new_events, to_refetch, work_order_batch
from dealer_assets.protractor.domain.links import link_service_requests, package_payload, plan_write_back
from dealer_assets.protractor.domain.versions import DELETE_SCHEMA, next_versions
from dealer_assets.protractor.domain.workorders import RAW_SCHEMA, apply_mappings, flatten, read_documents
from dealer_assets.protractor.journal import durable_append, journal_dir, read_new
from dealer_assets.protractor.settings import LocationSettings, ProtractorSettings

SWEEP_OVERLAP = timedelta(hours=2)
ClientFor = Callable[[str], ProtractorClient]


@dataclass
class Outcome:
    events_loaded: int = 0
    events_processed: int = 0
    fetched: int = 0
    snapshots_written: int = 0
    lines_written: int = 0
    closed: int = 0
    per_location: dict[str, dict[str, int]] = field(default_factory=dict)

    def merge(self, other: Outcome) -> None:
        self.events_loaded += other.events_loaded
        for location_id, counts in other.per_location.items():
            self.add(location_id, **counts)

    def add(self, location_id: str, **counts: int) -> None:
        mine = self.per_location.setdefault(location_id, {})
        for key, value in counts.items():
            setattr(self, key, getattr(self, key) + value)
            mine[key] = mine.get(key, 0) + value


def lock(engine: Engine, data_dir: Path):  # noqa: ANN201
    return exclusive_lock(engine, data_dir / "protractor" / "locks", "protractor")


def load_journal(engine: Engine, data_dir: Path) -> int:
    """Journal lines not loaded yet -> `protractor_events`, deduplicated; offsets move in the same transaction."""
    root = journal_dir(data_dir)
    with engine.begin() as conn:
        rows, offsets = read_new(root, store.journal_offsets(conn))
        if rows.is_empty():
            return 0
        pending = store.pending_events(conn)
        known = store.known_event_ids(conn, rows["event_id"].to_list())
        fresh = new_events(rows, pending, known)
        insert_frame(conn, t.protractor_events, fresh)
        store.save_offsets(conn, offsets)
        return fresh.height


def _land(data_dir: Path, location_id: str, docs: list[dict], observed_at: datetime) -> bytes:
    """The fetched documents as JSONL, kept under the data root (what each version was built from)."""
    stamp = observed_at.isoformat(timespec="microseconds")
    body = b"".join(
        (json.dumps({**d, "observed_at": stamp}, separators=(",", ":")) + "\n").encode() for d in docs
    )
    if body:
        path = data_dir / "protractor" / "fetched" / location_id / f"{observed_at:%Y-%m-%d}.jsonl"
        durable_append(path, body)
    return body


def apply_batch(
    engine: Engine,
    location_id: str,
    location: LocationSettings,
    docs: bytes,
    deletes: pl.DataFrame,
    event_ids: list[str],
    processed_at: datetime,
) -> dict[str, int]:
    """Fetched JSONL + deletes of one location -> new versions, closings, mapped fields, events processed."""
    snapshots, lines = flatten(read_documents(docs), location_id, location.time_zone)
    status_map, user_map = location.effective_status_map(), location.effective_user_map()
    with engine.begin() as conn:
        current = store.current_snapshots(conn, location_id)
        out = next_versions(current, snapshots, deletes, store.current_lines(conn, location_id), lines)
        out["snapshots"] = apply_mappings(out["snapshots"], status_map, user_map)
        store.write_versions(conn, out)
        after = store.current_snapshots(conn, location_id)
        remapped = apply_mappings(after, status_map, user_map)
        mapped = ["status", "service_advisor", "technician"]
        differs = pl.any_horizontal([~pl.col(c).eq_missing(pl.col(f"{c}_old")) for c in mapped])
        store.update_mapped(
            conn,
            remapped.join(
                after.select("work_order_id", *[pl.col(c).alias(f"{c}_old") for c in mapped]),
                on="work_order_id",
            ).filter(differs),
        )
        store.mark_processed(conn, event_ids, processed_at)
    return {
        "snapshots_written": out["snapshots"].height,
        "lines_written": out["lines"].height,
        "closed": out["closed"].height,
    }


def process_events(
    engine: Engine,
    settings: ProtractorSettings,
    client_for: ClientFor,
    data_dir: Path,
    now: Callable[[], datetime],
) -> Outcome:
    """Load the journal, then fetch what pending notifications name and version it, location by location."""
    outcome = Outcome()
    with lock(engine, data_dir):
        outcome.events_loaded = load_journal(engine, data_dir)
        with engine.connect() as conn:
            pending = store.pending_events(conn)
        for location_id, location in settings.locations.items():
            mine = pending.filter(pl.col("location_id") == location_id)
            if mine.is_empty():
                continue
            fetch, deletes = work_order_batch(mine)
            docs: list[dict] = []
            if fetch.height:
                with client_for(location_id) as client:
                    docs = [
                        d for _, d in client.fetch_many(fetch["work_order_id"].to_list()) if d is not None
                    ]
            observed = now()
            body = _land(data_dir, location_id, docs, observed)
            counts = apply_batch(engine, location_id, location, body, deletes.cast(DELETE_SCHEMA),
                                 mine["event_id"].to_list(), observed)  # fmt: skip
            outcome.add(location_id, events_processed=mine.height, fetched=len(docs), **counts)
    return outcome


def sweep(
    engine: Engine,
    settings: ProtractorSettings,
    client_for: ClientFor,
    data_dir: Path,
    now: Callable[[], datetime],
    *,
    history_start: datetime,
    since: datetime | None = None,
    locations: list[str] | None = None,
    days: tuple[date, date] | None = None,
) -> Outcome:
    """List work orders changed since the last sweep (less an overlap) and fetch those that differ.

    With `days` (a backfill), list exactly those local dates and fetch every work order listed."""
    outcome = Outcome()
    with lock(engine, data_dir):
        for location_id, location in settings.locations.items():
            if locations and location_id not in locations:
                continue
            started = now()
            zone = ZoneInfo(location.time_zone)
            with engine.connect() as conn:
                last = since or store.swept_until(conn, location_id)
                current = store.current_snapshots(conn, location_id)
            if days is None:
                start_at = (last - SWEEP_OVERLAP) if last else history_start
                first, last_day = start_at.astimezone(zone).date(), started.astimezone(zone).date()
            else:
                first, last_day = days
            with client_for(location_id) as client:
                listed = pl.DataFrame(client.list_changed(first, last_day), schema=RAW_SCHEMA, strict=False)
                if days is None:
                    ids = to_refetch(listed, current, location_id, location.time_zone)[
                        "work_order_id"
                    ].to_list()
                else:
                    ids = listed["ID"].str.to_lowercase().unique().sort().to_list()
                docs = [d for _, d in client.fetch_many(ids) if d is not None]
            body = _land(data_dir, location_id, docs, started)
            counts = apply_batch(
                engine, location_id, location, body, pl.DataFrame(schema=DELETE_SCHEMA), [], started
            )
            if days is None:
                with engine.begin() as conn:
                    store.save_sweep(conn, location_id, started)
            outcome.add(location_id, fetched=len(docs), **counts)
    return outcome


def refresh_links(engine: Engine) -> pl.DataFrame:
    """`service_request_work_orders`, rebuilt whole from the current snapshots and the DMS service requests."""
    with engine.begin() as conn:
        snapshots = store.current_snapshots(conn)
        links = link_service_requests(snapshots, store.service_requests(conn))
        store.replace_links(conn, links)
    return links


def write_back(
    engine: Engine,
    settings: ProtractorSettings,
    client_for: ClientFor,
    data_dir: Path,
    now: Callable[[], datetime],
) -> int:
    """Add one package per active linked SR to its work order, at locations with `write_back: true`.

    The attempt is committed before the POST and its GUID comes from our ids: a killed run's retry sends the
    same package, which Protractor upserts, so it is added once."""
    enabled = [loc for loc, s in settings.locations.items() if s.write_back]
    if not enabled:
        return 0
    with lock(engine, data_dir):
        with engine.connect() as conn:
            links = store.all_rows(conn, t.service_request_work_orders,
                                   {"location_id": pl.String, "work_order_id": pl.String, "vin": pl.String, "sr_id": pl.String})  # fmt: skip
            plan = plan_write_back(links, store.service_requests(conn), store.current_lines(conn), enabled)
            done = store.all_rows(
                conn, t.protractor_write_backs, {"package_id": pl.String, "sent_at": pl.Datetime("us", "UTC")}
            )
        plan = plan.join(done.filter(pl.col("sent_at").is_not_null()), on="package_id", how="anti")
        sent = 0
        for location_id in plan["location_id"].unique().sort().to_list():
            with client_for(location_id) as client:
                for row in plan.filter(pl.col("location_id") == location_id).iter_rows(named=True):
                    record = pl.DataFrame([{k: row[k] for k in ("package_id", "location_id", "work_order_id", "sr_id")}
                                           | {"attempted_at": now()}]).cast({"attempted_at": pl.Datetime("us", "UTC")})  # fmt: skip
                    with engine.begin() as conn:
                        insert_frame(conn, t.protractor_write_backs, record, on_conflict="ignore")
                    client.post_work_order(row["work_order_id"], package_payload(row))
                    with engine.begin() as conn:
                        conn.execute(t.protractor_write_backs.update()
                                     .where(t.protractor_write_backs.c.package_id == row["package_id"])
                                     .values(sent_at=now()))  # fmt: skip
                    sent += 1
        return sent


def utc_now() -> datetime:
    return datetime.now(UTC)
