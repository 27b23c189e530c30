"""DEALER_EXECUTOR=celery for real: a separate `dagster-celery worker` process on RabbitMQ executes the steps
of the real `dms_generic_feeds_job` job, with PostgreSQL instance storage (deploy/dagster.yaml) and a PostgreSQL
warehouse, and leaves the tables an in-process run leaves.

Broker: DEALER_TEST_CELERY_BROKER (default pyamqp://guest@127.0.0.1:5672//). Each test uses its own queue,
deleted afterwards, so stale messages from other runs cannot reach it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from dagster import DagsterEventType

from dealer_assets_tests.support import (
    BIN,
    DEPLOY,
    PROJECT,
    Production,
    at,
    group_alive,
    make_root,
    range_tags,
    reference_tables,
    snapshot,
    stop_group,
    vin,
)

BROKER = os.environ.get("DEALER_TEST_CELERY_BROKER") or "pyamqp://guest@127.0.0.1:5672//"
STEPS = ["generic__raw_dms_feeds", "generic__normalized_vehicles", "generic__service_requests"]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def _broker_ready() -> None:
    from kombu import Connection

    with Connection(BROKER, connect_timeout=5) as conn:
        conn.ensure_connection(max_retries=2)


def _delete_queue(queue: str) -> None:
    from kombu import Connection

    try:
        with Connection(BROKER, connect_timeout=5) as conn:
            conn.default_channel.queue_delete(queue)
    except Exception:
        pass


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(
                f"celery worker exited ({proc.returncode}) before {what}:\n" + log.read_text()[-4000:]
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"celery worker: no {what} within {timeout}s:\n" + log.read_text()[-4000:])
        time.sleep(0.3)


def test_dms_job_steps_run_in_a_separate_celery_worker(production: Production, pg_databases, tmp_path: Path):
    _broker_ready()
    queue = f"dealer_assets_test_{uuid.uuid4().hex[:10]}"
    worker_name = f"{queue}@{socket.gethostname()}"
    root = make_root(tmp_path / "root", pg_databases("wh"))
    reference = make_root(tmp_path / "reference", pg_databases("ref"))
    days = [
        [("D1", vin(1), "S0", "U"), ("D2", vin(2), "X", "U")],
        [("D1", vin(1), "S1", "U")],
        [("D1", vin(1), "S2", "U"), ("D2", vin(3), "X", "U")],
    ]
    for r in (root, reference):  # feeds an hour apart: a three-partition range, few Dagster events
        for d, rows in enumerate(days):
            r.drop_feed("generic", at(0, 12 + d), rows)
    first, last = "2026-11-01", "2026-11-01"

    env = {
        **os.environ,
        **production.env,
        **root.env(),
        "DEALER_EXECUTOR": "celery",
        "DEALER_CELERY_BROKER": BROKER,
        "DEALER_CELERY_BACKEND": "rpc://",
        "DEALER_CELERY_QUEUE": queue,
        # dagster-celery starts `celery` from PATH: the venv's, as in an activated environment
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [
                str(BIN / "dagster-celery"),
                "worker",
                "start",
                "-A",
                "dagster_celery.app",
                "-y",
                str(DEPLOY / "celery_worker.yaml"),
                "-q",
                queue,
                "-n",
                queue,
                "-l",
                "INFO",
                "--",
                "--concurrency=1",
                "--without-mingle",
                "--without-gossip",
            ],
            env=env,
            cwd=PROJECT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    orchestrator = None
    try:
        _wait_for(lambda: f"{worker_name} ready." in log.read_text(), 60, "ready line", worker, log)
        orchestrator = subprocess.Popen(
            [
                str(BIN / "dagster"),
                "job",
                "execute",
                "-m",
                "dealer_assets.definitions",
                "-j",
                "dms_generic_feeds_job",
                "--tags",
                json.dumps(range_tags(first, last)),
            ],
            env=env,
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        output = orchestrator.communicate(timeout=150)[0]
        assert orchestrator.returncode == 0, output[-5000:]
        worker_pids = {p.pid for p in group_alive(worker.pid)}
    finally:
        if orchestrator is not None and orchestrator.poll() is None:
            stop_group(orchestrator, signal.SIGKILL, 10)
        stopped_cleanly = stop_group(worker, signal.SIGTERM, 30)
        _delete_queue(queue)
    assert stopped_cleanly, "the worker did not stop on SIGTERM within 30 s:\n" + log.read_text()[-3000:]
    worker_log = log.read_text()
    assert "Warm shutdown" in worker_log

    instance = production.instance()
    try:
        [run] = instance.get_runs()
        assert run.is_success and run.job_name == "dms_generic_feeds_job"
        starts = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.STEP_START).records
        pids = {r.event_log_entry.step_key: r.event_log_entry.dagster_event.pid for r in starts}
        assert sorted(pids) == sorted(STEPS)
        assert set(pids.values()) <= worker_pids, (pids, worker_pids)
        assert orchestrator.pid not in pids.values() and os.getpid() not in pids.values()
        successes = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.STEP_SUCCESS).records
        assert {r.event_log_entry.step_key: r.event_log_entry.dagster_event.pid for r in successes} == pids
        engine = [
            r.event_log_entry.dagster_event
            for r in instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ENGINE_EVENT).records
        ]
        submitted = f'Submitting celery task for step "generic__raw_dms_feeds" to queue "{queue}"'
        assert any(submitted in (e.message or "") for e in engine), [e.message for e in engine]
        handoffs = [e for e in engine if "in celery worker" in (e.message or "")]
        assert {e.step_key for e in handoffs} == set(STEPS)
        assert {e.event_specific_data.metadata["Celery worker"].value for e in handoffs} == {worker_name}
    finally:
        instance.dispose()

    expected = reference_tables(reference, {"generic": (first, last)})
    assert len(expected["service_requests"]) == 3
    assert snapshot(root.paths.warehouse_url) == expected
