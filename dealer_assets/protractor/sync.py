"""Protractor sync without Dagster: journal -> events; events, sweeps and backfills -> fetches -> versions;
links. The assets, the commands and the benchmark call these (write-back is `write_back.py`).

Every writer holds one lock (`protractor`), so a sensor run, a sweep and `catch-up` never interleave. Each
location's batch is one transaction: a killed run leaves its events pending and the next run redoes it,
writing the same rows (versions come from the data, not the clock).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy.engine import Engine

from dealer_assets.core.files import append_durably
from dealer_assets.core.warehouse import exclusive_lock, insert_frame
from dealer_assets.protractor import store
from dealer_assets.protractor import tables as t
from dealer_assets.protractor.client import ProtractorClient
from dealer_assets.protractor.domain.events import new_events, to_refetch, work_order_batch
from dealer_assets.protractor.domain.links import link_service_requests
from dealer_assets.protractor.domain.versions import DELETE_SCHEMA, next_versions
from dealer_assets.protractor.domain.workorders import (
    RAW_SCHEMA,
    apply_mappings,
    flatten,
    read_documents,
    references,
)
from dealer_assets.protractor.journal import journal_dir, read_new
from dealer_assets.protractor.settings import LocationSettings, ProtractorSettings

SWEEP_OVERLAP = timedelta(hours=2)
MAPPED = ["status", "service_advisor", "technician"]
ClientFor = Callable[[str], ProtractorClient]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SyncContext:
    """What every step of a sync works with: the warehouse, this run's settings, each location's API, the data
    root, where history starts, and the clock."""

    engine: Engine
    settings: ProtractorSettings
    client_for: ClientFor
    data_dir: Path
    history_start: datetime
    now: Callable[[], datetime] = utc_now


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


def lock(engine: Engine, data_dir: Path) -> AbstractContextManager[None]:
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
        append_durably(path, body)
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
    """Fetched JSONL + deletes of one location -> new versions, closings, mapped fields, what each work order
    references, events processed."""
    raw = read_documents(docs)
    snapshots, lines = flatten(raw, location_id, location.time_zone)
    status_map, user_map = location.effective_status_map(), location.effective_user_map()
    with engine.begin() as conn:
        store.save_refs(conn, references(raw, location_id))
        current = store.current_snapshots(conn, location_id)
        out = next_versions(current, snapshots, deletes, store.current_lines(conn, location_id), lines)
        out["snapshots"] = apply_mappings(out["snapshots"], status_map, user_map)
        store.write_versions(conn, out)
        after = store.current_snapshots(conn, location_id)
        store.update_mapped(conn, _remapped(after, apply_mappings(after, status_map, user_map)))
        store.mark_processed(conn, event_ids, processed_at)
    return {
        "snapshots_written": out["snapshots"].height,
        "lines_written": out["lines"].height,
        "closed": out["closed"].height,
    }


def _remapped(current: pl.DataFrame, remapped: pl.DataFrame) -> pl.DataFrame:
    """The current rows whose status or users change under the maps of this run."""
    differs = pl.any_horizontal([~pl.col(c).eq_missing(pl.col(f"{c}_old")) for c in MAPPED])
    old = current.select("work_order_id", *[pl.col(c).alias(f"{c}_old") for c in MAPPED])
    return remapped.join(old, on="work_order_id").filter(differs)


def _fetch(client: ProtractorClient, ids: list[str]) -> list[dict]:
    return [doc for _, doc in client.fetch_many(ids) if doc is not None]


def process_events(ctx: SyncContext) -> Outcome:
    """Load the journal, then fetch what pending notifications name and version it, location by location."""
    outcome = Outcome()
    with lock(ctx.engine, ctx.data_dir):
        outcome.events_loaded = load_journal(ctx.engine, ctx.data_dir)
        with ctx.engine.connect() as conn:
            pending = store.pending_events(conn)
        for location_id in ctx.settings.locations:
            mine = pending.filter(pl.col("location_id") == location_id)
            if not mine.is_empty():
                outcome.add(location_id, **_process_location(ctx, location_id, mine))
    return outcome


def _process_location(ctx: SyncContext, location_id: str, pending: pl.DataFrame) -> dict[str, int]:
    with ctx.engine.connect() as conn:
        fetch, deletes = work_order_batch(pending, store.refs(conn, location_id))
    docs: list[dict] = []
    if fetch.height:
        with ctx.client_for(location_id) as client:
            docs = _fetch(client, fetch["work_order_id"].to_list())
    observed = ctx.now()
    body = _land(ctx.data_dir, location_id, docs, observed)
    location = ctx.settings.locations[location_id]
    event_ids = pending["event_id"].to_list()
    counts = apply_batch(
        ctx.engine, location_id, location, body, deletes.cast(DELETE_SCHEMA), event_ids, observed
    )
    return {"events_processed": pending.height, "fetched": len(docs), **counts}


def sweep(
    ctx: SyncContext,
    *,
    since: datetime | None = None,
    locations: list[str] | None = None,
    days: tuple[date, date] | None = None,
) -> Outcome:
    """List work orders changed since the last sweep (less an overlap) and fetch those that differ.

    With `days` (a backfill), list exactly those local dates and fetch every work order listed."""
    outcome = Outcome()
    with lock(ctx.engine, ctx.data_dir):
        for location_id in ctx.settings.locations:
            if not locations or location_id in locations:
                outcome.add(location_id, **_sweep_location(ctx, location_id, since, days))
    return outcome


def _sweep_location(
    ctx: SyncContext, location_id: str, since: datetime | None, days: tuple[date, date] | None
) -> dict[str, int]:
    started = ctx.now()
    location = ctx.settings.locations[location_id]
    with ctx.engine.connect() as conn:
        last = since or store.swept_until(conn, location_id)
        current = store.current_snapshots(conn, location_id)
    backfill = days is not None
    if days is None:
        zone = ZoneInfo(location.time_zone)
        start_at = (last - SWEEP_OVERLAP) if last else ctx.history_start
        days = (start_at.astimezone(zone).date(), started.astimezone(zone).date())
    with ctx.client_for(location_id) as client:
        listed = pl.DataFrame(client.list_changed(*days), schema=RAW_SCHEMA, strict=False)
        if backfill:
            ids = listed["ID"].str.to_lowercase().unique().sort().to_list()
        else:
            ids = to_refetch(listed, current, location_id, location.time_zone)["work_order_id"].to_list()
        docs = _fetch(client, ids)
    body = _land(ctx.data_dir, location_id, docs, started)
    no_deletes = pl.DataFrame(schema=DELETE_SCHEMA)
    counts = apply_batch(ctx.engine, location_id, location, body, no_deletes, [], started)
    if not backfill:
        with ctx.engine.begin() as conn:
            store.save_sweep(conn, location_id, started)
    return {"fetched": len(docs), **counts}


def refresh_links(engine: Engine) -> pl.DataFrame:
    """`service_request_work_orders`, rebuilt whole from the current snapshots and the DMS service requests."""
    with engine.begin() as conn:
        snapshots = store.current_snapshots(conn)
        links = link_service_requests(snapshots, store.service_requests(conn))
        store.replace_links(conn, links)
    return links
