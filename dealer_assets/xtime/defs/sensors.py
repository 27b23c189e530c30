"""Freshness: a sensor for new request files, newly eligible service requests and requests that became
bookable (an opt-in confirmed, an opcode published, a lost answer to look up) or whose window ended."""

import hashlib
import json
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from dealer_assets.core.errors import ConfigError
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.xtime import store
from dealer_assets.xtime.book_appointments import current_plan
from dealer_assets.xtime.domain.requests import requests_from_service_requests
from dealer_assets.xtime.intake import RequestPaths, pending_files
from dealer_assets.xtime.settings import settings_from_document

from .jobs import BOOKINGS_JOB, CATALOG_JOB, xtime_bookings_job, xtime_catalog_job

SENSOR_INTERVAL_SECONDS = 30
ACTIONABLE = ("book", "lookup", "unconfirm", "window_passed")


def pending_work(dealer_env: DealerEnvironment, warehouse: WarehouseResource, now: datetime) -> dict:
    """What a booking run would pick up now: files, service requests not yet requests, actionable requests."""
    settings = settings_from_document(dealer_env.settings_document(), dealer_env.settings_file)
    if settings is None:
        return {}
    engine = warehouse.engine()
    files = [
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
        for p in pending_files(RequestPaths(dealer_env.paths().data_dir))
    ]
    stored = store.read_requests(engine)
    derived = requests_from_service_requests(store.read_service_requests(engine, settings), settings, now)
    new_srs = derived.join(stored.select("request_id"), on="request_id", how="anti")["request_id"].to_list()
    planned = current_plan(engine, settings, now).filter(pl.col("action").is_in(ACTIONABLE))
    fetched = set(store.read_services(engine)["dealership"].unique())
    return {
        "files": sorted(files),
        "service_requests": sorted(new_srs),
        "actionable": sorted(f"{r}:{a}" for r, a in planned.select("request_id", "action").iter_rows()),
        "catalog_missing": sorted(set(settings.dealerships) - fetched),
    }


def run_requests(work: dict) -> list[dg.RunRequest] | dg.SkipReason:
    """The catalog first when a dealership has none (every request would wait for its opcode), else bookings
    keyed by what there is to do, so the same work never asks for a second run."""
    if work.get("catalog_missing"):
        key = "catalog:" + ",".join(work["catalog_missing"])
        return [dg.RunRequest(job_name=CATALOG_JOB, run_key=key[:500])]
    if work.get("files") or work.get("service_requests") or work.get("actionable"):
        digest = hashlib.sha256(json.dumps(work, sort_keys=True).encode()).hexdigest()[:24]
        return [dg.RunRequest(job_name=BOOKINGS_JOB, run_key=f"xtime:{digest}")]
    return dg.SkipReason("no new request files, service requests or bookable requests")


@dg.sensor(
    name="xtime_requests_sensor",
    jobs=[xtime_catalog_job, xtime_bookings_job],
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Books new request files, newly eligible service requests and requests that became bookable.",
)
def xtime_requests_sensor(
    context: dg.SensorEvaluationContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
):
    try:
        work = pending_work(dealer_env, warehouse, datetime.now(UTC))
    except ConfigError as exc:
        return dg.SkipReason(str(exc))
    return run_requests(work)
