"""The code location: every definition assembled in one place from the environment and the settings file."""
from __future__ import annotations

import os

import dagster as dg

from dealer_assets.config import DealerPaths
from dealer_assets.defs.dms.assets import build_source_assets, misdelivered_feed_files
from dealer_assets.defs.dms.jobs import build_source_job, misdelivered_job
from dealer_assets.defs.dms.partitions import feed_partitions
from dealer_assets.defs.dms.schedules import (
    build_misdelivered_schedule,
    build_safety_net_schedule,
    safety_net_cron,
)
from dealer_assets.defs.dms.sensors import build_drop_zone_sensor
from dealer_assets.executors import executor_from_env
from dealer_assets.resources import DealerEnvironment, WarehouseResource
from dealer_assets.settings import load_settings


def build_definitions(paths: DealerPaths | None = None) -> dg.Definitions:
    paths = paths or DealerPaths.from_env()
    settings = load_settings(paths.settings_file)
    partitions = feed_partitions(paths.history_start)
    sources = sorted(settings.sources)
    executor = executor_from_env()
    assets = [misdelivered_feed_files]
    jobs = [misdelivered_job]
    for source in sources:
        assets += build_source_assets(source, partitions)
        jobs.append(build_source_job(source, partitions, executor))
    cron = safety_net_cron()
    warehouse_url = dg.EnvVar("DEALER_WAREHOUSE_URL") if os.environ.get("DEALER_WAREHOUSE_URL") \
        else paths.warehouse_url
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        sensors=[build_drop_zone_sensor(jobs)],
        schedules=[build_safety_net_schedule(s, cron) for s in sources] + [build_misdelivered_schedule(cron)],
        executor=executor,
        resources={
            "dealer_env": DealerEnvironment(
                data_dir=str(paths.data_dir), settings_file=str(paths.settings_file),
                history_start=paths.history_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ),
            "warehouse": WarehouseResource(url=warehouse_url),
        },
    )


defs = build_definitions()
