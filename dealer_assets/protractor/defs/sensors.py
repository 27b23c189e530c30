"""Protractor's sensor: a run for notifications the receiver journaled, and each location's first sweep."""

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.protractor import store
from dealer_assets.protractor.defs.jobs import EVENTS_JOB, RESYNC_JOB
from dealer_assets.protractor.journal import journal_dir
from dealer_assets.protractor.settings import required_protractor

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


SENSOR_INTERVAL_SECONDS = 30
RETRY_PENDING_SECONDS = 600
"""Notifications left pending by a failed run are asked for again at most this often."""
WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]


def journal_sizes(data_dir: Path) -> dict[str, int]:
    """Each journal file (relative to the journal root) and its size in bytes."""
    root = journal_dir(data_dir)
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in sorted(root.glob("*/*.jsonl"))}


def first_sweep(
    context: dg.SensorEvaluationContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
) -> dg.RunRequest | None:
    """The initial load of the locations never swept, asked for once."""
    settings = required_protractor(dealer_env.settings_document(), dealer_env.settings_file)
    with warehouse.engine().connect() as conn:
        never_swept = [loc for loc in settings.locations if store.swept_until(conn, loc) is None]
    key = "first-sweep-" + "-".join(never_swept)
    if not never_swept or key == context.cursor:
        return None
    context.update_cursor(key)
    return dg.RunRequest(run_key=f"protractor-{key}", job_name=RESYNC_JOB)


def new_notifications(
    context: dg.SensorEvaluationContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
) -> dg.RunRequest | dg.SkipReason:
    """A run when the journal grew past what was loaded or notifications are pending, unless a queued run will
    take them; pending ones left by a failed run are asked for again every `RETRY_PENDING_SECONDS`."""
    sizes = journal_sizes(Path(dealer_env.data_dir))
    with warehouse.engine().connect() as conn:
        loaded = store.journal_offsets(conn)
        pending = store.pending_events(conn).height
    unloaded = {f: s for f, s in sizes.items() if s > loaded.get(f, 0)}
    if not unloaded and not pending:
        return dg.SkipReason("no new Protractor notifications")
    waiting = dg.RunsFilter(job_name=EVENTS_JOB, statuses=WAITING)
    if context.instance.get_run_records(waiting, limit=1):
        return dg.SkipReason("a queued run will take these notifications when it starts")
    retry = "" if unloaded else f"retry-{int(time.time() // RETRY_PENDING_SECONDS)}"
    key = hashlib.sha256(repr((sorted(unloaded.items()), pending, retry)).encode()).hexdigest()[:24]
    if key == context.cursor:
        return dg.SkipReason("a run was already requested for these notifications")
    context.update_cursor(key)
    return dg.RunRequest(run_key=f"protractor-events-{key}", job_name=EVENTS_JOB)


def build_sensor(jobs: list["UnresolvedAssetJobDefinition"]) -> dg.SensorDefinition:
    @dg.sensor(
        name="protractor_events_sensor",
        jobs=jobs,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts a run when the receiver journaled notifications not loaded yet, and the first "
        "sweep of a location that was never swept (its initial load).",
    )
    def protractor_events_sensor(
        context: dg.SensorEvaluationContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ) -> dg.RunRequest | dg.SkipReason:
        return first_sweep(context, dealer_env, warehouse) or new_notifications(
            context, dealer_env, warehouse
        )

    return protractor_events_sensor
