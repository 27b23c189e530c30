"""`dealer-assets xtime fake` as a real process, and `dealer-assets catch-up` booking through it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import polars as pl
import pytest
import yaml

from dealer_assets import cli
from dealer_assets.core.warehouse import engine_for
from dealer_assets.xtime import store
from dealer_assets.xtime.cli import text_table
from dealer_assets.xtime.intake import RequestPaths
from dealer_assets_tests.support import BASIC_SETTINGS, make_root
from dealer_assets_tests.xtime.support import CREDENTIALS, REQUEST, days_ahead, settings_document

PROJECT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def configured(tmp_path, monkeypatch):
    port = free_port()
    root = make_root(tmp_path)
    document = yaml.safe_load(BASIC_SETTINGS) | settings_document(f"http://127.0.0.1:{port}")
    document["xtime"]["dealerships"]["d100"]["dealer_code"] = "X100100"  # a sample dealership of the fake
    root.settings(yaml.safe_dump(document))
    env = root.env() | CREDENTIALS | {"DAGSTER_HOME": str(tmp_path / "dagster_home")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return root, port, env


@pytest.mark.e2e
def test_the_fake_command_serves_and_catch_up_books_once(configured, capsys):
    root, port, env = configured
    proc = subprocess.Popen(
        [sys.executable, "-m", "dealer_assets.cli", "xtime", "fake", "--port", str(port)],
        env=os.environ | env | {"PYTHONPATH": str(PROJECT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the fake did not start"
            time.sleep(0.1)
        incoming = RequestPaths(root.paths.data_dir).incoming
        incoming.mkdir(parents=True)
        (incoming / "web.jsonl").write_text(json.dumps(REQUEST | {"earliest": days_ahead()}) + "\n")
        assert cli.main(["catch-up"]) == 0
        assert cli.main(["catch-up"]) == 0
        bookings = store.read_bookings(engine_for(root.paths.warehouse_url))
        assert bookings.select("request_id", "dealership", "opcode").rows() == [("web-1", "d100", "TUM")]
        stats = httpx.get(f"http://127.0.0.1:{port}/_control/stats").json()
        assert stats["calls"]["/service/appointments-bookings"] == 1 and stats["appointments"] == 1
        capsys.readouterr()
        assert cli.main(["xtime", "status"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[1].split() == ["dealership", "state", "detail"]
        assert "requests: booked 1" in lines
        assert lines[-1].split()[:2] == ["web-1", "d100"] and lines[-1].split()[4] == "TUM"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_missing_credential_or_a_bad_key_exits_2_naming_it(configured, monkeypatch, capsys):
    root, _, env = configured
    monkeypatch.delenv("XTIME_API_KEY")
    assert cli.main(["xtime", "fake", "--port", "1"]) == 2
    assert "XTIME_API_KEY: not set" in capsys.readouterr().err
    assert cli.main(["catch-up"]) == 2
    assert "XTIME_API_KEY: not set (named by xtime.api_key_env in the settings)" in capsys.readouterr().err
    assert not Path(env["DAGSTER_HOME"]).exists(), "nothing runs under an incomplete configuration"
    document = yaml.safe_load(root.paths.settings_file.read_text())
    document["xtime"]["dealerships"]["d100"]["time_zone"] = "Mars/Olympus"
    root.settings(yaml.safe_dump(document))
    assert cli.main(["xtime", "status"]) == 2
    err = capsys.readouterr().err
    assert (
        f"{root.paths.settings_file}: xtime.dealerships.d100.time_zone: 'Mars/Olympus' is not an IANA" in err
    )


def test_status_tables_keep_every_text_whole_and_aligned():
    frame = pl.DataFrame(
        {"dealership": ["d1", "d101"], "state": ["confirmed", None], "detail": ["x" * 300, "short"]}
    )
    header, first, second = text_table(frame).splitlines()
    assert first.endswith(" " + "x" * 300), "the last column is never cut"
    assert second.split() == ["d101", "-", "short"]
    assert header.index("state") == first.index("confirmed") == second.index("-")
    assert header.index("detail") == first.index("x") == second.index("short")
