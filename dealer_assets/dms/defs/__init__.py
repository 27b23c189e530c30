"""The DMS feeds area in Dagster: one asset set, job and safety net per source, one drop-zone sensor."""

from __future__ import annotations

import dagster as dg

from dealer_assets.core.env import DealerEnv
from dealer_assets.core.executors import executor_for
from dealer_assets.dms.asset_specs import drop_zone_spec, guard_decisions_spec
from dealer_assets.dms.partitions import feed_partitions
from dealer_assets.dms.settings import load_settings

from .assets import build_source_assets, misdelivered_feed_files, source_tables
from .jobs import build_source_job, dms_what_if_job, misdelivered_job
from .schedules import build_misdelivered_schedule, build_safety_net_schedule
from .sensors import build_drop_zone_sensor


def build_defs(env: DealerEnv) -> dg.Definitions:
    paths = env.paths()
    sources = sorted(load_settings(paths.settings_file).sources)
    partitions = feed_partitions(paths.history_start)
    executor = executor_for(env)
    assets: list = [drop_zone_spec(paths.incoming), misdelivered_feed_files]
    jobs = [misdelivered_job]
    for source in sources:
        assets += [
            *build_source_assets(source, partitions),
            guard_decisions_spec(source),
            *source_tables(source),
        ]
        jobs.append(build_source_job(source, executor))
    cron = env.safety_net_cron
    return dg.Definitions(
        assets=assets,
        jobs=[*jobs, dms_what_if_job],
        sensors=[build_drop_zone_sensor(jobs)],
        schedules=[build_safety_net_schedule(s, cron) for s in sources] + [build_misdelivered_schedule(cron)],
    )
