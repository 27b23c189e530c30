"""The Dagster wiring: definitions load, assets materialize over partition ranges, the sensor and its cursor,
and the console commands end to end in a temp directory (SQLite and PostgreSQL warehouses)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dealer_assets.core.tags import MODE_TAG, PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG, SOURCE_TAG
from dealer_assets.core.warehouse import engine_for
from dealer_assets.definitions import build_definitions
from dealer_assets.dms.defs.assets import keys_for
from dealer_assets.dms.ingest import ingest_raw_feeds
from dealer_assets.dms.settings import load_settings
from dealer_assets_tests.support import DataRoot, at, run_command, snapshot, stand_in_job, vin

PROJECT = Path(__file__).resolve().parents[2]
DEALER_ASSETS = str(Path(sys.executable).parent / "dealer-assets")


def range_tags(first: str, last: str, mode: str = "incremental") -> dict[str, str]:
    return {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last, MODE_TAG: mode}


@pytest.mark.e2e
def test_sample_definitions_load_and_validate_with_dagster_and_dg():
    env = {**os.environ, "DAGSTER_HOME": str(PROJECT / ".dagster_home")}
    Path(env["DAGSTER_HOME"]).mkdir(exist_ok=True)
    out = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    dg = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "check", "defs"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dg.returncode == 0 and "All definitions loaded successfully" in dg.stdout + dg.stderr, dg.stderr[
        -3000:
    ]
    defs = build_definitions()
    assert defs.resolve_job_def("dms_generic_feeds_job") is not None
    assert defs.resolve_job_def("dms_northgate_feeds_job") is not None


def test_invalid_settings_stop_definitions_naming_file_and_key(data_root: DataRoot):
    data_root.settings(data_root.paths.settings_file.read_text().replace("days: 3}", "dayz: 3}", 1))
    from dealer_assets.core.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        build_definitions(data_root.dealer_env())
    assert str(data_root.paths.settings_file) in str(err.value)
    assert "sources.generic.track_stock_no_and_client.dayz: unknown key" in str(err.value)


@pytest.mark.slow
def test_materialize_a_partition_range_in_one_run(data_root: DataRoot):
    defs = build_definitions(data_root.dealer_env())
    for d in range(3):
        data_root.drop_feed("generic", at(d), [("D1", vin(1), f"S{d}", "U"), ("D2", vin(d + 2), "X", "U")])
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("dms_generic_feeds_job")
    result = job.execute_in_process(instance=instance, tags=range_tags("2026-11-01", "2026-11-03"))
    assert result.success
    raw, normalized, srs = keys_for("generic")
    mats = result.asset_materializations_for_node("generic__service_requests")
    srs_mats = [m for m in mats if m.asset_key == srs]
    assert len(srs_mats) == 3 and srs_mats[0].metadata["run/feeds_applied"].value == 3
    assert srs_mats[0].metadata["run/created"].value == 4 and srs_mats[0].metadata["run/updated"].value == 2
    assert "created" not in srs_mats[0].metadata and "dagster/row_count" not in srs_mats[0].metadata
    norm = [
        m
        for m in result.asset_materializations_for_node("generic__normalized_vehicles")
        if m.asset_key == normalized
    ][0]
    assert norm.metadata["run/vehicles"].value == 6
    assert not any(k.startswith("vehicles/") for k in norm.metadata)
    per_dealer = {
        r.data["dealer_id"]: r.data["vehicles"] for r in norm.metadata["run/per_dealer"].value.records
    }
    assert per_dealer == {"D1": 3, "D2": 3}
    assert "| dealer_id |" in norm.metadata["preview"].value
    checks = {c.asset_check_key.name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        "no_quarantined_files": True,
        "rejected_row_share": True,
        "check_digits_valid": True,
        "auto_close_guard": True,
        "one_active_sr_per_vin": True,
        "events_refer_to_existing_srs": True,
        "dealers_covered_within_3_days": True,
        "no_late_feeds": True,
    }
    status = instance.get_status_by_partition(srs, ["2026-11-02"], job.partitions_def)
    assert status is not None

    again = job.execute_in_process(instance=instance, tags=range_tags("2026-11-02", "2026-11-02", "replay"))
    assert again.success
    tables = snapshot(data_root.paths.warehouse_url)
    assert len(tables["service_requests"]) == 4 and len(tables["applied_feeds"]) == 3


@pytest.mark.slow
def test_materialize_with_assets_api(data_root: DataRoot):
    """`dagster.materialize` over the source's assets, as the UI's materialize button does."""
    defs = build_definitions(data_root.dealer_env())
    data_root.drop_feed("generic", at(0), [("D1", vin(1), "S1", "U")])
    from dealer_assets.dms.defs.assets import build_source_assets
    from dealer_assets.dms.partitions import feed_partitions

    assets = build_source_assets("generic", feed_partitions(data_root.paths.history_start))
    result = dg.materialize(
        assets,
        partition_key="2026-11-01",
        resources=defs.resources,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    mat = result.asset_materializations_for_node("generic__service_requests")[0]
    assert mat.metadata["mode"].value == "replay" and mat.metadata["run/created"].value == 1
    (row,) = [r.data for r in mat.metadata["run/per_dealer"].value.records]
    assert row["dealer_id"] == "D1" and row["created"] == 1 and row["active"] == 1
    assert not any(k.startswith(("created/", "active/")) for k in mat.metadata)
    norm = result.asset_materializations_for_node("generic__normalized_vehicles")[0]
    assert [r.data for r in norm.metadata["run/per_dealer"].value.records] == [
        {"dealer_id": "D1", "vehicles": 1}
    ]


@pytest.mark.slow
def test_guard_check_fails_naming_the_dealer_while_the_run_succeeds(data_root: DataRoot):
    """The guard is a decision, not a failure: the run succeeds, the check is red and names the hold."""
    data_root.settings(
        data_root.paths.settings_file.read_text().replace(
            "auto_close: {mode: after_days, days: 3}",
            "auto_close: {mode: immediately}\n    auto_close_guard: {max_fraction: 0.5, min_active: 4}",
        )
    )
    defs = build_definitions(data_root.dealer_env())
    data_root.drop_feed("generic", at(0), [("D1", vin(i), "S", "U") for i in range(5)])
    data_root.drop_feed("generic", at(1), [("D1", vin(0), "S", "U")])
    result = defs.resolve_job_def("dms_generic_feeds_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        tags=range_tags("2026-11-01", "2026-11-02"),
    )
    assert result.success
    guard = [c for c in result.get_asset_check_evaluations() if c.asset_check_key.name == "auto_close_guard"][
        0
    ]
    assert (
        not guard.passed
        and "dealer D1: 4 of 5 active SRs would close on feed generic-20261102T120000Z.csv"
        in guard.description
    )
    assert (
        "dealer-assets guard release|keep --source generic --dealer D1 --feed 2026-11-02T12:00:00Z"
        in guard.description
    )
    mat = result.asset_materializations_for_node("generic__service_requests")[0]
    assert mat.metadata["run/held"].value == 4 and mat.metadata["run/guard_trips"].value == 1
    assert [r.data["dealer_id"] for r in mat.metadata["run/guard_trips_table"].value.records] == ["D1"]
    with sqlite3.connect(data_root.paths.data_dir / "warehouse.db") as con:
        assert con.execute(
            "select count(*) from service_request_events where event='close_held'"
        ).fetchone() == (4,)
        assert con.execute("select count(*) from service_requests where status='active'").fetchone() == (5,)


@pytest.mark.slow
def test_sensor_requests_one_run_per_source_and_never_twice(data_root: DataRoot, tmp_path: Path):
    data_root.settings(
        data_root.paths.settings_file.read_text()
        + """
  other:
    layout: generic
    track_stock_no_and_client: {mode: never}
    auto_close: {mode: never}
"""
    )
    defs = build_definitions(data_root.dealer_env())
    sensor = defs.resolve_sensor_def("dms_drop_zone_sensor")
    (tmp_path / "dagster_home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home"))

    def tick(cursor):
        ctx = dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
        )
        return sensor.evaluate_tick(ctx)

    assert tick(None).run_requests == []
    data_root.drop_feed("generic", at(0), [("D1", vin(1), "S1", "U")])
    data_root.drop_feed("generic", at(2, 7), [("D1", vin(1), "S1", "U")])
    data_root.drop_feed("other", at(1), [("D1", vin(1), "S1", "U")])
    data_root.drop("nonsense.csv", "x")
    data_root.drop(".partial-upload.csv", "x")
    data_root.drop("generic-20261101T120000Z.csv.tmp", "x")
    first = tick(None)
    requests = {r.job_name: r for r in first.run_requests}
    assert set(requests) == {"dms_generic_feeds_job", "dms_other_feeds_job", "dms_misdelivered_feeds_job"}
    generic = requests["dms_generic_feeds_job"]
    assert (generic.tags[PARTITION_RANGE_START_TAG], generic.tags[PARTITION_RANGE_END_TAG]) == (
        "2026-11-01",
        "2026-11-03",
    )
    assert generic.tags[MODE_TAG] == "incremental"
    assert sorted(json.loads(first.cursor)["pending"]) == sorted(
        [
            "generic-20261101T120000Z.csv",
            "generic-20261103T070000Z.csv",
            "other-20261102T120000Z.csv",
            "nonsense.csv",
        ]
    )

    second = tick(first.cursor)
    assert second.run_requests == [] and second.cursor == first.cursor

    data_root.drop_feed("generic", at(3), [("D1", vin(2), "S1", "U")])
    third = tick(second.cursor)
    assert [(r.job_name, r.tags[PARTITION_RANGE_START_TAG]) for r in third.run_requests] == [
        ("dms_generic_feeds_job", "2026-11-04")
    ]

    result = defs.resolve_job_def("dms_generic_feeds_job").execute_in_process(
        instance=instance, tags=dict(generic.tags)
    )
    assert result.success
    fourth = tick(third.cursor)
    assert fourth.run_requests == []
    assert "generic-20261101T120000Z.csv" not in json.loads(fourth.cursor)["pending"]

    data_root.drop_feed("generic", at(0), [("D1", vin(1), "S1", "U")])
    redelivered = tick(fourth.cursor)
    assert [r.job_name for r in redelivered.run_requests] == ["dms_generic_feeds_job"]


def _run_cli(
    args: list[str],
    root: DataRoot,
    dagster_home: Path,
    extra_env: dict | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    dagster_home.mkdir(exist_ok=True)
    env = {**os.environ, **root.env(), "DAGSTER_HOME": str(dagster_home), **(extra_env or {})}
    if not env.get("DEALER_CRASH_AT"):
        return run_command(args, env, cwd or root.root)
    return subprocess.run(
        [DEALER_ASSETS, *args], env=env, cwd=cwd or root.root, capture_output=True, text=True, timeout=300
    )


@pytest.mark.e2e
def test_catch_up_end_to_end_and_runs_show_in_the_instance(warehouse_url: str, tmp_path: Path):
    from dealer_assets_tests.support import make_root

    root = make_root(tmp_path / "root", warehouse_url)
    for d in range(3):
        root.drop_feed("generic", at(0, 12 + d), [("D1", vin(1), f"S{d}", "U"), ("D1", vin(d + 5), "S", "U")])
    root.drop("generic-20261101T133000Z.csv", b"DealerID,VIN\n\xff\xfe\n")
    root.drop("what-is-this.csv", "x")
    home = tmp_path / "dagster_home"
    out = _run_cli(["catch-up"], root, home, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr[-4000:]
    assert "generic 2026-11-01...2026-11-01 (4 new file(s))" in out.stdout
    assert "misdelivered (1 file(s))" in out.stdout
    assert "created 4" in out.stdout
    tables = snapshot(warehouse_url)
    assert len(tables["service_requests"]) == 4 and len(tables["applied_feeds"]) == 3
    with engine_for(warehouse_url).connect() as conn:
        reasons = dict(conn.exec_driver_sql("select file_name, reason from quarantined_files").fetchall())
    assert reasons == {"generic-20261101T133000Z.csv": "undecodable", "what-is-this.csv": "bad_file_name"}
    assert list(root.incoming.iterdir()) == []

    instance = dg.DagsterInstance.from_config(str(home))
    runs = instance.get_run_records()
    assert {r.dagster_run.job_name for r in runs} == {"dms_generic_feeds_job", "dms_misdelivered_feeds_job"}
    assert all(r.dagster_run.is_success for r in runs)

    again = _run_cli(["catch-up"], root, home, cwd=tmp_path)
    assert again.returncode == 0 and "generic: nothing pending" in again.stdout
    assert snapshot(warehouse_url) == tables

    root.drop_feed("generic", at(0, 13), [("D1", vin(1), "S1", "U")])
    redelivery = _run_cli(["catch-up"], root, home)
    assert redelivery.returncode == 0
    assert snapshot(warehouse_url) == tables

    replayed = _run_cli(["replay"], root, home)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr[-3000:]
    assert "generic replay from 2026-11-01T12:00:00+00:00 (4 archived file(s)" in replayed.stdout
    assert snapshot(warehouse_url) == tables
    partial = _run_cli(["replay", "--from", "2026-11-01T13:00:00Z"], root, home)
    assert partial.returncode == 0
    assert snapshot(warehouse_url) == tables


@pytest.mark.e2e
def test_cli_reports_invalid_settings_and_bad_arguments(data_root: DataRoot, tmp_path: Path):
    data_root.settings("sources:\n  generic:\n    layout: generic\n")
    out = _run_cli(["catch-up"], data_root, tmp_path / "home")
    assert out.returncode == 2
    assert (
        f"{data_root.paths.settings_file}: sources.generic.track_stock_no_and_client: required key is missing"
        in out.stderr
    )
    data_root.settings(Path(data_root.paths.settings_file).read_text())
    bad = _run_cli(["replay", "--from", "yesterday"], data_root, tmp_path / "home")
    assert bad.returncode == 2 and "--from: 'yesterday' is not an ISO 8601 timestamp" in bad.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(
    "point",
    ["ingest:after_archive", "normalize:before_commit", "reconcile:before_commit", "reconcile:after_commit"],
)
def test_killed_mid_run_then_rerun_equals_an_undisturbed_run(point: str, tmp_path: Path):
    from dealer_assets_tests.support import make_root

    def feeds(root: DataRoot) -> None:  # an hour apart: a short range run (see the catch-up test above)
        for d in range(3):
            root.drop_feed(
                "generic",
                at(0, 12 + d),
                [("D1", vin(1), f"S{d}", "U"), ("D2", vin(d + 3), "S", "U"), ("D1", "BAD", "S", "U")],
            )

    calm = make_root(tmp_path / "calm")
    feeds(calm)
    assert _run_cli(["catch-up"], calm, tmp_path / "h1").returncode == 0

    crashed = make_root(tmp_path / "crashed")
    feeds(crashed)
    killed = _run_cli(["catch-up"], crashed, tmp_path / "h2", extra_env={"DEALER_CRASH_AT": point})
    assert killed.returncode == -9, killed.stdout + killed.stderr[-2000:]
    with dg.DagsterInstance.from_config(str(tmp_path / "h2")) as instance:
        [left] = instance.get_runs()
        assert left.status == dg.DagsterRunStatus.STARTED, "nothing was left to say how the killed run ended"
    rerun = _run_cli(["catch-up"], crashed, tmp_path / "h2")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr[-3000:]
    assert f"run {left.run_id} marked failed: `catch-up` (pid " in rerun.stdout
    assert snapshot(crashed.paths.warehouse_url) == snapshot(calm.paths.warehouse_url)
    with dg.DagsterInstance.from_config(str(tmp_path / "h2")) as instance:
        assert instance.get_run_by_id(left.run_id).status == dg.DagsterRunStatus.FAILURE


@pytest.mark.slow
def test_safety_net_schedule_applies_archived_feeds_that_no_run_applied(data_root: DataRoot):
    """A run killed between archiving and reconciling leaves its feeds archived, out of the drop zone."""
    data_root.drop_feed("generic", at(1), [("D1", vin(1), "S1", "U")])
    settings = load_settings(data_root.paths.settings_file)
    engine = engine_for(data_root.paths.warehouse_url)
    sources = set(settings.sources)
    ingest_raw_feeds(
        data_root.paths, "generic", settings.sources["generic"], sources, engine, at(0, 0), at(9, 0), at(9, 0)
    )
    defs = build_definitions(data_root.dealer_env())
    schedule = defs.resolve_schedule_def("dms_generic_safety_net_schedule")
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(instance=instance, resources=defs.resources) as ctx,
    ):
        [request] = schedule.evaluate_tick(ctx).run_requests
        tags = request.tags
        assert (tags[PARTITION_RANGE_START_TAG], tags[PARTITION_RANGE_END_TAG], tags[MODE_TAG]) == (
            "2026-11-02",
            "2026-11-02",
            "incremental",
        )
        in_flight = instance.create_run_for_job(
            stand_in_job, status=dg.DagsterRunStatus.STARTED, tags={SOURCE_TAG: "generic"}
        )
        assert schedule.evaluate_tick(ctx).run_requests == [], "a run of the source in flight applies them"
        instance.report_run_canceled(in_flight)

        job = defs.resolve_job_def("dms_generic_feeds_job")
        assert job.execute_in_process(instance=instance, tags=tags, raise_on_error=False).success
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM service_requests").scalar() == 1
        assert schedule.evaluate_tick(ctx).run_requests == []


def test_safety_net_schedule_requests_runs_for_files_left_waiting(data_root: DataRoot):
    defs = build_definitions(data_root.dealer_env())
    schedule = defs.resolve_schedule_def("dms_generic_safety_net_schedule")
    assert schedule.cron_schedule == "0 */2 * * *"
    fresh = data_root.drop_feed("generic", at(1), [("D1", vin(1), "S1", "U")])
    ctx = dg.build_schedule_context(instance=dg.DagsterInstance.ephemeral(), resources=defs.resources)
    assert schedule.evaluate_tick(ctx).run_requests == []
    stale = os.stat(fresh).st_mtime - 3600
    os.utime(fresh, (stale, stale))
    requests = schedule.evaluate_tick(ctx).run_requests
    assert [(r.tags[PARTITION_RANGE_START_TAG], r.tags[MODE_TAG]) for r in requests] == [
        ("2026-11-02", "incremental")
    ]
