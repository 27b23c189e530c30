"""Protractor's Dagster definitions; empty when the settings file has no `protractor:` key.

The settings shape the definitions only where Dagster needs them at load (the locations the API resource
holds keys for, the resync interval, the DMS sources the links depend on); every run reads the settings file
as it stands when it starts."""

from __future__ import annotations

import dagster as dg

from dealer_assets.core.env import DealerEnv
from dealer_assets.core.settings_file import read_document
from dealer_assets.protractor.defs.assets import build_assets
from dealer_assets.protractor.defs.jobs import build_backfill_job, build_jobs
from dealer_assets.protractor.defs.resources import ProtractorResource
from dealer_assets.protractor.defs.schedules import build_schedule
from dealer_assets.protractor.defs.sensors import build_sensor
from dealer_assets.protractor.settings import validate_protractor


def build_defs(env: DealerEnv) -> dg.Definitions:
    """Assets, checks, jobs, sensor, schedule and the `protractor` API resource."""
    paths = env.paths()
    document = read_document(paths.settings_file)
    settings = validate_protractor(document, paths.settings_file)
    if settings is None:
        return dg.Definitions()
    jobs = build_jobs()
    return dg.Definitions(
        assets=build_assets(sorted((document.get("sources") or {}).keys())),
        jobs=[*jobs, build_backfill_job(paths.history_start)],
        sensors=[build_sensor(jobs)],
        schedules=[build_schedule(settings.resync_every_hours)],
        resources={"protractor": ProtractorResource.for_definitions(settings)},
    )
