"""The terminal of `make dev`: a run the instance launches prints one line (what, which partitions, how it
ended, its figures) and no DEBUG event; a run a command starts is left to the command's own line."""

from __future__ import annotations

import io
import logging
import shutil
from pathlib import Path

import dagster as dg
import pytest

from dealer_assets.core.run_log import RunLineHandler
from dealer_assets.core.tags import COMMAND_TAG, PARENT_RUN_ID_TAG
from dealer_assets.definitions import build_definitions
from dealer_assets_tests.support import DEPLOY, DataRoot, at, range_tags, vin

pytestmark = pytest.mark.slow


def _dev_instance(home: Path) -> dg.DagsterInstance:
    home.mkdir()
    shutil.copyfile(DEPLOY / "dagster.dev.yaml", home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def _run(data_root: DataRoot, instance: dg.DagsterInstance, **tags: str) -> dg.ExecuteInProcessResult:
    job = build_definitions(data_root.dealer_env()).resolve_job_def("dms_generic_feeds_job")
    return job.execute_in_process(
        instance=instance, raise_on_error=False, tags={**range_tags("2026-11-01", "2026-11-02"), **tags}
    )


def test_a_run_the_instance_launches_prints_one_line_and_no_debug(
    data_root: DataRoot, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data_root.drop_feed("generic", at(0), [("D1", vin(1), "S1", "U"), ("D1", vin(2), "S2", "U")])
    data_root.drop_feed("generic", at(1), [("D1", vin(1), "S1", "U")])
    instance = _dev_instance(tmp_path / "home")
    capsys.readouterr()
    result = _run(data_root, instance)
    assert result.success
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    (line,) = lines
    assert line.startswith(
        f"dms_generic_feeds_job 2026-11-01...2026-11-02: succeeded (run {result.run_id[:8]}): feeds 2,"
    ), line
    assert "created 2" in line and "mode incremental" in line
    assert instance.get_records_for_run(result.run_id).records, "the event log keeps every event"


def test_a_run_a_command_starts_is_left_to_the_command(
    data_root: DataRoot, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data_root.drop_feed("generic", at(0), [("D1", vin(1), "S1", "U")])
    instance = _dev_instance(tmp_path / "home")
    capsys.readouterr()
    assert _run(data_root, instance, **{COMMAND_TAG: "catch-up"}).success
    assert capsys.readouterr().err.strip() == ""


def _handled(job_tags: dict[str, str], events: list[dg.DagsterEvent]) -> list[str]:
    stream = io.StringIO()
    handler = RunLineHandler(stream=stream)
    for event in events:
        record = logging.LogRecord("dagster", logging.DEBUG, "", 0, "", (), None)
        record.dagster_meta = {
            "dagster_event": event,
            "run_id": "abcdef0123",
            "job_name": "j",
            "job_tags": job_tags,
        }
        handler.handle(record)
    return stream.getvalue().splitlines()


def test_a_re_execution_of_a_commands_run_prints_its_line() -> None:
    """The UI's re-execution copies the command's tags but runs without the command to print its line."""
    ended = [dg.DagsterEvent(dg.DagsterEventType.RUN_SUCCESS.value, "j")]
    assert _handled({COMMAND_TAG: "catch-up"}, ended) == []
    reexecuted = {COMMAND_TAG: "catch-up", PARENT_RUN_ID_TAG: "0123456789"}
    assert _handled(reexecuted, ended) == ["j: succeeded (run abcdef01)"]


def test_a_failed_check_and_a_failed_run_show_under_the_line() -> None:
    job_tags = {"dagster/partition": "2026-11-02"}
    check = dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(["dms", "generic", "service_requests"]),
        check_name="auto_close_guard",
        passed=False,
        description="dealer D1: 4 of 5 closes held",
    )
    events = [
        dg.DagsterEvent(dg.DagsterEventType.ASSET_CHECK_EVALUATION.value, "j", event_specific_data=check),
        dg.DagsterEvent(dg.DagsterEventType.RUN_FAILURE.value, "j"),
    ]
    assert _handled(job_tags, events) == [
        "j 2026-11-02: FAILED (run abcdef01)",
        "  check auto_close_guard failed: dealer D1: 4 of 5 closes held",
    ]


def test_the_development_instance_opens_the_ui_without_the_community_dialog(tmp_path: Path) -> None:
    instance = _dev_instance(tmp_path / "home")
    assert instance.nux_enabled is False
    assert instance.python_log_level == "INFO"
