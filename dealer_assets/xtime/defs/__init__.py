"""The Xtime area in Dagster: three assets with their checks, two jobs, a sensor, two schedules, the client."""

from __future__ import annotations

import dagster as dg

from dealer_assets.core.env import DealerEnv
from dealer_assets.core.settings_file import read_document
from dealer_assets.xtime.client import XtimeClient
from dealer_assets.xtime.settings import settings_from_document

from .assets import (
    BOOKINGS_KEY,
    CATALOG_KEY,
    REQUESTS_KEY,
    build_requests_asset,
    xtime_bookings,
    xtime_service_catalog,
)
from .sensors import BOOKING_JOB, CATALOG_JOB, build_schedules, build_sensor


def build_defs(env: DealerEnv) -> dg.Definitions:
    paths = env.paths()
    document = read_document(paths.settings_file)
    settings = settings_from_document(document, paths.settings_file)
    if settings is None:
        return dg.Definitions()
    sources = sorted(document.get("sources") or {})
    catalog_job = dg.define_asset_job(CATALOG_JOB, selection=[CATALOG_KEY])
    booking_job = dg.define_asset_job(BOOKING_JOB, selection=[REQUESTS_KEY, BOOKINGS_KEY])
    client = XtimeClient(
        base_url=settings.base_url,
        token_url=settings.token_url,
        client_id=dg.EnvVar(settings.client_id_env),
        client_secret=dg.EnvVar(settings.client_secret_env),
        api_key=dg.EnvVar(settings.api_key_env),
        requests_per_second=float(settings.requests_per_second),
    )
    return dg.Definitions(
        assets=[xtime_service_catalog, build_requests_asset(sources), xtime_bookings],
        jobs=[catalog_job, booking_job],
        sensors=[build_sensor([catalog_job, booking_job])],
        schedules=build_schedules(catalog_job, booking_job),
        resources={"xtime": client},
    )
