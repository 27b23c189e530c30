"""Run tags: Dagster's public partition-range tags and the project's own, each defined once."""

PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
PARENT_RUN_ID_TAG = "dagster/parent_run_id"
SOURCE_TAG = "dealer_assets/source"
MODE_TAG = "dealer_assets/mode"
REPLAY_FROM_TAG = "dealer_assets/replay_from"
COMMAND_TAG = "dealer_assets/command"
"""On the runs a `dealer-assets` command starts (its name, e.g. `catch-up`): the command prints their one line
itself (core/run_log.py)."""
PROCESS_TAG = "dealer_assets/process"
"""On the same runs: `host/pid-namespace:pid:start` of the command's process, to tell when it was killed mid-run
(core/abandoned_runs.py)."""
AREA_TAG = "dealer_assets/area"
"""Every run of an area carries it (`dms`, `protractor`, `xtime`): the run queue limits runs per area with it
(deploy/dagster*.yaml), so no area's runs wait behind another's."""


def range_tags(first: str, last: str, **extra: str) -> dict[str, str]:
    """Tags that make a job run over the partition range first...last in one run."""
    return {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last, **extra}


def area_tags(area: str, **extra: str) -> dict[str, str]:
    """The tags every run of `area` carries, whatever launches it."""
    return {AREA_TAG: area, **extra}
