"""Freshness: a sensor for new request files, newly eligible service requests and requests that became
bookable (an opt-in confirmed, a lost answer to look up), and schedules for the catalog and a safety net."""

import hashlib
import json
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from dealer_assets.core.errors import ConfigError
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.xtime import store
from dealer_assets.xtime.booker import current_plan
from dealer_assets.xtime.domain.requests import requests_from_service_requests
from dealer_assets.xtime.intake import RequestPaths, pending_files
from dealer_assets.xtime.settings import settings_from_document

SENSOR_INTERVAL_SECONDS = 30
BOOKING_JOB = "xtime_booking_job"
CATALOG_JOB = "xtime_catalog_job"
ACTIONABLE = ("book", "lookup", "unconfirm")


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


def build_sensor(jobs: list) -> dg.SensorDefinition:
    @dg.sensor(
        name="xtime_requests_sensor",
        jobs=jobs,
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
        runs = []
        if work.get("catalog_missing"):
            key = "catalog:" + ",".join(work["catalog_missing"])
            runs.append(dg.RunRequest(job_name=CATALOG_JOB, run_key=key[:500]))
        if runs:
            return runs  # bookings wait for the catalog: without it every request would wait for its opcode
        if work.get("files") or work.get("service_requests") or work.get("actionable"):
            digest = hashlib.sha256(json.dumps(work, sort_keys=True).encode()).hexdigest()[:24]
            runs.append(dg.RunRequest(job_name=BOOKING_JOB, run_key=f"xtime:{digest}"))
        if not runs:
            return dg.SkipReason("no new request files, service requests or bookable requests")
        return runs

    return xtime_requests_sensor


def build_schedules(catalog_job, booking_job) -> list[dg.ScheduleDefinition]:
    return [
        dg.ScheduleDefinition(
            name="xtime_catalog_daily",
            job=catalog_job,
            cron_schedule="0 6 * * *",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Refreshes every dealership's opcode catalog once a day (06:00 UTC).",
        ),
        dg.ScheduleDefinition(
            name="xtime_bookings_hourly",
            job=booking_job,
            cron_schedule="15 * * * *",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Safety net: resumes requests left pending by a failed run.",
        ),
    ]
