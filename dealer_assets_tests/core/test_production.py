"""The production instance (deploy/dagster.yaml) for real: PostgreSQL run, event-log and schedule storage from
DAGSTER_PG_* only, the run queue with one run per source, and the daemon code paths (sensor, backfill, run
queue) against the real code location served over gRPC, as `dagster-daemon run` drives them.

Every test gets fresh PostgreSQL databases (instance storage and warehouses) beside DEALER_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import dagster as dg
import psutil
import pytest
import yaml
from dagster import DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import BACKFILL_ID_TAG

from dealer_assets.core.tags import (
    AREA_TAG,
    MODE_TAG,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    SOURCE_TAG,
)
from dealer_assets.definitions import build_definitions
from dealer_assets.dms.defs.assets import build_source_assets, keys_for
from dealer_assets.dms.partitions import feed_partitions
from dealer_assets_tests.support import (
    BASIC_SETTINGS,
    BIN,
    DEPLOY,
    PROJECT,
    DataRoot,
    Production,
    at,
    make_root,
    reference_tables,
    snapshot,
    stop_group,
    use_root,
    vin,
)

pytestmark = pytest.mark.e2e

DEALER_ASSETS = str(BIN / "dealer-assets")
TWO_SOURCES = (
    BASIC_SETTINGS
    + """
  other:
    layout: generic
    track_stock_no_and_client: {mode: never}
    auto_close: {mode: immediately}
    client_dealer_mappings:
      - {client: Client One, dealer_id: D1, service_request_type: Recon}
"""
)
TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
log = logging.getLogger("dealer_assets_tests.production")


def _code_servers() -> set[int]:
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "api grpc" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found


@contextmanager
def daemon_workspace(instance: dg.DagsterInstance) -> Iterator:
    """The workspace the daemon builds from workspace.yaml: the code location runs in a gRPC code server.

    On the way out the code server is told to shut down and awaited while the test's databases still exist:
    left to its heartbeat timeout, it would outlive them, and its run-cleanup thread dies on the dropped
    database and leaves the server running forever (seen with dagster 1.13.27).
    """
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    before = _code_servers()
    try:
        with WorkspaceProcessContext(
            instance, WorkspaceFileTarget(paths=[str(PROJECT / "workspace.yaml")])
        ) as ctx:
            entries = ctx.create_request_context().get_code_location_entries()
            try:
                errors = [e.load_error for e in entries.values() if e.load_error]
                assert not errors, errors[0].to_string()
                yield ctx
            finally:
                for entry in entries.values():
                    client = getattr(entry.code_location, "client", None)
                    if client is not None:
                        try:
                            client.shutdown_server()
                        except Exception:
                            pass
    finally:
        servers = [psutil.Process(pid) for pid in _code_servers() - before if psutil.pid_exists(pid)]
        _gone, alive = psutil.wait_procs(servers, timeout=60)
        for proc in alive:
            proc.kill()
        assert not alive, f"code server(s) {[p.pid for p in alive]} did not shut down within 60 s"


def sensor_tick(ctx, at_time=None) -> None:
    """One sensor-daemon iteration (`dagster-daemon` SENSOR daemon), optionally at a later wall time so the
    sensor's 30 s minimum interval has passed."""
    from dagster._core.test_utils import freeze_time
    from dagster._daemon.sensor import execute_sensor_iteration

    def run():
        list(execute_sensor_iteration(ctx, log, threadpool_executor=None, submit_threadpool_executor=None))

    if at_time is None:
        run()
    else:
        with freeze_time(at_time):
            run()


def dequeue(ctx) -> None:
    """One iteration of the QUEUED_RUN_COORDINATOR daemon: launch what the queue's limits allow."""
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    try:
        list(daemon.run_iteration(ctx))
    finally:
        daemon.__exit__(None, None, None)


def wait_runs(
    instance: dg.DagsterInstance, run_ids: list[str], timeout: float = 120
) -> dict[str, DagsterRunStatus]:
    deadline = time.monotonic() + timeout
    while True:
        statuses = {r: instance.get_run_by_id(r).status for r in run_ids}
        if all(s in TERMINAL for s in statuses.values()):
            return statuses
        if time.monotonic() > deadline:
            raise AssertionError(f"runs not finished within {timeout}s: {statuses}")
        time.sleep(0.5)


def sensor_state(instance: dg.DagsterInstance):
    from dagster._core.scheduler.instigation import InstigatorType

    states = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if s.name == "dms_drop_zone_sensor"
    ]
    assert len(states) == 1, states
    return states[0]


# ---------------------------------------------------------------------------------------------- tests
def test_production_config_is_postgres_from_environment_only(production: Production):
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    pg = config["storage"]["postgres"]["postgres_db"]
    assert {k: v for k, v in pg.items() if k != "scheme"} == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USERNAME"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }
    dev = yaml.safe_load((DEPLOY / "dagster.dev.yaml").read_text())
    assert "storage" not in dev or "sqlite" in json.dumps(dev["storage"]), "the dev instance stays on SQLite"

    instance = production.instance()
    try:
        from dagster._core.run_coordinator import QueuedRunCoordinator
        from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs >= 2
        assert queue.tag_concurrency_limits == [
            {"key": AREA_TAG, "value": "dms", "limit": 8},
            {"key": AREA_TAG, "value": "protractor", "limit": 1},
            {"key": AREA_TAG, "value": "xtime", "limit": 1},
            {"key": SOURCE_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
        ]
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_monitoring_enabled and not instance.telemetry_enabled
        with instance.run_storage.connect() as conn:
            assert (
                conn.exec_driver_sql("select current_database()").scalar() == production.env["DAGSTER_PG_DB"]
            )
    finally:
        instance.dispose()


def test_sensor_tick_run_and_partitioned_materialization_on_postgres(
    production: Production, pg_databases, tmp_path: Path
):
    root = make_root(tmp_path / "root", pg_databases("wh"))
    defs = build_definitions(root.dealer_env())
    instance = production.instance()
    try:
        root.drop_feed("generic", at(0), [("D1", vin(1), "S1", "U"), ("D2", vin(2), "S2", "U")])
        root.drop_feed("generic", at(1, 7), [("D1", vin(1), "S9", "U")])
        sensor = defs.resolve_sensor_def("dms_drop_zone_sensor")

        def tick(cursor):
            return sensor.evaluate_tick(
                dg.build_sensor_context(
                    instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
                )
            )

        first = tick(None)
        [request] = first.run_requests
        assert request.job_name == "dms_generic_feeds_job"
        assert (request.tags[PARTITION_RANGE_START_TAG], request.tags[PARTITION_RANGE_END_TAG]) == (
            "2026-11-01",
            "2026-11-02",
        )
        result = defs.resolve_job_def(request.job_name).execute_in_process(
            instance=instance, tags={**request.tags, "dagster/run_key": request.run_key}
        )
        assert result.success
        assert tick(first.cursor).run_requests == []

        [record] = instance.get_run_records(RunsFilter(tags={SOURCE_TAG: "generic"}))
        assert record.dagster_run.run_id == result.run_id and record.dagster_run.is_success
        assert record.dagster_run.tags[MODE_TAG] == "incremental"
        raw, normalized, srs = keys_for("generic")
        days = feed_partitions(root.paths.history_start).get_partition_keys_in_range(
            dg.PartitionKeyRange("2026-11-01", "2026-11-02")
        )
        assert days == ["2026-11-01", "2026-11-02"]
        for key in (raw, normalized, srs):
            assert set(days) <= instance.get_materialized_partitions(key)
        tables = snapshot(root.paths.warehouse_url)
        assert len(tables["service_requests"]) == 2 and len(tables["applied_feeds"]) == 2

        # (b) one partition materialized through the assets API on the same instance
        root.drop_feed("generic", at(2), [("D2", vin(2), "S2", "U"), ("D2", vin(3), "S3", "U")])
        assets = build_source_assets("generic", feed_partitions(root.paths.history_start))
        mat = dg.materialize(assets, partition_key="2026-11-03", resources=defs.resources, instance=instance)
        assert mat.success
        latest = instance.get_latest_materialization_event(srs)
        assert latest.run_id == mat.run_id and latest.asset_materialization.partition == "2026-11-03"
        assert latest.asset_materialization.metadata["run/created"].value == 1
        assert "2026-11-03" in instance.get_materialized_partitions(srs)
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(srs, "one_active_sr_per_vin")]
        )
        assert check[dg.AssetCheckKey(srs, "one_active_sr_per_vin")].run_id == mat.run_id
        assert len(snapshot(root.paths.warehouse_url)["service_requests"]) == 3
    finally:
        instance.dispose()


def test_single_run_backfill_of_two_days_through_the_backfill_daemon(
    production: Production, pg_databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.utils import make_new_backfill_id
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster._time import get_current_timestamp

    root = make_root(tmp_path / "root", pg_databases("wh"))
    reference = make_root(tmp_path / "reference", pg_databases("ref"))
    feeds = [
        (at(0, h), [("D1", vin(h % 5), f"S{h}", "U"), ("D2", vin(10 + h % 3), "X", "U")])
        for h in (0, 3, 9, 17, 23)
    ]
    feeds += [(at(1, h), [("D1", vin(h % 4), f"T{h}", "U")]) for h in (1, 6, 12, 22)]
    for r in (root, reference):
        for when, rows in feeds:
            r.drop_feed("generic", when, rows)
    first, last = "2026-11-01", "2026-11-02"
    expected = reference_tables(reference, {"generic": (first, last)})
    assert len(expected["applied_feeds"]) == 9

    use_root(root, monkeypatch)
    instance = production.instance()
    try:
        with daemon_workspace(instance) as ctx:
            partitions = feed_partitions(root.paths.history_start).get_partition_keys_in_range(
                dg.PartitionKeyRange(first, last)
            )
            assert partitions == ["2026-11-01", "2026-11-02"]
            backfill = PartitionBackfill.from_asset_partitions(
                backfill_id=make_new_backfill_id(),
                asset_graph=ctx.create_request_context().asset_graph,
                partition_names=partitions,
                asset_selection=list(keys_for("generic")),
                backfill_timestamp=get_current_timestamp(),
                tags={},
                dynamic_partitions_store=instance,
                all_partitions=False,
                title="two days",
                description=None,
                run_config=None,
            )
            instance.add_backfill(backfill)
            # The daemon loop, one iteration at a time: backfill daemon, run queue, wait for what it launched.
            deadline = time.monotonic() + 180
            while True:
                list(execute_backfill_iteration(ctx, log))
                status = instance.get_backfill(backfill.backfill_id).status
                if status != BulkActionStatus.REQUESTED:
                    break
                assert time.monotonic() < deadline, "backfill did not finish"
                dequeue(ctx)
                runs = instance.get_runs(RunsFilter(tags={BACKFILL_ID_TAG: backfill.backfill_id}))
                wait_runs(instance, [r.run_id for r in runs if r.status not in TERMINAL])
            assert status == BulkActionStatus.COMPLETED_SUCCESS
        runs = instance.get_runs(RunsFilter(tags={BACKFILL_ID_TAG: backfill.backfill_id}))
        # Single-run policy: every run spans the whole two-day range. The daemon runs service_requests (which
        # depends on its own previous partition) in a second run once its parents' range is materialized.
        assert 1 <= len(runs) <= 2 and all(r.is_success for r in runs)
        assert {(r.tags[PARTITION_RANGE_START_TAG], r.tags[PARTITION_RANGE_END_TAG]) for r in runs} == {
            (first, last)
        }
        srs = keys_for("generic")[2]
        assert set(partitions) <= instance.get_materialized_partitions(srs)
        assert snapshot(root.paths.warehouse_url) == expected
    finally:
        instance.dispose()


def test_two_catch_ups_at_once_equal_one_catch_up(production: Production, pg_databases, tmp_path: Path):
    shared = make_root(tmp_path / "shared", pg_databases("shared"), settings=TWO_SOURCES)
    alone = make_root(tmp_path / "alone", pg_databases("alone"), settings=TWO_SOURCES)
    # Twelve feeds on one day (02:00 to 13:00); what is tested is two processes at once.
    for r in (shared, alone):
        for d in range(4):
            for h, hour in ((2, 2 + 3 * d), (14, 4 + 3 * d)):
                r.drop_feed(
                    "generic",
                    at(0, hour),
                    [
                        ("D1", vin(1), f"S{d}", "U"),
                        ("D2", vin(d + h), "X", "U"),
                        ("D1", "NOT-A-VIN", "S", "U"),
                    ],
                )
            r.drop_feed("other", at(0, 3 + 3 * d), [("D1", vin(20 + d), "O", "U"), ("D1", vin(20), "O", "U")])
        r.drop("generic-20261101T053000Z.csv", b"DealerID,VIN\n\xff\xfe\n")
        r.drop("what-is-this.csv", "x")

    def start(root: DataRoot, home: Path | None = None) -> subprocess.Popen:
        env = {**os.environ, **production.env, **root.env()}
        if home is not None:
            env["DAGSTER_HOME"] = str(home)
        return subprocess.Popen(
            [DEALER_ASSETS, "catch-up"],
            env=env,
            cwd=root.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    # Operator step before anything else starts: create the instance schema once. Two processes creating
    # it at the same moment on an empty database race (dagster-postgres: `type "runs" already exists`).
    migrate = subprocess.run(
        [str(BIN / "dagster"), "instance", "migrate"],
        env={**os.environ, **production.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr[-3000:]
    began = time.monotonic()
    procs = [start(shared), start(shared)]
    try:
        outs = [p.communicate(timeout=240)[0] for p in procs]
        log.warning("two catch-ups took %.1fs", time.monotonic() - began)
    finally:
        for p in procs:
            if p.poll() is None:
                stop_group(p, signal.SIGKILL, 5)
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-5000:]
    (tmp_path / "alone_home").mkdir()
    single = start(alone, tmp_path / "alone_home")
    out = single.communicate(timeout=240)[0]
    assert single.returncode == 0, out[-5000:]

    tables = snapshot(shared.paths.warehouse_url)
    assert tables == snapshot(alone.paths.warehouse_url)
    assert len(tables["applied_feeds"]) == 12 and tables["late_feeds"] == []
    assert list(shared.incoming.iterdir()) == []
    archived = sorted(p.name for p in shared.paths.archive.rglob("*.csv"))
    assert archived == sorted(p.name for p in alone.paths.archive.rglob("*.csv")) and len(archived) == 13
    instance = production.instance()
    try:
        records = instance.get_run_records()
        assert all(r.dagster_run.is_success for r in records)
        jobs = sorted(r.dagster_run.job_name for r in records)
        # each process ran both sources; the misdelivered run is skipped by the one that lists the drop zone
        # after the other has quarantined the file
        assert [j for j in jobs if j != "dms_misdelivered_feeds_job"] == ["dms_generic_feeds_job"] * 2 + [
            "dms_other_feeds_job"
        ] * 2
        spans = sorted((r.start_time, r.end_time) for r in records)
        assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False)), (
            f"no two runs overlapped: {spans}"
        )
    finally:
        instance.dispose()


def test_sensor_cursor_and_run_queue_survive_a_restart(
    production: Production, pg_databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The daemon's own sensor and run-queue iterations on the production instance: the cursor lives in
    PostgreSQL, a restarted daemon (new instance object, new code server) neither re-requests nor loses runs,
    and the queue runs one run per source at a time while different sources run in parallel."""
    from dagster._time import get_current_datetime

    root = make_root(tmp_path / "root", pg_databases("wh"), settings=TWO_SOURCES)
    reference = make_root(tmp_path / "reference", pg_databases("ref"), settings=TWO_SOURCES)
    g1 = (at(0), [("D1", vin(1), "S1", "U"), ("D2", vin(2), "S2", "U")])
    g2 = (at(1), [("D1", vin(1), "S7", "U"), ("D2", vin(3), "S3", "U")])
    o1 = (at(0, 5), [("D1", vin(20), "O", "U")])
    for when, rows in (g1, g2):
        reference.drop_feed("generic", when, rows)
    reference.drop_feed("other", *o1)
    expected = reference_tables(
        reference,
        {
            "generic": ("2026-11-01", "2026-11-02"),
            "other": ("2026-11-01", "2026-11-01"),
        },
    )

    use_root(root, monkeypatch)
    instance = production.instance()
    try:
        with daemon_workspace(instance) as ctx:
            root.drop_feed("generic", *g1)
            sensor_tick(ctx)
            now = get_current_datetime()  # the later ticks are frozen 40 s apart, counted from this one's end
            [run_a] = instance.get_runs()
            cursor_1 = sensor_state(instance).instigator_data.cursor
            assert sorted(json.loads(cursor_1)["pending"]) == ["generic-20261101T120000Z.csv"]

            root.drop_feed("generic", *g2)
            root.drop_feed("other", *o1)
            sensor_tick(ctx, now + timedelta(seconds=40))
            runs = {r.run_id: r for r in instance.get_runs()}
            assert len(runs) == 3 and all(r.status == DagsterRunStatus.QUEUED for r in runs.values())
            cursor_2 = sensor_state(instance).instigator_data.cursor
            assert len(json.loads(cursor_2)["pending"]) == 3
    finally:
        instance.dispose()

    # restart: a new instance object and a new code server on the same PostgreSQL storage
    instance = production.instance()
    try:
        state = sensor_state(instance)
        assert state.instigator_data.cursor == cursor_2
        with daemon_workspace(instance) as ctx:
            sensor_tick(ctx, now + timedelta(seconds=80))
            assert sensor_state(instance).instigator_data.cursor == cursor_2
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=3)
            assert (
                ticks[0].status.value == "SKIPPED" and "no new deliveries (3 file(s)" in ticks[0].skip_reason
            )
            assert [len(t.run_ids) for t in ticks] == [0, 2, 1]
            assert len(instance.get_runs()) == 3, "nothing was requested twice"

            by_source = {}
            for r in instance.get_runs():
                by_source.setdefault(r.tags[SOURCE_TAG], []).append(r)
            generic = sorted(by_source["generic"], key=lambda r: r.tags[PARTITION_RANGE_START_TAG])
            generic_a, generic_b = generic[0], generic[1]
            assert generic_a.run_id == run_a.run_id
            [other] = by_source["other"]

            dequeue(ctx)
            status = {r.run_id: r.status for r in instance.get_runs()}
            assert status[generic_b.run_id] == DagsterRunStatus.QUEUED, "one run per source at a time"
            assert status[generic_a.run_id] != DagsterRunStatus.QUEUED
            assert status[other.run_id] != DagsterRunStatus.QUEUED, "another source runs in parallel"
            wait_runs(instance, [generic_a.run_id])
            dequeue(ctx)
            assert instance.get_run_by_id(generic_b.run_id).status != DagsterRunStatus.QUEUED
            final = wait_runs(instance, list(status))
            assert set(final.values()) == {DagsterRunStatus.SUCCESS}, final

            sensor_tick(ctx, now + timedelta(seconds=120))
            assert json.loads(sensor_state(instance).instigator_data.cursor) == {"pending": {}}
            assert len(instance.get_runs()) == 3
        assert snapshot(root.paths.warehouse_url) == expected
    finally:
        instance.dispose()
