"""Write-back killed mid-run (SIGKILL of a real process) and run again: every package is added once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import polars as pl
import pytest
import sqlalchemy as sa

from dealer_assets.core.warehouse import engine_for, insert_frame
from dealer_assets.protractor import sync
from dealer_assets.protractor.client import ProtractorResource
from dealer_assets.protractor.domain.links import package_guid
from dealer_assets.protractor.fake import FakeProtractor
from dealer_assets.protractor.settings import load_protractor_settings

CHILD = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from dealer_assets.protractor import sync
from dealer_assets.protractor.client import ProtractorResource
from dealer_assets.protractor.settings import load_protractor_settings
from dealer_assets.core.warehouse import engine_for
settings = load_protractor_settings(sys.argv[1])
def client_for(loc):
    s = settings.locations[loc]
    return ProtractorResource(location_id=loc, base_url=settings.base_url, connection_id_env=s.connection_id_env,
                              api_key_env=s.api_key_env).client()
sync.write_back(engine_for(sys.argv[2]), settings, client_for, Path(sys.argv[3]), sync.utc_now)
"""


def _packages(fake: FakeProtractor, wo_id: str, package_id: str) -> int:
    order = fake.accounts["north"].shop.get(wo_id)
    return sum(1 for p in order["ServicePackages"]["ItemCollection"] if p["ID"].lower() == package_id)


@pytest.mark.e2e
def test_write_back_killed_and_rerun_adds_each_package_once(
    tmp_path: Path, fake: FakeProtractor, settings_file: Path, keys, warehouse_url: str
) -> None:
    settings = load_protractor_settings(settings_file)

    def client_for(loc: str):
        s = settings.locations[loc]
        return ProtractorResource(location_id=loc, base_url=settings.base_url, connection_id_env=s.connection_id_env,
                                  api_key_env=s.api_key_env, requests_per_second=50, requests_per_minute=3000).client()  # fmt: skip

    engine = engine_for(warehouse_url)
    sync.sweep(
        engine, settings, client_for, tmp_path, sync.utc_now, history_start=datetime(2025, 1, 1, tzinfo=UTC)
    )
    orders = fake.accounts["north"].shop.orders
    vins = [o["ServiceItem"]["VIN"] for o in orders.values()][:4]
    srs = pl.DataFrame({
        "sr_id": [f"sr-{i}" for i in range(4)], "source": "generic", "vin": vins, "dealer_id": "D100",
        "client": "Riverside Motors", "stock_no": [f"S{i}" for i in range(4)], "vehicle_type": "Used",
        "service_request_type": "Used Recon", "status": "active",
        "created_at": datetime(2026, 11, 16, tzinfo=UTC), "updated_at": datetime(2026, 11, 16, tzinfo=UTC),
    })  # fmt: skip
    service_requests = sa.Table(
        "service_request_state", sa.MetaData(), autoload_with=engine
    )  # the DMS area's table behind its `service_requests` view
    with engine.begin() as conn:
        insert_frame(conn, service_requests, srs)
    links = sync.refresh_links(engine)
    assert links.filter(pl.col("sr_id").is_not_null()).height == 4

    httpx.post(fake.base_url + "/_control/faults", json={"faults": [["slow", 1.0]] * 8}).raise_for_status()
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(settings_file), warehouse_url, str(tmp_path)], env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            sent = conn.execute(
                sa.text("SELECT count(*) FROM protractor_write_backs WHERE sent_at IS NOT NULL")
            ).scalar()
        if sent >= 1:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    with engine.connect() as conn:
        sent_before = conn.execute(
            sa.text("SELECT count(*) FROM protractor_write_backs WHERE sent_at IS NOT NULL")
        ).scalar()
    assert 1 <= sent_before < 4, "the run was killed part-way"

    sync.write_back(engine, settings, client_for, tmp_path, sync.utc_now)
    assert sync.write_back(engine, settings, client_for, tmp_path, sync.utc_now) == 0, (
        "a third run sends nothing"
    )
    for wo_id, vin in [(w, o["ServiceItem"]["VIN"]) for w, o in orders.items()][:4]:
        sr = srs.filter(pl.col("vin") == vin)["sr_id"].item()
        assert _packages(fake, wo_id, package_guid("north", wo_id.lower(), sr)) == 1
    sync.sweep(
        engine, settings, client_for, tmp_path, sync.utc_now, history_start=datetime(2025, 1, 1, tzinfo=UTC)
    )
    with engine.connect() as conn:
        added = conn.execute(sa.text(
            "SELECT count(DISTINCT package_id) FROM work_order_lines WHERE valid_to IS NULL AND package_title = 'Used Recon'"
        )).scalar()  # fmt: skip
    assert added == 4
