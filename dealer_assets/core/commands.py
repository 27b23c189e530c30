"""What every area's commands share: the Dagster instance at DAGSTER_HOME and how a run is reported."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
from filelock import FileLock
from sqlalchemy.engine import make_url

from dealer_assets.core import quiet
from dealer_assets.core.env import PROJECT_ROOT

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
DEV_INSTANCE_CONFIG = PROJECT_ROOT / "deploy" / "dagster.dev.yaml"
VERBOSE = False
"""Set by `dealer-assets --verbose`: the runs' console log goes to DEBUG."""


def run_config() -> dict:
    return quiet.run_config(VERBOSE)


INSTANCE_LOCK = ".dealer_assets_instance.lock"
INSTANCE_LOCK_TIMEOUT_SECONDS = 600


def instance() -> dg.DagsterInstance:
    """The instance at DAGSTER_HOME (default: the project's `.dagster_home/`), so runs show in the UI.

    A home without a `dagster.yaml` gets the embedded defaults of `make dev` (runs one at a time, no telemetry).
    Opening it creates and stamps Dagster's own storage (its SQLite databases and their Alembic versions)
    the first time; commands started together on a fresh home would race there and leave it with two heads
    for good, so one process at a time opens it, behind a lock file in DAGSTER_HOME.
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
    return opened


def print_run(label: str, result: dg.ExecuteInProcessResult) -> None:
    """One line per run: what it was, how it ended and its figures; a failed check in full on a line of its own."""
    status = "succeeded" if result.success else "FAILED"
    figures: dict[str, object] = {}
    for event in result.get_asset_materialization_events():
        metadata = event.event_specific_data.materialization.metadata
        for key in SHOWN_FIGURES:
            if key in metadata and key.removeprefix("run/") not in figures:
                figures[key.removeprefix("run/")] = metadata[key].value
    shown = ", ".join(f"{k} {v}" for k, v in figures.items())
    print(f"{label}: {status} (run {result.run_id[:8]})" + (f": {shown}" if shown else ""))
    for check in result.get_asset_check_evaluations():
        if not check.passed:
            print(f"  check {check.asset_check_key.name} failed: {check.description or ''}")


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
