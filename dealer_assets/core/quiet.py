"""The one place where warnings we have chosen to live with are silenced, and the commands' log level.

Only Dagster's beta and preview notices raised by this package's own calls are silenced (the `module` filter
matches the caller the warning is attributed to), and the beta notice of the development instance's run-line
handler (`python_logs.dagster_handler_config`, deploy/dagster.dev.yaml), which Dagster raises once per run;
every other warning, and any deprecation, still shows.
"""

from __future__ import annotations

import warnings

import dagster as dg

OWN_MODULES = r"dealer_assets(\..*)?$"


def silence_chosen_warnings() -> None:
    for category in (dg.BetaWarning, dg.PreviewWarning):
        warnings.filterwarnings("ignore", category=category, module=OWN_MODULES)
    warnings.filterwarnings(
        "ignore", message="Handling yaml-defined logging configuration", category=dg.BetaWarning
    )


def run_config(verbose: bool = False) -> dict:
    """Run config for a command's runs: the console logger at INFO, or DEBUG with `--verbose`."""
    return {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "INFO"}}}}
