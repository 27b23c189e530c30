"""Fixtures for the Protractor tests: keys in the environment, a fake Protractor and our receiver, each served
by uvicorn on a free loopback port in a thread (real HTTP, no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dealer_assets.core.env import DealerEnv, DealerPaths
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.warehouse import engine_for
from dealer_assets.protractor.defs import build_defs
from dealer_assets.protractor.fake import FakeProtractor, ServerThread
from dealer_assets.protractor.receiver import EVENTS_PATH, Credential, create_app
from dealer_assets_tests.protractor.support import NORTH, SETTINGS, SOUTH, Setup, accounts


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, str]]:
    monkeypatch.setenv("PT_NORTH_CONN", NORTH[0])
    monkeypatch.setenv("PT_NORTH_KEY", NORTH[1])
    monkeypatch.setenv("PT_SOUTH_CONN", SOUTH[0])
    monkeypatch.setenv("PT_SOUTH_KEY", SOUTH[1])
    return {"north": NORTH, "south": SOUTH}


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


@pytest.fixture
def setup(tmp_path: Path, fake: FakeProtractor, settings_file: Path, keys: dict, warehouse_url: str) -> Setup:
    text = settings_file.read_text().replace("  base_url:", "  resync_every_hours: 3\n  base_url:")
    settings_file.write_text(text)
    paths = DealerPaths(tmp_path, settings_file, datetime(2026, 11, 1, tzinfo=UTC), warehouse_url)
    defs = build_defs(DealerEnv.for_paths(paths))
    resources = {
        "dealer_env": DealerEnvironment(
            data_dir=str(tmp_path), settings_file=str(settings_file), history_start="2026-11-01T00:00:00Z"
        ),
        "warehouse": WarehouseResource(url=warehouse_url),
        **(defs.resources or {}),
    }
    return Setup(defs, resources, engine_for(warehouse_url), tmp_path)
