"""Request files: archived before reading, never lost, never read twice, bad lines kept with reasons."""

from __future__ import annotations

import json
import shutil

import polars as pl

from dealer_assets.xtime import store
from dealer_assets.xtime.intake import RequestPaths, ingest_files
from dealer_assets_tests.xtime.support import NOW

GOOD = {
    "request_id": "r1",
    "dealership": "d100",
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann@example.com",
    "phone": "555-201-3344",
    "earliest": "2026-12-01T09:30",
}


def write(paths: RequestPaths, name: str, rows: list) -> bytes:
    paths.incoming.mkdir(parents=True, exist_ok=True)
    data = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()
    (paths.incoming / name).write_bytes(data)
    return data


def test_a_file_is_archived_stored_and_removed(settings, engine, tmp_path):
    paths = RequestPaths(tmp_path)
    data = write(paths, "batch.jsonl", [GOOD, "garbage", GOOD | {"request_id": "r2", "dealership": "nope"}])
    summary = ingest_files(engine, settings, paths, NOW)
    assert summary.rows() == [("batch.jsonl", 3, 3, 2)]
    assert not (paths.incoming / "batch.jsonl").exists()
    [archived] = list(paths.archive.iterdir())
    assert archived.read_bytes() == data and archived.name.endswith("-batch.jsonl")
    rows = store.read_requests(engine).sort("request_id").select("request_id", "status", "reason").rows()
    assert rows == [
        ("batch.jsonl#2", "invalid", "not valid JSON (Expecting value)"),
        ("batch.jsonl#3", "invalid", "dealership 'nope' is not configured"),
        ("r1", "pending", None),
    ]


def test_redelivery_and_a_kill_before_removal_change_nothing(settings, engine, tmp_path):
    paths = RequestPaths(tmp_path)
    write(paths, "batch.jsonl", [GOOD, "garbage"])
    ingest_files(engine, settings, paths, NOW)
    shutil.copy(next(paths.archive.iterdir()), paths.incoming / "batch.jsonl")
    assert ingest_files(engine, settings, paths, NOW).is_empty()
    assert not (paths.incoming / "batch.jsonl").exists()
    assert store.read_requests(engine).height == 2


def test_same_name_new_bytes_is_a_new_file_whose_duplicates_are_kept_as_invalid(settings, engine, tmp_path):
    paths = RequestPaths(tmp_path)
    write(paths, "batch.jsonl", [GOOD])
    ingest_files(engine, settings, paths, NOW)
    write(paths, "batch.jsonl", [GOOD, GOOD | {"request_id": "r9"}])
    summary = ingest_files(engine, settings, paths, NOW)
    assert summary["file"][0].startswith("batch.jsonl@")
    frame = store.read_requests(engine)
    assert frame.filter(pl.col("status") == "invalid")["reason"].to_list() == [
        "duplicate request_id 'r1' (already received)"
    ]
    assert sorted(frame.filter(pl.col("status") == "pending")["request_id"]) == ["r1", "r9"]
    assert len(list(paths.archive.iterdir())) == 2


def test_a_line_that_is_not_utf8_is_kept_invalid_and_the_others_flow(settings, engine, tmp_path):
    paths = RequestPaths(tmp_path)
    paths.incoming.mkdir(parents=True)
    good = json.dumps(GOOD).encode()
    latin = json.dumps(GOOD | {"request_id": "r2", "last_name": "Lée"}, ensure_ascii=False).encode("latin-1")
    (paths.incoming / "mixed.jsonl").write_bytes(b"\xef\xbb\xbf" + good + b"\r\n" + latin + b"\n")
    ingest_files(engine, settings, paths, NOW)
    rows = store.read_requests(engine).sort("request_id").select("request_id", "status", "reason").rows()
    assert rows == [("mixed.jsonl#2", "invalid", "not UTF-8 text"), ("r1", "pending", None)]
