"""Fixtures for the Protractor tests: keys in the environment, a fake Protractor and our receiver, each served
by uvicorn on a free loopback port in a thread (real HTTP, no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from dealer_assets.protractor.fake import Account, FakeProtractor, sample_vehicles
from dealer_assets.protractor.fake.app import ServerThread
from dealer_assets.protractor.receiver import EVENTS_PATH, Credential, create_app

NORTH = ("7C3E5F2A-91B4-4D6E-A0C8-2F1B9E4D7A63", "B5D2E8F1-3A6C-4E9B-8D7F-1C4A2E6B9F05")
SOUTH = ("0A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9", "F9E8D7C6-B5A4-4392-8170-6F5E4D3C2B1A")
SETTINGS = """
sources:
  generic:
    layout: generic
    track_stock_no_and_client: {{mode: never}}
    auto_close: {{mode: never}}
    client_dealer_mappings:
      - {{client: Riverside Motors, dealer_id: "D100", service_request_type: Used Recon}}
protractor:
  base_url: {base_url}
  locations:
    north:
      name: North Shop
      time_zone: America/Chicago
      connection_id_env: PT_NORTH_CONN
      api_key_env: PT_NORTH_KEY
      status_map: {{Work In Progress: WIP, Completed: Complete, Approved: Approved}}
      user_map: {{Dana Smith: dana.smith, Lee Park: lee.park, Chris Olsen: chris.olsen, Pat Nguyen: pat.nguyen}}
      write_back: true
    south:
      name: South Shop
      time_zone: America/New_York
      connection_id_env: PT_SOUTH_CONN
      api_key_env: PT_SOUTH_KEY
"""


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, str]]:
    monkeypatch.setenv("PT_NORTH_CONN", NORTH[0])
    monkeypatch.setenv("PT_NORTH_KEY", NORTH[1])
    monkeypatch.setenv("PT_SOUTH_CONN", SOUTH[0])
    monkeypatch.setenv("PT_SOUTH_KEY", SOUTH[1])
    return {"north": NORTH, "south": SOUTH}


def accounts(count: int = 12) -> list[Account]:
    north = Account("north", *NORTH, "America/Chicago")
    south = Account("south", *SOUTH, "America/New_York")
    vehicles = sample_vehicles()
    north.shop.seed(vehicles, datetime(2026, 11, 16, 7), count, seed=1)
    south.shop.seed(vehicles[count:], datetime(2026, 11, 16, 8), count // 2, seed=2)
    return [north, south]


@pytest.fixture
def journal_root(tmp_path: Path) -> Path:
    return tmp_path / "protractor" / "events"


@pytest.fixture
def receiver(journal_root: Path) -> Iterator[str]:
    creds = [Credential("north", *NORTH), Credential("south", *SOUTH)]
    server = ServerThread(create_app(creds, journal_root)).start()
    try:
        yield server.url + EVENTS_PATH
    finally:
        server.stop()


@pytest.fixture
def fake(receiver: str) -> Iterator[FakeProtractor]:
    with FakeProtractor(accounts(), receiver_url=receiver) as server:
        yield server


@pytest.fixture
def settings_file(tmp_path: Path, fake: FakeProtractor) -> Path:
    path = tmp_path / "dealer_feeds.yaml"
    path.write_text(SETTINGS.format(base_url=fake.base_url))
    return path
