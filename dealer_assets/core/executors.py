"""The executor, chosen by configuration only (`DEALER_EXECUTOR`): in-process by default, `multiprocess`,
or `celery` for steps spread over worker machines.

Celery settings, all from the environment:
- `DEALER_CELERY_BROKER` (required), e.g. `pyamqp://guest@rabbitmq:5672//` or `redis://redis:6379/0`;
- `DEALER_CELERY_BACKEND` (default `rpc://`), where step results travel back to the run;
- `DEALER_CELERY_QUEUE` (default `dagster`, dagster-celery's own), the queue the steps are sent to: start the
  workers with `dagster-celery worker start -A dagster_celery.app -y deploy/celery_worker.yaml -q <queue>`.

Celery needs a persistent instance (PostgreSQL storage, deploy/dagster.yaml) shared by the run and the
workers, and the same data root, settings file and warehouse on every worker.
"""

from __future__ import annotations

import dagster as dg

from dealer_assets.core.env import DealerEnv
from dealer_assets.core.errors import ConfigError


def celery_executor_config(env: DealerEnv) -> dict:
    if not env.celery_broker:
        raise ConfigError(
            "environment: DEALER_CELERY_BROKER: required with DEALER_EXECUTOR=celery "
            "(e.g. pyamqp://guest@127.0.0.1:5672//)"
        )
    config: dict = {
        "broker": {"env": "DEALER_CELERY_BROKER"},
        "backend": {"env": "DEALER_CELERY_BACKEND"} if env.celery_backend else "rpc://",
    }
    if env.celery_queue and env.celery_queue.strip():
        config["config_source"] = {"task_default_queue": env.celery_queue.strip()}
    return config


def executor_for(env: DealerEnv) -> dg.ExecutorDefinition:
    if env.executor == "multiprocess":
        return dg.multiprocess_executor
    if env.executor == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_executor_config(env), name="celery")
    return dg.in_process_executor
