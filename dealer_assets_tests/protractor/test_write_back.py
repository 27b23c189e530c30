"""Write-back: killed mid-run (SIGKILL of a real process) and run again, every package is added once; a stock
number or client change inside the tracking window updates the package it added, recorded write by write; a
package edited in Protractor is reported, never overwritten."""

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
from dealer_assets.protractor.defs.checks import packages_not_edited
from dealer_assets.protractor.domain.links import package_guid
from dealer_assets.protractor.fake import FakeProtractor
from dealer_assets.protractor.write_back import edited, send_packages
from dealer_assets_tests.protractor.support import FAST_LIMITS, journaled, sync_context
from dealer_assets_tests.support import wait_for

CHILD = """
import sys
from pathlib import Path
from dealer_assets.protractor.write_back import send_packages
from dealer_assets_tests.protractor.support import sync_context
send_packages(sync_context(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
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


@pytest.mark.e2e
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

    send_packages(ctx)
    assert send_packages(ctx).sent == 0, "a third run sends nothing"
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


def _change_service_request(engine: sa.Engine, sr_id: str, **values: str) -> None:
    """What the DMS writes on a tracked change (rule 5) or a close."""
    table = sa.Table("service_request_state", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(table.update().where(table.c.sr_id == sr_id).values(**values))


def _our_package(fake: FakeProtractor, wo_id: str, package_id: str) -> list[dict]:
    order = fake.accounts["north"].shop.get(wo_id)
    return [p for p in order["ServicePackages"]["ItemCollection"] if p["ID"].lower() == package_id]


def _linked(ctx: sync.SyncContext, fake: FakeProtractor) -> tuple[str, str]:
    """The first north work order, linked to an active service request; (work order id, package id)."""
    sync.sweep(ctx)
    wo_id, order = next(iter(fake.accounts["north"].shop.orders.items()))
    _active_service_requests(ctx.engine, [order["ServiceItem"]["VIN"]])
    sync.refresh_links(ctx.engine)
    return wo_id, package_guid("north", wo_id.lower(), "sr-0")


@pytest.mark.slow
def test_stock_and_client_changes_update_the_package_once_each_write_recorded(
    tmp_path: Path, fake: FakeProtractor, settings_file: Path, keys: dict, warehouse_url: str
) -> None:
    ctx = sync_context(settings_file, warehouse_url, tmp_path, **FAST_LIMITS)
    wo_id, package_id = _linked(ctx, fake)
    assert (send_packages(ctx).added, send_packages(ctx).sent) == (1, 0)

    _change_service_request(ctx.engine, "sr-0", stock_no="S9")
    assert send_packages(ctx).updated == 1
    assert send_packages(ctx).sent == 0, "a retry sends nothing twice"
    _change_service_request(ctx.engine, "sr-0", client="Summit Auto Group", dealer_id="D200")
    assert send_packages(ctx).updated == 1
    [package] = _our_package(fake, wo_id, package_id)
    [line] = package["ServicePackageLines"]["ItemCollection"]
    assert "stock S9" in line["Description"] and "client Summit Auto Group" in line["Description"]
    assert package["ServicePackageHeader"]["Description"] == line["Description"]

    _change_service_request(ctx.engine, "sr-0", status="closed", stock_no="S10")
    assert send_packages(ctx).sent == 0, "never after the service request closed"
    with ctx.engine.connect() as conn:
        log = pl.DataFrame(
            [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM protractor_write_back_log"))]
        ).sort("attempt")
    assert log["action"].to_list() == ["add", "update", "update"]
    assert log["http_status"].to_list() == [200, 200, 200] and log["answered_at"].null_count() == 0
    assert "S9" in log["request"][1] and log["package_id"].unique().to_list() == [package_id]


@pytest.mark.slow
def test_a_package_edited_in_protractor_is_reported_and_not_overwritten(
    tmp_path: Path, fake: FakeProtractor, settings_file: Path, keys: dict, warehouse_url: str
) -> None:
    ctx = sync_context(settings_file, warehouse_url, tmp_path, **FAST_LIMITS)
    wo_id, package_id = _linked(ctx, fake)
    assert send_packages(ctx).added == 1
    shop = fake.accounts["north"].shop
    fake.notify(
        "north", [shop.edit_package(wo_id, package_id, "Customer declined recon", datetime(2026, 12, 1, 9))]
    )
    wait_for(lambda: journaled(tmp_path) >= 2, "our POST and the shop's edit called back")
    sync.process_events(ctx)

    _change_service_request(ctx.engine, "sr-0", stock_no="S9")
    outcome = send_packages(ctx)
    assert (outcome.sent, outcome.edited) == (0, 1)
    [package] = _our_package(fake, wo_id, package_id)
    assert package["ServicePackageLines"]["ItemCollection"][0]["Description"] == "Customer declined recon"
    result = packages_not_edited(edited(ctx))
    number = shop.get(wo_id)["WorkOrderNumber"]
    assert not result.passed and result.severity.value == "WARN"
    assert f"north work order {number}" in result.description
