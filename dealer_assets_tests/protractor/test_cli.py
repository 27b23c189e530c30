"""`dealer-assets protractor ...` and `catch-up`: exit codes, and the receiver served by its command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from dealer_assets.cli import main
from dealer_assets.core.tags import AREA_TAG
from dealer_assets.core.warehouse import engine_for
from dealer_assets.protractor.fake import FakeProtractor
from dealer_assets.protractor.journal import journal_dir, read_new
from dealer_assets_tests.protractor.support import NORTH, journaled
from dealer_assets_tests.support import wait_for

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(tmp_path: Path, settings_file: Path, keys: dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEALER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEALER_SETTINGS_FILE", str(settings_file))
    monkeypatch.setenv("DEALER_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    monkeypatch.setenv("DEALER_HISTORY_START", "2026-11-01T00:00:00Z")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return tmp_path


def _current_stage(data_dir: Path, work_order_id: str) -> str | None:
    engine = engine_for(f"sqlite:///{data_dir / 'warehouse.db'}")
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT protractor_stage FROM work_order_snapshots WHERE work_order_id = :wo AND valid_to IS NULL"
            ),
            {"wo": work_order_id.lower()},
        ).scalar()


@pytest.mark.slow
def test_resync_then_catch_up(cli_env: Path, fake: FakeProtractor, capsys: pytest.CaptureFixture) -> None:
    assert main(["protractor", "resync", "--location", "north"]) == 0
    assert "protractor resync (north): succeeded (run " in capsys.readouterr().out
    shop = fake.accounts["north"].shop
    wo = next(iter(shop.orders))
    fake.notify("north", [shop.set_stage(wo, "Completed", datetime(2026, 11, 25, 9))])
    wait_for(lambda: journaled(cli_env) >= 1, "the callback journaled", seconds=10)
    assert main(["catch-up"]) == 0
    assert _current_stage(cli_env, wo) == "Completed", "catch-up processed the notification"
    runs = dg.DagsterInstance.get().get_runs()
    assert sorted(r.job_name for r in runs) == ["protractor_events_job", "protractor_resync_job"]
    assert {r.tags.get(AREA_TAG) for r in runs} == {"protractor"}


def test_configuration_errors_exit_2(
    cli_env: Path, fake: FakeProtractor, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    assert main(["protractor", "resync", "--location", "west"]) == 2
    assert "--location: west" in capsys.readouterr().err
    assert main(["protractor", "resync", "--since", "yesterday"]) == 2
    monkeypatch.delenv("PT_NORTH_KEY")
    assert main(["protractor", "serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "PT_NORTH_KEY" in err and "protractor.locations.north.api_key_env" in err and NORTH[1] not in err


def test_catch_up_without_a_locations_key_exits_2_before_any_run(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("PT_NORTH_KEY")
    assert main(["catch-up"]) == 2
    err = capsys.readouterr().err
    assert "PT_NORTH_KEY" in err and "protractor.locations.north.api_key_env" in err
    assert not (cli_env / "dagster_home").exists(), "nothing runs under an incomplete configuration"


@pytest.mark.slow
def test_resync_failure_exits_1(cli_env: Path, fake: FakeProtractor) -> None:
    """Every attempt answered 500 (with `Retry-After: 0`, so the retries do not wait out the backoff)."""
    httpx.post(fake.base_url + "/_control/faults", json={"faults": [["500", 0]] * 6}).raise_for_status()
    assert main(["protractor", "resync", "--location", "south"]) == 1
    assert fake.stats.statuses == {"500": 6}, "every attempt was made, then the run failed"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.e2e
def test_serve_command_stores_callbacks(cli_env: Path) -> None:
    port = _free_port()
    env = os.environ | {"PYTHONPATH": str(PROJECT)}
    command = [sys.executable, "-m", "dealer_assets.cli", "protractor", "serve", "--port", str(port)]
    proc = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(url), "the receiver answering /healthz", seconds=20)
        params = {
            "connectionId": NORTH[0],
            "apiKey": NORTH[1],
            "type": "WorkOrder",
            "id": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
            "operation": "Create",
        }
        events = url + "/integrations/protractor/events"
        assert httpx.get(events, params=params).status_code == 200
        assert httpx.get(events, params=params | {"apiKey": "x"}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)
    rows, _ = read_new(journal_dir(cli_env), {})
    assert rows.height == 1 and rows["location_id"].item() == "north"
