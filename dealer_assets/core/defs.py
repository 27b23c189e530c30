"""What every area's assets share in Dagster: the executor, the resources, and the sensor that marks failed the
runs of killed commands."""

from __future__ import annotations

import dagster as dg

from dealer_assets.core.abandoned_runs import abandoned_runs_sensor
from dealer_assets.core.env import DealerEnv
from dealer_assets.core.executors import executor_for
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource


def build_core_defs(env: DealerEnv) -> dg.Definitions:
    """The warehouse URL stays an `EnvVar` when it comes from the environment, so no secret is stored."""
    paths = env.paths()
    url = dg.EnvVar("DEALER_WAREHOUSE_URL") if env.warehouse_url_from_environment() else paths.warehouse_url
    return dg.Definitions(
        executor=executor_for(env),
        resources={"dealer_env": DealerEnvironment.of(paths), "warehouse": WarehouseResource(url=url)},
        sensors=[abandoned_runs_sensor],
    )
