"""What every area's commands share: the Dagster instance at DAGSTER_HOME and how a run is reported."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
from filelock import FileLock
from sqlalchemy.engine import make_url

from dealer_assets.core import quiet
from dealer_assets.core.abandoned_runs import fail_abandoned_runs, process_tag
from dealer_assets.core.env import PROJECT_ROOT
from dealer_assets.core.run_log import collect_figures, failed_check_lines, run_line
from dealer_assets.core.tags import COMMAND_TAG, PROCESS_TAG

DEV_INSTANCE_CONFIG = PROJECT_ROOT / "deploy" / "dagster.dev.yaml"
VERBOSE = False
"""Set by `dealer-assets --verbose`: the runs' console log goes to DEBUG."""
COMMAND = "dealer-assets"
"""Set by `dealer-assets` to the command it runs; its runs carry it (COMMAND_TAG)."""


def run_config() -> dict:
    return quiet.run_config(VERBOSE)


def command_tags(**extra: str) -> dict[str, str]:
    """The tags of a run a command starts: the command prints its line (print_run), the instance does not;
    the process runs it (a run left unfinished by a killed process is marked failed: core/abandoned_runs.py)."""
    return {COMMAND_TAG: COMMAND, PROCESS_TAG: process_tag(), **extra}


INSTANCE_LOCK = ".dealer_assets_instance.lock"
INSTANCE_LOCK_TIMEOUT_SECONDS = 600


def instance() -> dg.DagsterInstance:
    """The instance at DAGSTER_HOME (default: the project's `.dagster_home/`), so runs show in the UI.

    A home without a `dagster.yaml` gets the embedded defaults of `make dev` (runs one at a time, no telemetry).
    Opening it creates and stamps Dagster's own storage (its SQLite databases and their Alembic versions)
    the first time; commands started together on a fresh home would race there and leave it with two heads
    for good, so one process at a time opens it, behind a lock file in DAGSTER_HOME. The runs of commands
    killed before are marked failed then, one line each.
    """
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(PROJECT_ROOT / ".dagster_home")
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(home / INSTANCE_LOCK, timeout=INSTANCE_LOCK_TIMEOUT_SECONDS):
        config = home / "dagster.yaml"
        if not config.exists() and DEV_INSTANCE_CONFIG.exists():
            shutil.copyfile(DEV_INSTANCE_CONFIG, config)
        opened = dg.DagsterInstance.get()
        opened.get_runs_count()
        opened.fetch_materializations(dg.AssetKey("dealer_assets_instance_probe"), limit=1)
        opened.all_instigator_state()
        for line in fail_abandoned_runs(opened):
            print(line)
    return opened


def print_run(label: str, result: dg.ExecuteInProcessResult) -> None:
    """One line per run: what it was, how it ended and its figures; a failed check in full on a line of its own."""
    figures: dict[str, object] = {}
    for event in result.get_asset_materialization_events():
        collect_figures(figures, event.event_specific_data.materialization.metadata)
    print(run_line(label, "succeeded" if result.success else "FAILED", result.run_id, figures))
    failed = [
        (c.asset_check_key.name, c.description) for c in result.get_asset_check_evaluations() if not c.passed
    ]
    for line in failed_check_lines(failed):
        print(line)


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
