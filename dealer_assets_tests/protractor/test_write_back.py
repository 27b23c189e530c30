"""Write-back killed mid-run (SIGKILL of a real process) and run again: every package is added once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import polars as pl
import pytest
import sqlalchemy as sa

from dealer_assets.core.warehouse import insert_frame
from dealer_assets.protractor import sync
from dealer_assets.protractor.domain.links import package_guid
from dealer_assets.protractor.fake import FakeProtractor
from dealer_assets_tests.protractor.support import FAST_LIMITS, sync_context, wait_for

pytestmark = pytest.mark.e2e

CHILD = """
import sys
from pathlib import Path
from dealer_assets.protractor import sync
from dealer_assets_tests.protractor.support import sync_context
sync.write_back(sync_context(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
"""
SENT = "SELECT count(*) FROM protractor_write_backs WHERE sent_at IS NOT NULL"


def _packages(fake: FakeProtractor, wo_id: str, package_id: str) -> int:
    order = fake.accounts["north"].shop.get(wo_id)
    return sum(1 for p in order["ServicePackages"]["ItemCollection"] if p["ID"].lower() == package_id)


def _count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


def _active_service_requests(engine: sa.Engine, vins: list[str]) -> pl.DataFrame:
    """One active DMS service request per VIN, written to the DMS area's table behind its `service_requests`."""
    srs = pl.DataFrame(
        {
            "sr_id": [f"sr-{i}" for i in range(len(vins))],
            "source": "generic",
            "vin": vins,
            "dealer_id": "D100",
            "client": "Riverside Motors",
            "stock_no": [f"S{i}" for i in range(len(vins))],
            "vehicle_type": "Used",
            "service_request_type": "Used Recon",
            "status": "active",
            "created_at": datetime(2026, 11, 16, tzinfo=UTC),
            "updated_at": datetime(2026, 11, 16, tzinfo=UTC),
        }
    )
    with engine.begin() as conn:
        insert_frame(conn, sa.Table("service_request_state", sa.MetaData(), autoload_with=engine), srs)
    return srs


def _kill_after_first_package(ctx: sync.SyncContext, settings_file: Path, warehouse_url: str) -> int:
    """A write-back in a child process, SIGKILLed once it sent one package; the packages it sent."""
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    args = [str(settings_file), warehouse_url, str(ctx.data_dir)]
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env)
    try:
        wait_for(lambda: _count(ctx.engine, SENT) >= 1, "the child sent a package", seconds=60)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    return _count(ctx.engine, SENT)


def test_write_back_killed_and_rerun_adds_each_package_once(
    tmp_path: Path, fake: FakeProtractor, settings_file: Path, keys: dict, warehouse_url: str
) -> None:
    ctx = sync_context(settings_file, warehouse_url, tmp_path, **FAST_LIMITS)
    sync.sweep(ctx)
    orders = fake.accounts["north"].shop.orders
    vins = {w: o["ServiceItem"]["VIN"] for w, o in list(orders.items())[:4]}
    srs = _active_service_requests(ctx.engine, list(vins.values()))
    assert sync.refresh_links(ctx.engine).filter(pl.col("sr_id").is_not_null()).height == 4

    httpx.post(fake.base_url + "/_control/faults", json={"faults": [["slow", 1.0]] * 8}).raise_for_status()
    sent_before = _kill_after_first_package(ctx, settings_file, warehouse_url)
    assert 1 <= sent_before < 4, "the run was killed part-way"

    sync.write_back(ctx)
    assert sync.write_back(ctx) == 0, "a third run sends nothing"
    for wo_id, vin in vins.items():
        sr = srs.filter(pl.col("vin") == vin)["sr_id"].item()
        assert _packages(fake, wo_id, package_guid("north", wo_id.lower(), sr)) == 1
    sync.sweep(ctx)
    added = _count(
        ctx.engine,
        "SELECT count(DISTINCT package_id) FROM work_order_lines "
        "WHERE valid_to IS NULL AND package_title = 'Used Recon'",
    )
    assert added == 4
