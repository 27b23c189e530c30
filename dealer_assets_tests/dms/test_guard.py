"""The auto-close guard as a decision: the check reads the warehouse, a resolved trip
replays green, and an operator's release or keep is recorded and honoured by every replay."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from dealer_assets.core.warehouse import engine_for
from dealer_assets.definitions import build_definitions
from dealer_assets.dms import guard
from dealer_assets.dms.domain.rules import apply_feeds
from dealer_assets.dms.domain.state import empty_state
from dealer_assets.dms.domain.vehicles import FeedRef
from dealer_assets_tests.support import DataRoot, at, make_root, run_command, snapshot, vin

DEALER_ASSETS = str(Path(sys.executable).parent / "dealer-assets")
GUARDED = "auto_close: {mode: immediately}\n    auto_close_guard: {max_fraction: 0.5, min_active: 4}"
DAY1 = datetime(2026, 11, 2, 12, tzinfo=UTC)


def guarded_root(root: DataRoot) -> DataRoot:
    root.settings(
        root.paths.settings_file.read_text().replace("auto_close: {mode: after_days, days: 3}", GUARDED)
    )
    return root


def trip(root: DataRoot, resolve: bool = False) -> None:
    """Day 0: five D1 vehicles; day 1: a truncated feed lists one (the guard trips); day 2 lists all five."""
    root.drop_feed("generic", at(0), [("D1", vin(i), "S", "U") for i in range(5)])
    root.drop_feed("generic", at(1), [("D1", vin(0), "S", "U")])
    if resolve:
        root.drop_feed("generic", at(2), [("D1", vin(i), "S", "U") for i in range(5)])


def run(root: DataRoot, instance: dg.DagsterInstance, first: str, last: str, mode: str, **extra: str):
    from dealer_assets_tests.support import range_tags

    defs = build_definitions(root.dealer_env())
    result = defs.resolve_job_def("dms_generic_feeds_job").execute_in_process(
        instance=instance, raise_on_error=False, tags={**range_tags(first, last, mode), **extra}
    )
    assert result.success, "the run succeeds whatever the guard decided"
    return result


def guard_check(result) -> dg.AssetCheckEvaluation:
    (check,) = [
        c for c in result.get_asset_check_evaluations() if c.asset_check_key.name == "auto_close_guard"
    ]
    return check


def test_engine_applies_a_released_hold_as_of_its_feed(tmp_path: Path):
    from dealer_assets.dms.settings import load_settings

    root_settings = guarded_root(make_root(tmp_path))
    settings = load_settings(root_settings.paths.settings_file).sources["generic"]
    frame = pl.DataFrame(
        {"dealer_id": "D1", "vin": [vin(i) for i in range(5)], "stock_no": "S", "system_code": "U"}
    )

    def feeds():
        return [
            (FeedRef("generic", at(0), "a.csv"), frame),
            (FeedRef("generic", DAY1, "b.csv"), frame.head(1)),
        ]

    held = apply_feeds(empty_state(), feeds(), settings)
    released = apply_feeds(empty_state(), feeds(), settings, {DAY1: frozenset({"D1"})})
    assert held.guard.rows() == released.guard.rows() == [("generic", DAY1, "D1", 5, 4, True)]
    assert (held.events["event"] == "close_held").sum() == 4 and (held.state["status"] == "closed").sum() == 0
    closed = released.state.filter(pl.col("status") == "closed")
    assert closed.height == 4 and closed["closed_at"].unique().to_list() == [DAY1]
    assert (released.events["event"] == "close_held").sum() == 0
    assert (released.events["event"] == "auto_closed").sum() == 4


@pytest.mark.slow
def test_hold_stays_red_from_the_warehouse_until_an_operator_keeps_it(warehouse_url: str, tmp_path: Path):
    root = guarded_root(make_root(tmp_path / "root", warehouse_url))
    trip(root)
    instance = dg.DagsterInstance.ephemeral()
    first = run(root, instance, "2026-11-01", "2026-11-02", "incremental")
    check = guard_check(first)
    assert not check.passed
    assert (
        "dealer D1: 4 of 5 active SRs would close on feed generic-20261102T120000Z.csv" in check.description
    )
    # A re-run that applies nothing (a killed run's retry, a later tick) still names the hold.
    again = run(root, instance, "2026-11-02", "2026-11-02", "incremental")
    assert not guard_check(again).passed and "dealer D1" in guard_check(again).description
    engine = engine_for(warehouse_url)
    pending = guard.guard_state(engine, "generic").pending
    assert pending.select("dealer_id", "feed_as_of", "active", "to_close").rows() == [("D1", DAY1, 5, 4)]

    guard.record_decision(
        engine,
        "generic",
        "D1",
        DAY1,
        "keep",
        decided_by="dana",
        decided_at=datetime.now(UTC),
        reason="dealer ok",
    )
    assert guard.guard_state(engine, "generic").passed
    kept = run(root, instance, "2026-11-02", "2026-11-02", "incremental")
    assert guard_check(kept).passed
    tables = snapshot(warehouse_url)
    assert [r[3:5] for r in tables["guard_decisions"]] == [("keep", "dana")]
    assert sum(1 for r in tables["service_requests"] if r[8] == "active") == 5
    with pytest.raises(Exception, match="already decided"):
        guard.record_decision(
            engine, "generic", "D1", DAY1, "release", decided_by="x", decided_at=datetime.now(UTC), reason="r"
        )

    run(root, instance, "2026-11-01", "2026-11-01", "replay")
    assert snapshot(warehouse_url) == tables, "a replay honours the decision and reproduces the tables"


@pytest.mark.slow
def test_release_applies_the_held_closes_as_of_that_feed_and_replays_exactly(
    warehouse_url: str, tmp_path: Path
):
    root = guarded_root(make_root(tmp_path / "root", warehouse_url))
    trip(root)
    instance = dg.DagsterInstance.ephemeral()
    run(root, instance, "2026-11-01", "2026-11-02", "incremental")
    engine = engine_for(warehouse_url)
    with pytest.raises(Exception, match="held no closes"):
        guard.record_decision(
            engine, "generic", "D2", DAY1, "release", decided_by="x", decided_at=datetime.now(UTC), reason="r"
        )
    guard.record_decision(
        engine,
        "generic",
        "D1",
        DAY1,
        "release",
        decided_by="dana",
        decided_at=datetime.now(UTC),
        reason="sold",
    )
    waiting = guard.guard_state(engine, "generic")
    assert waiting.pending.is_empty() and waiting.unapplied_releases["dealer_id"].to_list() == ["D1"]
    assert "dealer-assets replay --source generic --from 2026-11-02T12:00:00Z" in guard.describe(
        "generic", waiting
    )

    released = run(root, instance, "2026-11-02", "2026-11-02", "replay")
    assert guard_check(released).passed
    tables = snapshot(warehouse_url)
    closed = [r for r in tables["service_requests"] if r[8] == "closed"]
    assert len(closed) == 4 and {r[11] for r in closed} == {DAY1}
    assert [r[2:6] for r in tables["close_guard"]] == [("D1", 5, 4, True)], "the trip stays recorded"
    assert not [e for e in tables["service_request_events"] if e[1] == "close_held"]

    run(root, instance, "2026-11-01", "2026-11-01", "replay")
    assert snapshot(warehouse_url) == tables


@pytest.mark.slow
def test_a_replay_through_a_trip_that_later_feeds_resolved_succeeds_green(data_root: DataRoot):
    root = guarded_root(data_root)
    trip(root, resolve=True)
    instance = dg.DagsterInstance.ephemeral()
    first = run(root, instance, "2026-11-01", "2026-11-03", "incremental")
    assert guard_check(first).passed
    replayed = run(root, instance, "2026-11-01", "2026-11-01", "replay")
    assert guard_check(replayed).passed
    (mat,) = [
        m
        for m in replayed.asset_materializations_for_node("generic__service_requests")
        if m.asset_key == dg.AssetKey(["dms", "generic", "service_requests"]) and m.partition == "2026-11-01"
    ]
    assert mat.metadata["run/guard_trips"].value == 1
    assert [r.data["dealer_id"] for r in mat.metadata["run/guard_trips_table"].value.records] == ["D1"]
    assert [r[2:6] for r in snapshot(root.paths.warehouse_url)["close_guard"]] == [("D1", 5, 4, True)]


def _cli(
    args: list[str], root: DataRoot, home: Path, extra: dict | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, **root.env(), "DAGSTER_HOME": str(home), **(extra or {})}
    if not env.get("DEALER_CRASH_AT"):
        return run_command(args, env)
    return subprocess.run([DEALER_ASSETS, *args], env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.e2e
def test_cli_exits_3_while_a_hold_awaits_and_records_decisions(tmp_path: Path):
    root = guarded_root(make_root(tmp_path / "root"))
    trip(root)
    home = tmp_path / "home"
    killed = _cli(["catch-up"], root, home, {"DEALER_CRASH_AT": "reconcile:after_commit"})
    assert killed.returncode == -9, "killed after the commit that recorded the hold"
    out = _cli(["catch-up"], root, home)
    assert out.returncode == 3, out.stdout + out.stderr[-3000:]
    assert (
        "dealer-assets guard release|keep --source generic --dealer D1 --feed 2026-11-02T12:00:00Z"
        in out.stdout
    )
    assert " - DEBUG - " not in out.stderr and "Warning" not in out.stderr
    assert _cli(["catch-up"], root, home).returncode == 3, "the alert cannot vanish on a re-run"
    verbose = _cli(
        ["--verbose", "replay", "--source", "generic", "--from", "2026-11-02T12:00:00Z"], root, home
    )
    assert verbose.returncode == 3 and " - DEBUG - " in verbose.stderr, "a replay reproduces the hold"

    missing = _cli(
        ["guard", "release", "--source", "generic", "--dealer", "D1", "--feed", "2026-11-02T12:00:00Z"],
        root,
        home,
    )
    assert missing.returncode == 2 and "--reason" in missing.stderr
    release = _cli(
        [
            "guard",
            "release",
            "--source",
            "generic",
            "--dealer",
            "D1",
            "--feed",
            "2026-11-02T12:00:00Z",
            "--reason",
            "inventory sold at auction",
            "--by",
            "dana",
        ],
        root,
        home,
    )
    assert release.returncode == 0, release.stdout + release.stderr[-3000:]
    assert "generic replay from 2026-11-02T12:00:00+00:00" in release.stdout
    tables = snapshot(root.paths.warehouse_url)
    (decision,) = tables["guard_decisions"]
    assert decision[3:5] == ("release", "dana") and decision[6] == "inventory sold at auction"
    assert sum(1 for r in tables["service_requests"] if r[8] == "closed") == 4
    twice = _cli(
        [
            "guard",
            "keep",
            "--source",
            "generic",
            "--dealer",
            "D1",
            "--feed",
            "2026-11-02T12:00:00Z",
            "--reason",
            "x",
        ],
        root,
        home,
    )
    assert twice.returncode == 2 and "already decided" in twice.stderr
    assert _cli(["catch-up"], root, home).returncode == 0
    events = dg.DagsterInstance.from_config(str(home)).fetch_materializations(
        dg.AssetKey(["dms", "generic", "guard_decisions"]), limit=5
    )
    assert [r.asset_materialization.metadata["decided_by"].value for r in events.records] == ["dana"]


@pytest.mark.e2e
def test_sample_replay_through_the_resolved_trip_exits_0(tmp_path: Path):
    """`replay --from 2026-11-18T00:00:00Z` on the samples reproduces the tables and succeeds."""
    from dealer_assets.dms.fake.dealer_feeds import SAMPLES

    sample_settings = yaml.safe_load((SAMPLES.parent / "config" / "dealer_feeds.yaml").read_text())
    root = make_root(tmp_path / "root", settings=yaml.safe_dump({"sources": sample_settings["sources"]}))
    for sample in sorted(SAMPLES.iterdir()):
        if sample.name.startswith("generic-"):
            root.drop(sample.name, sample.read_bytes())
    home = tmp_path / "home"
    assert _cli(["catch-up"], root, home).returncode in (0, 3)
    before = snapshot(root.paths.warehouse_url)
    assert any(r[5] for r in before["close_guard"]), "the samples trip the guard once"
    out = _cli(["replay", "--source", "generic", "--from", "2026-11-18T00:00:00Z"], root, home)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert snapshot(root.paths.warehouse_url) == before
