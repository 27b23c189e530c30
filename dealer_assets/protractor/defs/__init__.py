"""Protractor's Dagster definitions; empty when the settings file has no `protractor:` key."""

from __future__ import annotations

import dagster as dg

from dealer_assets.core.env import DealerEnv
from dealer_assets.core.settings_file import read_document
from dealer_assets.protractor.client import ProtractorResource
from dealer_assets.protractor.defs.assets import build_assets
from dealer_assets.protractor.defs.automation import (
    build_backfill_job,
    build_jobs,
    build_schedule,
    build_sensor,
)
from dealer_assets.protractor.defs.support import resource_key
from dealer_assets.protractor.settings import validate_protractor


def build_defs(env: DealerEnv) -> dg.Definitions:
    """Assets, checks, jobs, sensor, schedule and one API resource per location (`protractor_<location>`).

    The DMS `service_requests` assets are named by key for every source of the same settings file."""
    paths = env.paths()
    document = read_document(paths.settings_file)
    settings = validate_protractor(document, paths.settings_file)
    if settings is None:
        return dg.Definitions()
    clients = {
        resource_key(loc): ProtractorResource(location_id=loc, base_url=settings.base_url,
                                              connection_id_env=s.connection_id_env, api_key_env=s.api_key_env)
        for loc, s in settings.locations.items()
    }  # fmt: skip
    keys = {"dealer_env", "warehouse", *clients}
    sources = sorted((document.get("sources") or {}).keys())
    jobs = build_jobs()
    return dg.Definitions(
        assets=build_assets(settings, sources, keys),
        jobs=[*jobs, build_backfill_job(settings, paths.history_start, keys)],
        sensors=[build_sensor(settings, jobs)],
        schedules=[build_schedule(settings)],
        resources=clients,
    )
