"""End to end as a developer runs it: `dg dev -w workspace.yaml` (as `make dev`) (webserver, daemon, code server) on the
embedded instance (deploy/dagster.dev.yaml) and a temp data root; a feed dropped into the drop zone is picked
up by the running sensor, its run goes through the queue and succeeds, and the warehouse changes. Then Ctrl-C
(SIGINT to the process group) stops every process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from dealer_assets_tests.support import BIN, DEPLOY, PROJECT, at, group_alive, make_root, stop_group, vin

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RUNS_QUERY = """
query Runs($job: String!) {
  runsOrError(filter: {pipelineName: $job}) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""
WORKSPACE_QUERY = """
{
  workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } }
}
"""


def _interrupt_then_terminate(dev: subprocess.Popen) -> tuple[bool, list[str]]:
    """Ctrl-C, as an operator would; if some process of the group is still winding down after 60 s
    (on 2 busy cores a run worker can be), SIGTERM, which Dagster also handles as a clean shutdown."""
    lingering: list[str] = []
    for sig, timeout in ((signal.SIGINT, 60), (signal.SIGTERM, 60)):
        try:
            os.killpg(dev.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if dev.poll() is not None and not group_alive(dev.pid):
                return True, lingering
            time.sleep(0.5)
        for proc in group_alive(dev.pid):
            try:
                lingering.append(f"{sig.name}: " + " ".join(proc.cmdline()[:5]))
            except psutil.Error:
                continue
    return stop_group(dev, signal.SIGKILL, 10) and False, lingering


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _service_requests(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        try:
            return con.execute("select count(*) from service_requests").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_dagster_dev_sensor_run_end_to_end(tmp_path: Path):
    began = time.monotonic()
    root = make_root(tmp_path / "root")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(DEPLOY / "dagster.dev.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEALER_", "DAGSTER_"))}
    env.update(root.env())
    env.update({"DAGSTER_HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    db = root.paths.data_dir / "warehouse.db"
    before = _service_requests(db)
    log = tmp_path / "dagster_dev.log"
    url = f"http://127.0.0.1:{port}/graphql"

    with open(log, "wb") as out:
        dev = subprocess.Popen(
            [str(BIN / "dg"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    processes: set[int] = set()
    stopped_cleanly = False

    def fail(message: str) -> None:
        raise AssertionError(f"{message}\n--- dagster dev log ---\n{log.read_text()[-6000:]}")

    try:
        with httpx.Client(timeout=10) as client:

            def gql(query: str, variables: dict | None = None) -> dict:
                response = client.post(url, json={"query": query, "variables": variables or {}})
                response.raise_for_status()
                body = response.json()
                assert "errors" not in body, body
                return body["data"]

            deadline = time.monotonic() + 90
            while True:
                if dev.poll() is not None:
                    fail(f"dagster dev exited with {dev.returncode} before the webserver answered")
                try:
                    entries = gql(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
                    if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                        break
                except (httpx.HTTPError, AssertionError):
                    pass
                if time.monotonic() > deadline:
                    fail("the GraphQL endpoint did not answer with a loaded code location within 90 s")
                time.sleep(1)
            assert [e["locationOrLoadError"]["__typename"] for e in entries] == ["RepositoryLocation"], (
                entries
            )

            root.drop_feed("generic", at(0), [("D1", vin(1), "S1", "U"), ("D2", vin(2), "S2", "U")])
            deadline = time.monotonic() + 110
            status = None
            while status != "SUCCESS":
                if dev.poll() is not None:
                    fail(f"dagster dev exited with {dev.returncode} while waiting for the run")
                runs = gql(RUNS_QUERY, {"job": "dms_generic_feeds_job"})["runsOrError"]
                assert runs["__typename"] == "Runs", runs
                results = runs["results"]
                assert len(results) <= 1, results
                status = results[0]["status"] if results else None
                if status in ("FAILURE", "CANCELED"):
                    fail(f"the sensor's run ended {status}: {results[0]['runId']}")
                if time.monotonic() > deadline:
                    fail(f"no successful dms_generic_feeds_job run within 110 s (last status {status})")
                time.sleep(2)
            tags = {t["key"]: t["value"] for t in results[0]["tags"]}
            assert tags["dagster/sensor_name"] == "dms_drop_zone_sensor"
            assert tags["dealer_assets/source"] == "generic" and tags["dealer_assets/mode"] == "incremental"
            assert tags["dagster/asset_partition_range_start"] == "2026-11-01"
        assert _service_requests(db) == before + 2
        assert list(root.incoming.iterdir()) == []
        processes = {p.pid for p in group_alive(dev.pid)}
        assert len(processes) >= 3, "dagster dev, webserver and daemon"
    finally:
        stopped_cleanly, lingering = _interrupt_then_terminate(dev)
    assert stopped_cleanly, (
        f"dagster dev did not stop on SIGINT, then SIGTERM; left: {lingering}\n" + log.read_text()[-4000:]
    )
    assert dev.returncode is not None
    assert not [
        pid
        for pid in processes
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ], "processes left behind"
    assert "Shutting down Dagster services" in log.read_text()
    elapsed = time.monotonic() - began
    assert elapsed < 360, f"took {elapsed:.0f}s"
