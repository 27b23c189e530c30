"""Protractor notifications in batches (at most one run per interval, each taking every pending notification),
and no area's runs waiting behind another area's under the dev and the production instance configs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from dealer_assets.core.tags import AREA_TAG, SOURCE_TAG
from dealer_assets.protractor.defs import sensors
from dealer_assets.protractor.defs.assets import WORK_ORDERS_OP
from dealer_assets.protractor.defs.jobs import EVENTS_JOB
from dealer_assets.protractor.fake import FakeProtractor
from dealer_assets_tests.protractor.support import Setup, journaled
from dealer_assets_tests.support import wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SWEEP = {"ops": {WORK_ORDERS_OP: {"config": {"mode": "sweep"}}}}
STARTED = dg.DagsterRunStatus.STARTED
QUEUED = dg.DagsterRunStatus.QUEUED


@pytest.mark.slow
def test_a_burst_of_notifications_starts_one_run_per_interval(
    setup: Setup, fake: FakeProtractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A callback every 30 s for 11 minutes: runs at 0, 5 and 10 minutes (the default interval), never more."""
    assert setup.materialize(SWEEP).success
    sensor = setup.full.resolve_sensor_def("protractor_events_sensor")
    job_tags = setup.full.resolve_job_def(EVENTS_JOB).tags
    instance = dg.DagsterInstance.ephemeral()
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    shop = fake.accounts["north"].shop
    requested, cursor = [], None
    for tick in range(23):
        now = start + timedelta(seconds=30 * tick)
        monkeypatch.setattr(sensors, "utc_now", lambda now=now: now)
        wo = sorted(shop.orders)[tick % len(shop.orders)]
        fake.notify("north", [shop.set_stage(wo, "Approved" if tick % 2 else "Unassigned", now)])
        wait_for(lambda tick=tick: journaled(setup.data_dir) >= tick + 1, "the callback journaled")
        with dg.build_sensor_context(resources=setup.resources, instance=instance, cursor=cursor) as ctx:
            result = sensor(ctx)
            cursor = ctx.cursor
        if isinstance(result, dg.RunRequest):
            requested.append(now - start)
            run = dg.DagsterRun(job_name=result.job_name, status=dg.DagsterRunStatus.SUCCESS, tags=job_tags)
            instance.add_run(run)
    assert requested == [timedelta(0), timedelta(minutes=5), timedelta(minutes=10)]
    assert setup.materialize().success
    assert setup.count("SELECT count(*) FROM protractor_events WHERE processed_at IS NULL") == 0, (
        "a run takes every pending notification"
    )


def _instance_config(name: str) -> dict:
    """The run queue of a deploy config, over a throwaway SQLite instance."""
    config = yaml.safe_load((DEPLOY / name).read_text())
    return {key: config[key] for key in ("run_coordinator", "concurrency") if key in config}


def _run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, area: str, **tags: str) -> str:
    """A run of `area` as its jobs tag it, from the code location `dealer_assets`."""
    repository = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("dealer_assets"), "__repository__")
    run = dg.DagsterRun(
        job_name=f"{area}_job",
        status=status,
        tags={AREA_TAG: area, **tags},
        remote_job_origin=RemoteJobOrigin(repository, f"{area}_job"),
    )
    instance.add_run(run)
    return run.run_id


def _dequeued(instance: dg.DagsterInstance) -> set[str]:
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    runs = daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)
    return {r.run_id for r in runs}


@pytest.mark.slow
@pytest.mark.parametrize("config", ["dagster.dev.yaml", "dagster.yaml"])
def test_a_dms_feed_run_never_waits_behind_a_burst_of_protractor_notifications(config: str) -> None:
    with dg.instance_for_test(overrides=_instance_config(config)) as instance:
        _run(instance, STARTED, "protractor")
        burst = [_run(instance, QUEUED, "protractor") for _ in range(20)]
        _run(instance, STARTED, "xtime")
        feed = _run(instance, QUEUED, "dms", **{SOURCE_TAG: "generic"})
        dequeued = _dequeued(instance)
        assert feed in dequeued, "the DMS feed run starts at once"
        assert not dequeued & set(burst), "one Protractor run at a time"


@pytest.mark.slow
@pytest.mark.parametrize("config", ["dagster.dev.yaml", "dagster.yaml"])
def test_every_area_runs_beside_a_full_queue_of_the_others(config: str) -> None:
    """Forty DMS feed runs of distinct sources queued first: a Protractor and an Xtime run start all the same."""
    with dg.instance_for_test(overrides=_instance_config(config)) as instance:
        for i in range(40):
            _run(instance, QUEUED, "dms", **{SOURCE_TAG: f"source_{i}"})
        protractor = _run(instance, QUEUED, "protractor")
        xtime = _run(instance, QUEUED, "xtime")
        assert {protractor, xtime} <= _dequeued(instance)
