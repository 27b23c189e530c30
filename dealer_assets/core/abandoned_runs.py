"""Runs whose command was killed: marked failed, so that they neither show as running for ever nor hold up
their area's queue.

A run a `dealer-assets` command starts executes inside the command's own process. Killed there (SIGKILL, an
out-of-memory kill, a lost host), nothing is left to report how it ended: Dagster keeps it STARTED, and the
run queue, which lets one run per area go at a time (deploy/dagster*.yaml), would hold every later run of
that area behind it. Each such run carries the process that runs it (PROCESS_TAG: host and PID namespace, pid,
and the process's start time, so that a reused pid is not taken for it). The next command, and the daemon's
sensor `core_abandoned_runs_sensor` every minute, mark the runs of a process that no longer exists as failed,
saying why; a run of another host or container is left alone, since its process cannot be seen from here.
Running the command again finishes the work: every step resumes from what the archive and warehouse hold.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg

from dealer_assets.core.run_status import IN_FLIGHT
from dealer_assets.core.tags import COMMAND_TAG, PROCESS_TAG

SENSOR_NAME = "core_abandoned_runs_sensor"
SENSOR_INTERVAL_SECONDS = 60
UNFINISHED = [s for s in IN_FLIGHT if s != dg.DagsterRunStatus.QUEUED]
"""A queued run has no process yet."""


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat, field 22); None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _here() -> str:
    """This host and PID namespace: a pid means the same process only where both are the same (containers)."""
    try:
        namespace = "".join(filter(str.isdigit, os.readlink("/proc/self/ns/pid")))
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{namespace}"


def process_tag(pid: int | None = None) -> str:
    """`host/pid-namespace:pid:start` of this process (or of `pid`)."""
    pid = os.getpid() if pid is None else pid
    return f"{_here()}:{pid}:{_start_ticks(pid) or ''}"


def process_gone(tag: str) -> bool:
    """Whether the process a tag names has ended; False when it ran on another host or in another PID
    namespace, or when it cannot be told."""
    parts = tag.rsplit(":", 2)
    if len(parts) != 3 or not Path("/proc/self/stat").exists():
        return False
    host, pid, started = parts
    if host != _here() or not pid.isdigit() or not started:
        return False
    return _start_ticks(int(pid)) != started


def abandoned_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Unfinished runs executed in a command's process that has ended. A run launched through a code location
    (the daemon, the UI) has an origin there and runs in a process of its own, even when it copied a command
    run's tags (a re-execution from the UI does): it is never judged by the tag."""
    records = instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED))
    return [
        r.dagster_run
        for r in records
        if r.dagster_run.remote_job_origin is None
        and PROCESS_TAG in r.dagster_run.tags
        and process_gone(r.dagster_run.tags[PROCESS_TAG])
    ]


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark every abandoned run failed; one line per run, saying what it was and why it is marked so."""
    lines = []
    for run in abandoned_runs(instance):
        pid = run.tags[PROCESS_TAG].rsplit(":", 2)[1]
        command = run.tags.get(COMMAND_TAG, "a dealer-assets command")
        message = (
            f"The process of `{command}` (pid {pid}) ended without finishing this run: it was killed "
            "(SIGKILL, out of memory or a lost host). Marked failed so that the area's queue moves on; "
            "running the command again finishes the work."
        )
        instance.report_run_failed(run, message)
        lines.append(f"{run.job_name} run {run.run_id} marked failed: `{command}` (pid {pid}) was killed")
    return lines


@dg.sensor(
    name=SENSOR_NAME,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks failed the runs of dealer-assets commands that were killed (core/abandoned_runs.py).",
)
def abandoned_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    lines = fail_abandoned_runs(context.instance)
    for line in lines:
        context.log.warning(line)
    return dg.SkipReason("; ".join(lines) or "no run of a killed command")
