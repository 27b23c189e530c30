"""No alert lost to a kill: whatever point a catch-up dies at, the clean re-runs leave every quarantined file
in `quarantined_files` and its check, and every guard hold failing its check in the Dagster instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dealer_assets.core.faults import POINTS
from dealer_assets.core.warehouse import engine_for
from dealer_assets.dms.asset_specs import keys_for
from dealer_assets_tests.dms.test_guard import guarded_root, trip
from dealer_assets_tests.support import DataRoot, at, feed_name, make_root, run_command, snapshot, vin

DEALER_ASSETS = str(Path(sys.executable).parent / "dealer-assets")
RAW_KEY, _, SR_KEY = keys_for("generic")


def catch_up(root: DataRoot, home: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **root.env(), "DAGSTER_HOME": str(home), "DEALER_CRASH_AT": crash_at or ""}
    if not crash_at:
        return run_command(["catch-up"], env)
    return subprocess.run([DEALER_ASSETS, "catch-up"], env=env, capture_output=True, text=True, timeout=600)


def latest(home: Path, asset: dg.AssetKey, name: str):
    instance = dg.DagsterInstance.from_config(str(home))
    return instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(asset, name))


def failed_naming(record, text: str) -> bool:
    if record is None or record.event is None or record.event.asset_check_evaluation is None:
        return False
    evaluation = record.event.asset_check_evaluation
    return not evaluation.passed and text in (evaluation.description or "")


@pytest.mark.e2e
@pytest.mark.parametrize("point", POINTS)
def test_a_conflicting_redelivery_killed_anywhere_ends_recorded_and_shown(tmp_path: Path, point: str):
    root = make_root(tmp_path / "root")
    home = tmp_path / "home"
    name = feed_name("generic", at(1))
    root.drop_feed("generic", at(1), [("D1", vin(1), "S1", "U")])
    assert catch_up(root, home).returncode == 0
    root.drop_feed("generic", at(1), [("D1", vin(1), "OTHER", "U")])
    assert catch_up(root, home, point).returncode == -9
    out = catch_up(root, home)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert list(root.incoming.iterdir()) == []
    kept = [p.name for p in root.paths.quarantine.iterdir() if not p.name.endswith(".json")]
    assert len(kept) == 1 and kept[0].startswith(name)
    with engine_for(root.paths.warehouse_url).connect() as conn:
        got = conn.exec_driver_sql("SELECT file_name, reason FROM quarantined_files").fetchall()
    assert [tuple(r) for r in got] == [(name, "conflicting_redelivery")]
    assert failed_naming(latest(home, RAW_KEY, "no_quarantined_files"), name)


@pytest.mark.e2e
@pytest.mark.parametrize("point", POINTS)
def test_a_hold_killed_anywhere_shows_as_a_failed_check(tmp_path: Path, point: str):
    root = guarded_root(make_root(tmp_path / "root"))
    home = tmp_path / "home"
    trip(root)
    assert catch_up(root, home, point).returncode == -9
    out = catch_up(root, home)
    assert out.returncode == 3, out.stdout + out.stderr[-3000:]
    held = [r[2:6] for r in snapshot(root.paths.warehouse_url)["close_guard"]]
    assert held == [("D1", 5, 4, True)]
    assert failed_naming(latest(home, SR_KEY, "auto_close_guard"), "dealer D1")
