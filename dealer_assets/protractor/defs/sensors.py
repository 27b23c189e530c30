"""Protractor's sensor: each location's first sweep, then notifications in batches.

Protractor calls back on every change, often in bursts; a run per callback floods the run list and the queue.
A batch run is requested at most once every `protractor.batch_minutes` and takes every notification pending
when it starts, so a change waits at most that interval plus a sensor tick (30 s) before its run starts. The
time of the last batch is kept in the cursor, from the sensor's own clock.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.run_status import IN_FLIGHT
from dealer_assets.core.tags import AREA_TAG
from dealer_assets.protractor import store
from dealer_assets.protractor.defs.jobs import EVENTS_JOB, RESYNC_JOB
from dealer_assets.protractor.journal import journal_dir
from dealer_assets.protractor.settings import ProtractorSettings, required_protractor

SENSOR_INTERVAL_SECONDS = 30


def utc_now() -> datetime:
    return datetime.now(UTC)


def journal_sizes(data_dir: Path) -> dict[str, int]:
    """Each journal file (relative to the journal root) and its size in bytes."""
    root = journal_dir(data_dir)
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in sorted(root.glob("*/*.jsonl"))}


def read_cursor(text: str | None) -> dict:
    """The cursor's state; a cursor of an earlier version (a bare key) starts afresh."""
    try:
        state = json.loads(text) if text else {}
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def first_sweep(
    cursor: dict, settings: ProtractorSettings, warehouse: WarehouseResource
) -> dg.RunRequest | None:
    """The initial load of the locations never swept, asked for once."""
    with warehouse.engine().connect() as conn:
        never_swept = [loc for loc in settings.locations if store.swept_until(conn, loc) is None]
    key = "first-sweep-" + "-".join(never_swept)
    if not never_swept or key == cursor.get("first_sweep"):
        return None
    cursor["first_sweep"] = key
    return dg.RunRequest(run_key=f"protractor-{key}", job_name=RESYNC_JOB)


def batch(
    context: dg.SensorEvaluationContext, cursor: dict, every: timedelta, data_dir: Path, engine: sa.Engine
) -> dg.RunRequest | dg.SkipReason:
    """A batch run when notifications wait (journaled and not loaded, or pending), none is in flight and the
    last batch is at least `every` ago."""
    with engine.connect() as conn:
        loaded = store.journal_offsets(conn)
        pending = store.pending_events(conn).height
    unloaded = any(size > loaded.get(f, 0) for f, size in journal_sizes(data_dir).items())
    if not unloaded and not pending:
        return dg.SkipReason("no new Protractor notifications")
    in_flight = dg.RunsFilter(tags={AREA_TAG: "protractor"}, statuses=IN_FLIGHT)
    if context.instance.get_run_records(in_flight, limit=1):
        return dg.SkipReason("a Protractor run is in flight; it or the next batch takes these notifications")
    now = utc_now()
    due = datetime.fromisoformat(cursor["last_batch"]) + every if cursor.get("last_batch") else now
    if now < due:
        return dg.SkipReason(f"next batch at {due:%H:%M:%S} UTC (one every {every})")
    cursor["last_batch"] = now.isoformat()
    return dg.RunRequest(run_key=f"protractor-batch-{now:%Y%m%dT%H%M%S}", job_name=EVENTS_JOB)


def build_sensor(jobs: list) -> dg.SensorDefinition:
    @dg.sensor(
        name="protractor_events_sensor",
        jobs=jobs,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="The first sweep of a location never swept (its initial load), then a run for the "
        "notifications the receiver journaled, at most one every protractor.batch_minutes.",
    )
    def protractor_events_sensor(
        context: dg.SensorEvaluationContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ) -> dg.RunRequest | dg.SkipReason:
        settings = required_protractor(dealer_env.settings_document(), dealer_env.settings_file)
        cursor = read_cursor(context.cursor)
        every = timedelta(minutes=settings.batch_minutes)
        result = first_sweep(cursor, settings, warehouse) or batch(
            context, cursor, every, Path(dealer_env.data_dir), warehouse.engine()
        )
        context.update_cursor(json.dumps(cursor, sort_keys=True))
        return result

    return protractor_events_sensor
