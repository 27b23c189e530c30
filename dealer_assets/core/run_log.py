"""One line per run on the terminal: what ran, over which partitions, how it ended, its figures.

The commands print it for the runs they start (`print_run` in core/commands); `RunLineHandler` prints it for
every other run of the instance (the sensors', schedules', backfills' and the UI's), installed by the
development instance (deploy/dagster.dev.yaml, `python_logs.dagster_handler_config`), whose console log stays
at INFO: warnings and errors in full, Dagster's DEBUG events only in the event log.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Mapping

import dagster as dg

from dealer_assets.core.tags import (
    COMMAND_TAG,
    PARENT_RUN_ID_TAG,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)

SHOWN_FIGURES = (
    "run/feeds",
    "run/archived_files",
    "run/quarantined_files",
    "run/malformed_rows",
    "run/vehicles",
    "run/rejected_rows",
    "run/feeds_applied",
    "run/late_feeds",
    "run/created",
    "run/updated",
    "run/closed",
    "run/held",
    "run/guard_trips",
    "run/skipped",
    "active_after_run",
    "quarantined",
    "mode",
    "notifications_processed",
    "work_orders_fetched",
    "versions_written",
    "versions_superseded",
    "packages_added",
    "packages_updated",
    "this_run",
    "bookings_sent",
    "windows_passed",
    "requests_held",
)
"""The figures a run line shows, in this order, each once (the first materialization that has it)."""

ENDINGS = {
    dg.DagsterEventType.RUN_SUCCESS: "succeeded",
    dg.DagsterEventType.RUN_FAILURE: "FAILED",
    dg.DagsterEventType.RUN_CANCELED: "canceled",
}


def collect_figures(figures: dict[str, object], metadata: Mapping[str, object]) -> None:
    for key in SHOWN_FIGURES:
        if key in metadata and key.removeprefix("run/") not in figures:
            value = metadata[key]
            figures[key.removeprefix("run/")] = getattr(value, "value", value)


def run_line(label: str, ending: str, run_id: str, figures: Mapping[str, object]) -> str:
    shown = ", ".join(f"{k} {v}" for k, v in figures.items())
    return f"{label}: {ending} (run {run_id[:8]})" + (f": {shown}" if shown else "")


def failed_check_lines(failed: Iterable[tuple[str, str | None]]) -> list[str]:
    return [f"  check {name} failed: {description or ''}" for name, description in failed]


def partitions_of(tags: Mapping[str, str]) -> str:
    if PARTITION_RANGE_START_TAG in tags:
        first, last = tags[PARTITION_RANGE_START_TAG], tags.get(PARTITION_RANGE_END_TAG, "")
        return first if first == last else f"{first}...{last}"
    return tags.get("dagster/partition", "")


def _left_to_a_command(tags: Mapping[str, str]) -> bool:
    """A command's own run; a re-execution of one (launched from the UI, copying its tags) is not."""
    return COMMAND_TAG in tags and PARENT_RUN_ID_TAG not in tags


class RunLineHandler(logging.Handler):
    """Reads a run's Dagster events as they are logged and writes its line once it ends.

    Figures come from the materializations logged in this process: with the in-process executor (the default)
    that is every step; with a multiprocess or Celery executor the line says how the run ended, without them.
    Runs a command started are left to the command, which prints the same line on its standard output (their
    re-executions are not).
    Dagster builds a handler for the run and more for its steps, so what a run has shown so far is kept per
    process, by run id, until the run ends.
    """

    _runs: dict[str, dict] = {}
    _guard = threading.Lock()

    def __init__(self, level: int | str = logging.DEBUG, stream=None) -> None:
        super().__init__(level)
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        run_id = meta.get("run_id")
        if event is None or run_id is None or _left_to_a_command(meta.get("job_tags") or {}):
            return
        kind = event.event_type
        with self._guard:
            run = self._runs.setdefault(run_id, {"figures": {}, "failed": []})
            if kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
                collect_figures(run["figures"], event.event_specific_data.materialization.metadata)
            elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not event.event_specific_data.passed:
                check = event.event_specific_data
                run["failed"].append((check.asset_check_key.name, check.description))
            elif kind in ENDINGS:
                self._runs.pop(run_id)
                self._write(meta, ENDINGS[kind], run_id, run)

    def _write(self, meta: Mapping, ending: str, run_id: str, run: dict) -> None:
        label = " ".join(filter(None, [meta.get("job_name"), partitions_of(meta.get("job_tags") or {})]))
        lines = [run_line(label, ending, run_id, run["figures"]), *failed_check_lines(run["failed"])]
        stream = self.stream or sys.stderr
        stream.write("\n".join(lines) + "\n")
        stream.flush()
