"""`dealer-assets protractor ...` and `catch-up`: exit codes, and the receiver served by its command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dealer_assets.cli import main
from dealer_assets.protractor.fake import FakeProtractor
from dealer_assets.protractor.journal import journal_dir, read_new

from .conftest import NORTH

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(tmp_path: Path, settings_file: Path, keys, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEALER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEALER_SETTINGS_FILE", str(settings_file))
    monkeypatch.setenv("DEALER_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    monkeypatch.setenv("DEALER_HISTORY_START", "2026-11-01T00:00:00Z")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return tmp_path


def test_resync_then_catch_up(cli_env: Path, fake: FakeProtractor, capsys) -> None:
    assert main(["protractor", "resync", "--location", "north"]) == 0
    assert "protractor: run" in capsys.readouterr().out
    shop = fake.accounts["north"].shop
    wo = next(iter(shop.orders))
    from datetime import datetime

    fake.notify("north", [shop.set_stage(wo, "Completed", datetime(2026, 11, 25, 9))])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not journal_dir(cli_env).exists():
        time.sleep(0.05)
    assert main(["catch-up"]) == 0


def test_configuration_errors_exit_2(cli_env: Path, fake: FakeProtractor, monkeypatch, capsys) -> None:
    assert main(["protractor", "resync", "--location", "west"]) == 2
    assert "--location: west" in capsys.readouterr().err
    assert main(["protractor", "resync", "--since", "yesterday"]) == 2
    monkeypatch.delenv("PT_NORTH_KEY")
    assert main(["protractor", "serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "PT_NORTH_KEY" in err and "protractor.locations.north.api_key_env" in err and NORTH[1] not in err


def test_catch_up_without_a_locations_key_exits_2_before_any_run(cli_env: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("PT_NORTH_KEY")
    assert main(["catch-up"]) == 2
    err = capsys.readouterr().err
    assert "PT_NORTH_KEY" in err and "protractor.locations.north.api_key_env" in err
    assert not (cli_env / "dagster_home").exists(), "nothing runs under an incomplete configuration"


def test_resync_failure_exits_1(cli_env: Path, fake: FakeProtractor) -> None:
    httpx.post(fake.base_url + "/_control/faults", json={"faults": [["500"]] * 6}).raise_for_status()
    assert main(["protractor", "resync", "--location", "south"]) == 1


@pytest.mark.e2e
def test_serve_command_stores_callbacks(cli_env: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"PYTHONPATH": str(PROJECT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dealer_assets.cli", "protractor", "serve", "--port", str(port)], env=env
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        params = {"connectionId": NORTH[0], "apiKey": NORTH[1], "type": "WorkOrder",
                  "id": "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "operation": "Create"}  # fmt: skip
        assert httpx.get(url + "/integrations/protractor/events", params=params).status_code == 200
        assert (
            httpx.get(url + "/integrations/protractor/events", params=params | {"apiKey": "x"}).status_code
            == 401
        )
    finally:
        proc.terminate()
        proc.wait(10)
    rows, _ = read_new(journal_dir(cli_env), {})
    assert rows.height == 1 and rows["location_id"].item() == "north"
