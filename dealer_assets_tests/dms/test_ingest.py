"""From the drop zone to parsed, normalized feeds (CONTRACT sections 1, 2 and 5), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dealer_assets.core.warehouse import engine_for
from dealer_assets.dms import tables as t
from dealer_assets.dms.archive import FeedArchive
from dealer_assets.dms.ingest import RawFeedsReport, ingest_raw_feeds
from dealer_assets.dms.normalize_feeds import NormalizedReport, normalize_window
from dealer_assets.dms.quarantine import triage_misdelivered
from dealer_assets.dms.settings import DealerSettings, load_settings
from dealer_assets_tests.support import HEADER, DataRoot, at, feed_body, feed_name, make_root, vin

SOURCE = "generic"
START, END = at(0, 0), at(10, 0)


@dataclass
class Env:
    root: DataRoot
    settings: DealerSettings
    engine: Engine

    @property
    def store(self) -> FeedArchive:
        return FeedArchive(self.root.paths)

    def ingest(
        self, received_at: datetime = at(9), start: datetime = START, end: datetime = END
    ) -> tuple[RawFeedsReport, NormalizedReport]:
        raw = ingest_raw_feeds(
            self.root.paths,
            SOURCE,
            self.settings.sources[SOURCE],
            set(self.settings.sources),
            self.engine,
            start,
            end,
            received_at,
        )
        normalized = normalize_window(
            self.root.paths, SOURCE, self.settings.sources[SOURCE], self.engine, start, end
        )
        return raw, normalized

    def rows(self, table: sa.Table) -> list[dict]:
        with self.engine.connect() as conn:
            result = conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            return [dict(r._mapping) for r in result]

    def snapshot(self) -> dict[str, list[dict]]:
        return {tbl.name: self.rows(tbl) for tbl in (t.feed_files, t.rejected_rows, t.quarantined_files)}

    def files(self) -> dict[str, object]:
        """Every file under the data root except the settings, with its content (parquet as a frame)."""
        out: dict[str, object] = {}
        data = self.root.paths.data_dir
        for path in sorted(data.rglob("*")):
            if (
                not path.is_file()
                or "config" in path.relative_to(data).parts
                or path.name.startswith("warehouse.db")
            ):
                continue
            key = str(path.relative_to(data))
            out[key] = pl.read_parquet(path).rows() if path.suffix == ".parquet" else path.read_bytes()
        return out


@pytest.fixture
def env(warehouse_url: str, tmp_path: Path) -> Env:
    root = make_root(tmp_path, warehouse_url)
    return Env(root, load_settings(root.paths.settings_file), engine_for(warehouse_url))


def utc(value: datetime) -> datetime:
    """A timestamp read back from either backend, as an aware UTC datetime."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_archive_is_immutable_and_checksummed(env: Env) -> None:
    body = feed_body([("D1", vin(1), "S1", "U"), ("D2", vin(2), "S2", "U")]).encode()
    name = feed_name(SOURCE, at(1))
    env.root.drop(name, body)
    raw, normalized = env.ingest()
    assert raw.archived == [name] and raw.duplicates == [] and raw.quarantined == []
    assert not (env.root.incoming / name).exists(), "the drop zone keeps only work"

    archived = env.root.paths.archive / SOURCE / "2026" / "11" / "02" / name
    assert archived.read_bytes() == body
    mode = stat.S_IMODE(archived.stat().st_mode)
    assert mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0, oct(mode)
    sidecar = archived.with_name(name + ".sha256")
    assert sidecar.read_text().split() == [sha(body), name]

    (ledger,) = env.rows(t.feed_files)
    assert (ledger["file_name"], ledger["sha256"], ledger["bytes"], ledger["status"]) == (
        name,
        sha(body),
        len(body),
        "accepted",
    )
    assert (ledger["raw_rows"], ledger["malformed_rows"], ledger["vehicles"], ledger["rejected_rows"]) == (
        2,
        0,
        2,
        0,
    )
    assert utc(ledger["feed_as_of"]) == at(1)
    assert normalized.vehicles == 2 and normalized.per_dealer.rows() == [("D1", 1), ("D2", 1)]

    # A replay can work from the archive alone, after the drop zone and parsed files are gone.
    for parquet in env.root.paths.data_dir.rglob("*.parquet"):
        parquet.unlink()
    raw2, normalized2 = env.ingest()
    assert raw2.archived == [] and [f["file"] for f in raw2.feeds] == [name]
    assert normalized2.vehicles == 2


def test_archive_corruption_is_detected(env: Env) -> None:
    name = feed_name(SOURCE, at(1))
    env.root.drop(name, feed_body([("D1", vin(1), "S1", "U")]))
    env.ingest()
    archived = env.store.archive_path(env.store.archived_feeds(SOURCE)[0].feed)
    archived.chmod(0o644)
    archived.write_bytes(feed_body([("D1", vin(9), "S9", "U")]).encode())
    with pytest.raises(OSError, match="archive corrupted"):
        env.ingest()


def test_same_name_same_bytes_is_recorded_once(env: Env) -> None:
    body = feed_body([("D1", vin(1), "S1", "U"), ("D1", "BAD", "S2", "U")])
    name = feed_name(SOURCE, at(1))
    env.root.drop(name, body)
    env.ingest(received_at=at(2))
    tables, files = env.snapshot(), env.files()
    assert len(tables["feed_files"]) == 1 and len(tables["rejected_rows"]) == 1

    env.root.drop(name, body)
    raw, normalized = env.ingest(received_at=at(3))
    assert raw.duplicates == [name] and raw.archived == [] and raw.quarantined == []
    assert not (env.root.incoming / name).exists()
    assert env.snapshot() == tables
    assert env.files() == files
    assert normalized.vehicles == 1


def test_same_name_other_bytes_is_a_conflicting_redelivery(env: Env) -> None:
    first = feed_body([("D1", vin(1), "S1", "U")]).encode()
    second = feed_body([("D1", vin(2), "S2", "U"), ("D2", vin(3), "S3", "U")]).encode()
    name = feed_name(SOURCE, at(1))
    env.root.drop(name, first)
    env.ingest(received_at=at(2))
    before = env.snapshot()

    env.root.drop(name, second)
    raw, normalized = env.ingest(received_at=at(3))
    (q,) = raw.quarantined
    assert (q.file_name, q.sha256, q.reason) == (name, sha(second), "conflicting_redelivery")
    assert not (env.root.incoming / name).exists()
    assert Path(q.path).read_bytes() == second
    assert Path(q.path).parent == env.root.paths.quarantine
    reason = json.loads(Path(q.path + ".reason.json").read_text())
    assert (reason["reason"], reason["sha256"], reason["file_name"]) == (
        "conflicting_redelivery",
        sha(second),
        name,
    )

    (row,) = env.rows(t.quarantined_files)
    assert (row["file_name"], row["sha256"], row["reason"]) == (name, sha(second), "conflicting_redelivery")
    assert utc(row["quarantined_at"]) == at(3)

    # The first feed stays in force.
    (archived,) = env.store.archived_feeds(SOURCE)
    assert archived.path.read_bytes() == first and archived.sha256 == sha(first)
    assert env.rows(t.feed_files) == before["feed_files"]
    assert normalized.vehicles == 1
    vehicles = pl.read_parquet(env.store.normalized_path(archived.feed))
    assert vehicles["vin"].to_list() == [vin(1)]


def test_identical_bytes_under_a_new_as_of_are_a_new_feed(env: Env) -> None:
    body = feed_body([("D1", vin(1), "S1", "U")])
    env.root.drop(feed_name(SOURCE, at(1)), body)
    env.root.drop(feed_name(SOURCE, at(2)), body)
    raw, normalized = env.ingest()
    assert sorted(raw.archived) == [feed_name(SOURCE, at(1)), feed_name(SOURCE, at(2))]
    ledger = env.rows(t.feed_files)
    assert [(utc(r["feed_as_of"]), r["status"], r["sha256"]) for r in ledger] == [
        (at(1), "accepted", sha(body.encode())),
        (at(2), "accepted", sha(body.encode())),
    ]
    assert [f["vehicles"] for f in normalized.feeds] == [1, 1]
    assert env.rows(t.quarantined_files) == []


def test_unreadable_files_are_quarantined_and_good_file_flows(env: Env) -> None:
    good = feed_body([("D1", vin(1), "S1", "U"), ("D2", vin(2), "S2", "U")]).encode()
    latin = (HEADER + f"D1,{vin(3)},S3,U,2022,Citroën,C3,X,1,2026-10-01\n").encode("latin-1")
    no_vin = b"DealerID,StockNo,SystemCode\nD1,S1,U\n"
    # quoted fields and stray inch marks: the quoting cannot be followed (the CSV reader itself gives up)
    stray = (
        f'DealerID,VIN,StockNo,SystemCode\nD1,"{vin(4)}",S1,U\nD2,{vin(5)},20" WHL,U\n'
        f'D3,{vin(6)},17" RIM,U\nD4,{vin(7)},S4,U\n'
    ).encode()
    names = {
        "undecodable": feed_name(SOURCE, at(1)),
        "missing_required_column": feed_name(SOURCE, at(2)),
        "good": feed_name(SOURCE, at(3)),
        "unparseable": feed_name(SOURCE, at(0)),
    }
    env.root.drop(names["undecodable"], latin)
    env.root.drop(names["missing_required_column"], no_vin)
    env.root.drop(names["good"], good)
    env.root.drop(names["unparseable"], stray)
    raw, normalized = env.ingest(received_at=at(4))

    assert sorted((q.file_name, q.reason) for q in raw.quarantined) == sorted(
        [
            (names["undecodable"], "undecodable"),
            (names["missing_required_column"], "missing_required_column"),
            (names["unparseable"], "unparseable"),
        ]
    )
    rows = {r["file_name"]: r for r in env.rows(t.quarantined_files)}
    assert set(rows) == {names["undecodable"], names["missing_required_column"], names["unparseable"]}
    for reason, data in (("undecodable", latin), ("missing_required_column", no_vin), ("unparseable", stray)):
        row = rows[names[reason]]
        assert (row["sha256"], row["reason"], row["source"]) == (sha(data), reason, SOURCE)
        copy = env.root.paths.quarantine / f"{names[reason]}.{sha(data)[:12]}"
        assert copy.read_bytes() == data
        assert json.loads(copy.with_name(copy.name + ".reason.json").read_text())["reason"] == reason

    ledger = {r["file_name"]: r for r in env.rows(t.feed_files)}
    assert {n: (r["status"], r["reason"]) for n, r in ledger.items()} == {
        names["undecodable"]: ("quarantined", "undecodable"),
        names["missing_required_column"]: ("quarantined", "missing_required_column"),
        names["unparseable"]: ("quarantined", "unparseable"),
        names["good"]: ("accepted", None),
    }
    assert [f["file"] for f in raw.feeds] == [names["good"]]
    assert [f["file"] for f in normalized.feeds] == [names["good"]]
    assert normalized.vehicles == 2
    # No parsed or normalized output exists for a quarantined feed.
    for archived in env.store.archived_feeds(SOURCE, at(0), at(3)):
        assert not env.store.raw_path(archived.feed).exists()
        assert not env.store.normalized_path(archived.feed).exists()
    # Quarantined feeds stay in the archive (immutable): only a copy went to quarantine.
    assert len(env.store.archived_feeds(SOURCE)) == 4

    # Running the window again quarantines nothing new and changes nothing.
    before = env.snapshot()
    env.ingest(received_at=at(5))
    assert env.snapshot() == before


def test_misdelivered_files_are_quarantined_by_triage(env: Env) -> None:
    received = at(2)
    bad = {
        "inventory.csv": "bad_file_name",
        feed_name("other", at(1)): "unknown_source",
        feed_name(SOURCE, datetime(2024, 12, 31, tzinfo=UTC)): "as_of_out_of_range",
        feed_name(SOURCE, received + timedelta(hours=1, seconds=1)): "as_of_out_of_range",
    }
    for n, name in enumerate(bad):
        env.root.drop(name, f"body {n}\n")
    good = feed_name(SOURCE, received + timedelta(hours=1))
    env.root.drop(good, feed_body([("D1", vin(1), "S1", "U")]))

    found = triage_misdelivered(env.root.paths, env.settings, env.engine, received)
    assert {q.file_name: q.reason for q in found} == bad
    rows = env.rows(t.quarantined_files)
    assert {r["file_name"]: (r["reason"], r["sha256"]) for r in rows} == {
        name: (reason, sha(f"body {n}\n".encode())) for n, (name, reason) in enumerate(bad.items())
    }
    assert {r["file_name"]: r["source"] for r in rows}["inventory.csv"] is None
    for q in found:
        assert Path(q.path).exists() and Path(q.path).parent == env.root.paths.quarantine
        assert not (env.root.incoming / q.file_name).exists()
    assert [p.name for p in env.store.incoming()] == [good]

    # The good file (exactly one hour ahead) still flows.
    raw, _ = env.ingest(received_at=received, end=at(3))
    assert raw.archived == [good]


def test_ingest_leaves_other_sources_and_windows_alone(env: Env) -> None:
    inside, outside = feed_name(SOURCE, at(1)), feed_name(SOURCE, at(11))
    env.root.drop(inside, feed_body([("D1", vin(1), "S1", "U")]))
    env.root.drop(outside, feed_body([("D1", vin(1), "S1", "U")]))
    env.root.drop("junk.csv", "x")
    raw, _ = env.ingest(received_at=at(11))
    assert raw.archived == [inside]
    assert sorted(p.name for p in env.store.incoming()) == sorted([outside, "junk.csv"])
    assert env.rows(t.quarantined_files) == []


def test_malformed_and_rejected_rows_with_line_numbers(env: Env) -> None:
    body = (
        HEADER
        + f"D1,{vin(1)},S1,U,2022,FORD,F150,XL,1000,2026-10-01\n"
        + f"D1,{vin(2)},S2,U,2022\n"  # line 3: too few
        + f'D1,{vin(3)},"S\n3",U,2022,FORD,F150,XL,1000,2026-10-01\n'  # lines 4-5: quoted newline
        + f"D2,{vin(4)},S4,U,2022,FORD,F150,XL,1000,2026-10-01,x\n"  # line 6: too many
        + "D2,NOTAVIN,S5,U,,,,,,\n"  # line 7: invalid VIN
        + f",{vin(5)},S6,U,,,,,,\n"  # line 8: no dealer
        + f"D2,{vin(1).lower()},S7,U,,,,,,\n"
    )  # line 9: duplicate
    name = feed_name(SOURCE, at(1))
    env.root.drop(name, body)
    raw, normalized = env.ingest()
    assert raw.malformed_rows == 2 and raw.raw_rows == 5
    rejected = env.rows(t.rejected_rows)
    assert [(r["line_number"], r["reason"], r["raw_vin"]) for r in rejected] == [
        (3, "malformed_row", vin(2)),
        (6, "malformed_row", vin(4)),
        (7, "invalid_vin", "NOTAVIN"),
        (8, "missing_dealer", vin(5)),
        (9, "duplicate_vin", vin(1).lower()),
    ]
    assert {r["feed_file"] for r in rejected} == {name}
    assert {utc(r["feed_as_of"]) for r in rejected} == {at(1)}
    assert normalized.vehicles == 2
    assert normalized.rejected_by_reason == {"invalid_vin": 1, "missing_dealer": 1, "duplicate_vin": 1}
    (ledger,) = env.rows(t.feed_files)
    assert (ledger["raw_rows"], ledger["malformed_rows"], ledger["vehicles"], ledger["rejected_rows"]) == (
        5,
        2,
        2,
        3,
    )
    # No empty strings in the warehouse: absent values are NULL.
    assert all(v != "" for r in rejected for v in r.values())


def test_rerunning_the_same_window_leaves_identical_tables(env: Env) -> None:
    env.root.drop(feed_name(SOURCE, at(1)), feed_body([("D1", vin(1), "S1", "U"), ("D1", "x", "S", "U")]))
    env.root.drop(feed_name(SOURCE, at(2)), HEADER + f"D1,{vin(2)}\n")
    env.root.drop(feed_name(SOURCE, at(3)), b"\xff\xfe\n")
    env.root.drop(feed_name(SOURCE, at(4)), "")
    env.ingest(received_at=at(5))
    tables, files = env.snapshot(), env.files()
    assert len(tables["feed_files"]) == 4 and len(tables["rejected_rows"]) == 2
    assert len(tables["quarantined_files"]) == 1
    for received in (at(5), at(6)):
        env.ingest(received_at=received)
        assert env.snapshot() == tables
        assert env.files() == files


def test_empty_and_header_only_files_are_accepted_feeds(env: Env) -> None:
    env.root.drop(feed_name(SOURCE, at(1)), "")
    env.root.drop(feed_name(SOURCE, at(2)), HEADER)
    raw, normalized = env.ingest()
    assert raw.quarantined == []
    assert [(r["status"], r["raw_rows"], r["vehicles"]) for r in env.rows(t.feed_files)] == [
        ("accepted", 0, 0),
        ("accepted", 0, 0),
    ]
    assert normalized.vehicles == 0


def test_same_as_of_under_another_extension_is_the_same_feed(env: Env) -> None:
    first = feed_body([("D1", vin(1), "S1", "U")]).encode()
    other = feed_body([("D1", vin(2), "S2", "U"), ("D2", vin(3), "S3", "U")]).encode()
    env.root.drop(feed_name(SOURCE, at(1), "csv"), first)
    env.ingest(received_at=at(2))
    env.root.drop(feed_name(SOURCE, at(1), "txt"), other)
    raw, normalized = env.ingest(received_at=at(3))
    assert [(q.file_name, q.reason) for q in raw.quarantined] == [
        (feed_name(SOURCE, at(1), "txt"), "conflicting_redelivery")
    ]
    (ledger,) = env.rows(t.feed_files)
    assert (ledger["file_name"], ledger["sha256"]) == (feed_name(SOURCE, at(1), "csv"), sha(first))
    assert normalized.vehicles == 1
