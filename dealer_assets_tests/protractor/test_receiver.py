"""The callback receiver over loopback HTTP: auth, validation, bounds, durability, duplicates, bursts."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import polars as pl
import pytest

from dealer_assets.protractor.domain.events import EVENT_SCHEMA, new_events
from dealer_assets.protractor.fake import ServerThread
from dealer_assets.protractor.journal import read_new
from dealer_assets.protractor.receiver import EVENTS_PATH, Credential, create_app
from dealer_assets_tests.protractor.support import NORTH, SOUTH

WO = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def _params(conn: str = NORTH[0], key: str = NORTH[1], **kw: str) -> dict:
    return {"connectionId": conn, "apiKey": key, "type": "WorkOrder", "id": WO, "operation": "Update"} | kw


def _stored(root: Path) -> pl.DataFrame:
    return read_new(root, {})[0] if root.exists() else pl.DataFrame()


def test_health(receiver: str) -> None:
    assert httpx.get(receiver.replace(EVENTS_PATH, "/healthz")).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        _params(key=SOUTH[1]),  # another location's key
        _params(conn=SOUTH[0]),  # another location's connection id
        _params(key=NORTH[1][:-1] + "0"),
        {k: v for k, v in _params().items() if k != "apiKey"},
        {k: v for k, v in _params().items() if k != "connectionId"},
        _params(conn="", key=""),
    ],
)
def test_unknown_keys_401_nothing_stored(receiver: str, journal_root: Path, params: dict) -> None:
    response = httpx.get(receiver, params=params)
    assert response.status_code == 401 and response.text == "unauthorized"
    assert not journal_root.exists() or not any(journal_root.rglob("*.jsonl"))


@pytest.mark.parametrize(
    ("change", "word"),
    [
        ({"type": "Invoice"}, "type"),
        ({"operation": "Upsert"}, "operation"),
        ({"id": "12345"}, "GUID"),
        ({"id": ""}, "GUID"),
    ],
)
def test_invalid_notification_400(receiver: str, journal_root: Path, change: dict, word: str) -> None:
    response = httpx.get(receiver, params=_params(**change))
    assert response.status_code == 400 and word in response.json()["error"]
    assert not journal_root.exists() or not any(journal_root.rglob("*.jsonl"))


def test_bounded_request_size(receiver: str) -> None:
    assert httpx.get(receiver, params=_params(pad="x" * 5000)).status_code == 414
    assert httpx.post(receiver, params=_params(), content=b"x" * 20000).status_code == 413


def test_get_and_post_stored_durably_before_2xx_keys_never_written(
    receiver: str, journal_root: Path, caplog
) -> None:
    assert httpx.get(receiver, params=_params(operation="Create")).status_code == 200
    assert (
        httpx.post(receiver, params=_params(conn=SOUTH[0], key=SOUTH[1], type="Contact")).status_code == 200
    )
    rows = _stored(journal_root).sort("location_id")
    assert rows.select("location_id", "type", "object_id", "operation").rows() == [
        ("north", "WorkOrder", WO, "Create"),
        ("south", "Contact", WO, "Update"),
    ]
    text = b"".join(p.read_bytes() for p in journal_root.rglob("*.jsonl")).decode()
    for secret in (*NORTH, *SOUTH):
        assert secret not in text and secret not in caplog.text


def test_duplicate_callbacks_recorded_once(receiver: str, journal_root: Path) -> None:
    for _ in range(3):
        assert httpx.get(receiver, params=_params(id=WO.upper())).status_code == 200
    journal, _ = read_new(journal_root, {})
    assert journal.height == 3, "the journal keeps what arrived"
    empty = pl.DataFrame(schema=EVENT_SCHEMA)
    table = new_events(journal, empty, empty)
    assert table.height == 1 and table["object_id"].item() == WO
    assert new_events(journal, table, table).is_empty(), "loading again adds nothing"


def test_per_location_rate_429(tmp_path: Path) -> None:
    app = create_app([Credential("north", *NORTH)], tmp_path / "j", rate_per_second=1, burst=3)
    server = ServerThread(app).start()
    try:
        codes = [httpx.get(server.url + EVENTS_PATH, params=_params()).status_code for _ in range(5)]
    finally:
        server.stop()
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
    assert read_new(tmp_path / "j", {})[0].height == codes.count(200)


@pytest.mark.slow
def test_2000_callbacks_none_lost_while_loading(receiver: str, journal_root: Path) -> None:
    ids = [str(uuid.UUID(int=i + 1)) for i in range(2000)]
    loaded: list[pl.DataFrame] = []
    offsets: dict[str, int] = {}

    async def send() -> list[int]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            sem = asyncio.Semaphore(64)

            async def one(object_id: str) -> int:
                async with sem:
                    return (await client.get(receiver, params=_params(id=object_id))).status_code

            return await asyncio.gather(*(one(i) for i in ids))

    async def load_while_sending(task: asyncio.Task) -> None:
        nonlocal offsets
        while not task.done():
            if journal_root.exists():
                frame, offsets = await asyncio.to_thread(read_new, journal_root, offsets)
                loaded.append(frame)
            await asyncio.sleep(0.05)

    async def main() -> list[int]:
        task = asyncio.create_task(send())
        await load_while_sending(task)
        return await task

    codes = asyncio.run(main())
    frame, offsets = read_new(journal_root, offsets)
    loaded.append(frame)
    assert codes.count(200) == 2000
    everything = pl.concat(loaded)
    assert everything.height == 2000 and sorted(everything["object_id"]) == sorted(ids)
    assert everything["event_id"].n_unique() == 2000, "no line read twice across partial reads"
