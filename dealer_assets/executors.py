"""The executor, chosen by configuration only (`DEALER_EXECUTOR`): in-process by default, `multiprocess`,
or `celery` for steps spread over worker machines (broker from `DEALER_CELERY_BROKER`)."""
from __future__ import annotations

import os

import dagster as dg


def executor_from_env() -> dg.ExecutorDefinition:
    kind = (os.environ.get("DEALER_EXECUTOR") or "in_process").strip()
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        return dg.multiprocess_executor
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured({
            "broker": {"env": "DEALER_CELERY_BROKER"},
            "backend": {"env": "DEALER_CELERY_BACKEND"} if os.environ.get("DEALER_CELERY_BACKEND") else "rpc://",
        })
    raise ValueError(f"environment: DEALER_EXECUTOR: {kind!r} is not one of in_process, multiprocess, celery")
