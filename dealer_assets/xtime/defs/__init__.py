"""The Xtime area in Dagster: three assets with their checks, two jobs, two schedules, a sensor, the API
resource. Absent when the settings file has no `xtime` key; what the settings say is read again at run time."""

from __future__ import annotations

import dagster as dg

from dealer_assets.core.env import DealerEnv
from dealer_assets.core.settings_file import read_document
from dealer_assets.xtime.settings import settings_from_document

from .assets import build_requests_asset, xtime_bookings, xtime_service_catalog
from .jobs import xtime_bookings_job, xtime_catalog_job
from .resources import XtimeResource
from .schedules import xtime_bookings_schedule, xtime_catalog_schedule
from .sensors import xtime_requests_sensor


def build_defs(env: DealerEnv) -> dg.Definitions:
    paths = env.paths()
    document = read_document(paths.settings_file)
    settings = settings_from_document(document, paths.settings_file)
    if settings is None:
        return dg.Definitions()
    return dg.Definitions(
        assets=[
            xtime_service_catalog,
            build_requests_asset(sorted(document.get("sources") or {})),
            xtime_bookings,
        ],
        jobs=[xtime_catalog_job, xtime_bookings_job],
        schedules=[xtime_catalog_schedule, xtime_bookings_schedule],
        sensors=[xtime_requests_sensor],
        resources={"xtime": XtimeResource.for_definitions(settings)},
    )
