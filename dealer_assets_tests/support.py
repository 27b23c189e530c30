"""Helpers the tests share: feeds and data roots, table snapshots, processes; fixtures are in conftest."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import psutil
import pytest
import sqlalchemy as sa

from dealer_assets.core.env import DealerEnv, DealerPaths, default_warehouse_url
from dealer_assets.core.tags import MODE_TAG, PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from dealer_assets.core.vin import with_check_digit
from dealer_assets.core.warehouse import engine_for, read_frame
from dealer_assets.definitions import build_definitions

HEADER = "DealerID,VIN,StockNo,SystemCode,Year,Make,Model,Trim,Mileage,DateInStock\n"
SHARED = Path(os.environ.get("DEALER_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared")

BASIC_SETTINGS = """
sources:
  generic:
    layout: generic
    track_stock_no_and_client: {mode: for_days, days: 3}
    auto_close: {mode: after_days, days: 3}
    vehicle_type_mappings:
      - {system_code: U, vehicle_type: Used, service_request_type: Used Recon}
    client_dealer_mappings:
      - {client: Client One, dealer_id: D1, service_request_type: Recon}
      - {client: Client Two, dealer_id: D2, service_request_type: Recon}
"""


def vin(n: int, prefix: str = "1FTFW1E5") -> str:
    """A valid VIN (check digit correct) numbered n."""
    return with_check_digit(f"{prefix}0NFA{n:05d}")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, 1 + day, hour, tzinfo=UTC)


def feed_name(source: str, when: datetime, ext: str = "csv") -> str:
    return f"{source}-{when.strftime('%Y%m%dT%H%M%SZ')}.{ext}"


def feed_body(rows: list[tuple[str, str, str, str]]) -> str:
    return HEADER + "".join(f"{d},{v},{s},{c},2022,FORD,F150,XL,1000,2026-10-01\n" for d, v, s, c in rows)


@dataclass
class DataRoot:
    root: Path
    paths: DealerPaths

    @property
    def incoming(self) -> Path:
        return self.paths.incoming

    def drop(self, name: str, content: str | bytes) -> Path:
        path = self.incoming / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def drop_feed(self, source: str, when: datetime, rows: list[tuple[str, str, str, str]]) -> Path:
        return self.drop(feed_name(source, when), feed_body(rows))

    def dealer_env(self) -> DealerEnv:
        return DealerEnv.for_paths(self.paths)

    def settings(self, text: str) -> None:
        self.paths.settings_file.write_text(text)

    def env(self) -> dict[str, str]:
        return {
            "DEALER_DATA_DIR": str(self.paths.data_dir),
            "DEALER_SETTINGS_FILE": str(self.paths.settings_file),
            "DEALER_WAREHOUSE_URL": self.paths.warehouse_url,
            "DEALER_HISTORY_START": self.paths.history_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "DEALER_SETTLE_SECONDS": str(self.paths.settle_seconds),
        }


def make_root(tmp: Path, warehouse_url: str | None = None, settings: str = BASIC_SETTINGS) -> DataRoot:
    data = tmp / "data"
    (data / "config").mkdir(parents=True, exist_ok=True)
    (data / "feeds" / "incoming").mkdir(parents=True, exist_ok=True)
    paths = DealerPaths(
        data_dir=data,
        settings_file=data / "config" / "dealer_feeds.yaml",
        warehouse_url=warehouse_url or default_warehouse_url(data),
        history_start=datetime(2025, 1, 1, tzinfo=UTC),
        settle_seconds=0.0,
    )
    root = DataRoot(tmp, paths)
    root.settings(settings)
    return root


TABLES = {
    "service_requests": "sr_id",
    "service_request_events": "sr_id, event, feed_as_of",
    "skipped_vehicles": "source, feed_as_of, vin",
    "rejected_rows": "source, feed_as_of, line_number",
    "applied_feeds": "source, feed_as_of",
    "dealer_coverage": "source, feed_as_of, dealer_id",
    "close_guard": "source, feed_as_of, dealer_id",
    "late_feeds": "source, feed_as_of",
    "guard_decisions": "source, feed_as_of, dealer_id",
}


PROJECT = Path(__file__).resolve().parents[1]
DEPLOY = PROJECT / "deploy"
BIN = Path(sys.executable).parent


def snapshot(url: str) -> dict[str, list[tuple]]:
    engine = engine_for(url)
    out = {}
    with engine.connect() as conn:
        for table, order in TABLES.items():
            columns = [c.name for c in sa.Table(table, sa.MetaData(), autoload_with=conn).columns]
            ts = {
                c: pl.Datetime("us", "UTC")
                for c in columns
                if c.endswith(("_at", "_as_of", "through", "since"))
            }
            schema = {c: ts.get(c, pl.String) for c in columns}
            ints = (
                "line_number",
                "vehicles",
                "created",
                "updated",
                "closed",
                "skipped",
                "active",
                "to_close",
            )
            schema = {c: pl.Int64 if c in ints else t for c, t in schema.items()}
            if table == "close_guard":
                schema["held"] = pl.Boolean
            elif "held" in schema:
                schema["held"] = pl.Int64
            frame = read_frame(conn, f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}", schema)
            out[table] = frame.rows()
    return out


def dagster_pg_env(url: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables that deploy/dagster.yaml reads, for the database of a SQLAlchemy URL."""
    u = sa.engine.make_url(url)
    return {
        "DAGSTER_PG_HOST": u.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(u.port or 5432),
        "DAGSTER_PG_USERNAME": u.username or "postgres",
        "DAGSTER_PG_PASSWORD": u.password or "",
        "DAGSTER_PG_DB": u.database or "",
    }


def production_home(path: Path) -> Path:
    """A DAGSTER_HOME holding deploy/dagster.yaml unchanged."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEPLOY / "dagster.yaml", path / "dagster.yaml")
    return path


@dataclass
class Production:
    home: Path
    env: dict[str, str]

    def instance(self) -> dg.DagsterInstance:
        """A new instance object on the same storage (as a restarted daemon or webserver would build)."""
        return dg.DagsterInstance.from_config(str(self.home))


def use_root(root: DataRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the environment (inherited by code servers and run workers) at a data root."""
    for key, value in root.env().items():
        monkeypatch.setenv(key, value)


def range_tags(first: str, last: str, mode: str = "incremental") -> dict[str, str]:
    return {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last, MODE_TAG: mode}


def reference_tables(root: DataRoot, ranges: dict[str, tuple[str, str]]) -> dict[str, list[tuple]]:
    """The same feeds on a separate clean root: one in-process incremental run per source (what catch-up does)."""
    defs = build_definitions(root.dealer_env())
    for source, (first, last) in sorted(ranges.items()):
        result = defs.resolve_job_def(f"dms_{source}_feeds_job").execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), tags=range_tags(first, last)
        )
        assert result.success
    return snapshot(root.paths.warehouse_url)


@dg.op
def _nothing() -> None:
    pass


@dg.job
def stand_in_job() -> None:
    """One op that does nothing: the runs a test makes to stand for runs of other jobs (in flight, killed,
    launched) are runs of it."""
    _nothing()


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    """Poll until `condition` holds; fail naming `what` when the deadline passes."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.05)


def group_alive(pgid: int) -> list[psutil.Process]:
    alive = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> bool:
    """Signal a subprocess started with start_new_session=True and its whole group; wait for all of them.

    True when everything exited on `sig` within `timeout`; otherwise the group is killed and False returned.
    """
    pgid = proc.pid
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    clean = True
    while True:
        if proc.poll() is not None and not group_alive(pgid):
            return clean
        if time.monotonic() > deadline:
            clean = False
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            return False
        time.sleep(0.2)


def run_command(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`dealer-assets ARGS` run in this process with `env` as its whole environment: the exit code and the
    output a subprocess would give, without a new interpreter's start-up. A run to be killed
    (DEALER_CRASH_AT) needs a process of its own: `subprocess.run` it."""
    from dealer_assets import cli
    from dealer_assets.core import commands

    assert not env.get("DEALER_CRASH_AT"), "a crash point would kill the test's own process"
    saved, here = dict(os.environ), Path.cwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd or here)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(args)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.chdir(here)
        commands.VERBOSE, commands.COMMAND = False, "dealer-assets"
    return subprocess.CompletedProcess(["dealer-assets", *args], code, out.getvalue(), err.getvalue())
