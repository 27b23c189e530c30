"""A run whose command was killed is marked failed (core/abandoned_runs.py), and only such a run: a live
process's, another host's and the daemon's runs (re-executions of a command's run included) are left as they
are."""

from __future__ import annotations

import os
import subprocess

import dagster as dg
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin

from dealer_assets.core.abandoned_runs import (
    SENSOR_NAME,
    abandoned_runs_sensor,
    process_gone,
    process_tag,
)
from dealer_assets.core.tags import COMMAND_TAG, PROCESS_TAG
from dealer_assets.definitions import defs
from dealer_assets_tests.support import stand_in_job


def _ended_process_tag() -> str:
    ended = subprocess.Popen(["true"])
    tag = process_tag(ended.pid)
    ended.wait()
    return tag


def test_a_process_tag_tells_a_live_process_from_an_ended_one() -> None:
    assert not process_gone(process_tag())
    assert process_gone(_ended_process_tag())
    host, pid, started = process_tag().rsplit(":", 2)
    assert process_gone(f"{host}:{pid}:{int(started) + 1}"), "a reused pid is another process"
    assert not process_gone(f"another-host:{pid}:1"), "another host's process cannot be seen from here"
    assert not process_gone(f"{host.split('/')[0]}/1:{pid}:1"), "nor another container's (PID namespace)"
    for unreadable in ("", "garbage", f"{host}:x:1", f"{host}:{pid}:"):
        assert not process_gone(unreadable)


def _started(instance: dg.DagsterInstance, tags: dict[str, str], launched: bool = False) -> str:
    """A run as a command's `execute_in_process` leaves it, or (`launched`) as the daemon or the UI does."""
    origin = None
    if launched:
        repository = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("dealer_assets"), "__repository__")
        origin = RemoteJobOrigin(repository, stand_in_job.name)
    run = instance.create_run_for_job(
        stand_in_job, status=dg.DagsterRunStatus.STARTED, tags=tags, remote_job_origin=origin
    )
    return run.run_id


def test_the_sensor_marks_only_a_killed_commands_runs_failed() -> None:
    with dg.instance_for_test() as instance:
        dead = _ended_process_tag()
        killed = _started(instance, {COMMAND_TAG: "catch-up", PROCESS_TAG: dead})
        live = _started(instance, {COMMAND_TAG: "catch-up", PROCESS_TAG: process_tag()})
        elsewhere = _started(instance, {COMMAND_TAG: "replay", PROCESS_TAG: f"another-host:{os.getpid()}:1"})
        daemons = _started(instance, {}, launched=True)
        reexecuted = _started(instance, {COMMAND_TAG: "catch-up", PROCESS_TAG: dead}, launched=True)

        with dg.build_sensor_context(instance=instance) as context:
            skip = abandoned_runs_sensor(context)
        assert f"stand_in_job run {killed} marked failed: `catch-up` (pid " in skip.skip_message
        runs = (killed, live, elsewhere, daemons, reexecuted)
        status = {run_id: instance.get_run_by_id(run_id).status for run_id in runs}
        assert status == {
            killed: dg.DagsterRunStatus.FAILURE,
            live: dg.DagsterRunStatus.STARTED,
            elsewhere: dg.DagsterRunStatus.STARTED,
            daemons: dg.DagsterRunStatus.STARTED,
            reexecuted: dg.DagsterRunStatus.STARTED,
        }, "a launched run with a command run's tags (a re-execution) runs in a process of its own"
        [why] = [e.message for e in instance.all_logs(killed) if "ended without finishing" in e.message]
        assert "running the command again finishes the work" in why

        with dg.build_sensor_context(instance=instance) as context:
            again = abandoned_runs_sensor(context)
        assert again.skip_message == "no run of a killed command"


def test_the_sensor_runs_by_default_in_the_code_location() -> None:
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
