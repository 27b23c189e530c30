"""History at the speed of the work: daily partitions whose Dagster events follow the days a range spans,
runs that cover the days between feeds, replays that count only their own partitions, incremental runs that
parse only their new feeds, and progress reported while a long run works."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from dealer_assets.core import progress as progress_module
from dealer_assets.core.progress import Progress
from dealer_assets.core.tags import MODE_TAG, PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from dealer_assets.definitions import build_definitions
from dealer_assets.dms import cli as dms_cli
from dealer_assets.dms.asset_specs import keys_for
from dealer_assets.dms.defs import sensors
from dealer_assets.dms.figures import NO_FEED
from dealer_assets_tests.support import DataRoot, at, range_tags, vin

RAW, NORMALIZED, SRS = keys_for("generic")


def _instance(tmp_path: Path) -> dg.DagsterInstance:
    (tmp_path / "home").mkdir(exist_ok=True)
    return dg.DagsterInstance.local_temp(str(tmp_path / "home"))


def _day(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> dict:
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    assert records, f"no observation of {key.to_user_string()} on {partition}"
    return {k: v.value for k, v in records[0].asset_observation.metadata.items()}


def test_progress_says_where_a_step_is_every_30_seconds():
    now = [100.0]
    lines: list[str] = []
    tracker = Progress("generic/service_requests", lines.append, clock=lambda: now[0])
    tracker.begin(720)
    for hour in range(240):
        now[0] += 0.25
        tracker.advance(datetime(2026, 10, 1 + hour // 24, hour % 24, tzinfo=UTC))
    assert len(lines) == 2, "one line per 30 s of work, none before"
    assert lines[-1] == (
        "generic/service_requests: feed 240 of 720, as-of 2026-10-10T23:00:00Z reached, 4.0 feeds/s, "
        "about 120 s to go"
    )
    quiet: list[str] = []
    short = Progress("x", quiet.append, clock=lambda: now[0])
    short.begin(3)
    for _ in range(3):
        short.advance(datetime(2026, 10, 1, tzinfo=UTC))
    assert quiet == [], "a short run says nothing"


@pytest.mark.slow
def test_a_long_replay_reports_progress_in_the_run_and_on_the_terminal(
    data_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
):
    for day in range(3):
        data_root.drop_feed("generic", at(day), [("D1", vin(1), f"S{day}", "U")])
    instance = _instance(tmp_path)
    assert dms_cli.catch_up(data_root.dealer_env(), instance)
    monkeypatch.setattr(progress_module, "PROGRESS_EVERY_SECONDS", 0.0)
    capfd.readouterr()
    assert dms_cli.replay(data_root.dealer_env(), instance, None, None)
    printed = capfd.readouterr()
    [replay] = [r for r in instance.get_runs() if r.tags.get("dealer_assets/mode") == "replay"]
    messages = [e.user_message for e in instance.all_logs(replay.run_id) if "feeds/s" in e.user_message]
    for step in ("raw_dms_feeds", "normalized_vehicles", "service_requests"):
        mine = [m for m in messages if m.startswith(f"dms/generic/{step} (")]
        assert [m.split(": ", 1)[1].split(",")[0] for m in mine] == [
            "feed 1 of 3",
            "feed 2 of 3",
            "feed 3 of 3",
        ]
    assert "as-of 2026-11-03T12:00:00Z reached" in printed.out + printed.err


@pytest.mark.slow
def test_a_range_run_writes_a_constant_number_of_events_per_day(data_root: DataRoot, tmp_path: Path):
    """Three planned events, three materializations and three observations a day (one each for the three
    steps), plus one materialization per written table and the checks, however many hours or feeds."""
    data_root.drop_feed("generic", at(0), [("D1", vin(1), "S", "U")])
    data_root.drop_feed("generic", at(29, 23), [("D1", vin(1), "S", "U")])
    instance = _instance(tmp_path)
    defs = build_definitions(data_root.dealer_env())
    result = defs.resolve_job_def("dms_generic_feeds_job").execute_in_process(
        instance=instance, tags=range_tags("2026-11-01", "2026-11-30")
    )
    assert result.success
    kinds = Counter(
        e.dagster_event.event_type_value for e in instance.all_logs(result.run_id) if e.dagster_event
    )
    assert kinds["ASSET_MATERIALIZATION_PLANNED"] == 3 * 30
    assert kinds["ASSET_MATERIALIZATION"] == 3 * 30 + 9, "three steps a day, nine tables once"
    assert kinds["ASSET_OBSERVATION"] == 3 * 30
    assert sum(kinds.values()) < 9 * 30 + 80
    tables = {k.path[-1] for k in instance.get_asset_keys() if k.path[:2] == ["dms", "generic"]} - {
        "raw_dms_feeds",
        "normalized_vehicles",
        "service_requests",
    }
    assert len(tables) == 9
    for table in tables:
        [mat] = instance.fetch_materializations(dg.AssetKey(["dms", "generic", table]), limit=5).records
        assert mat.run_id == result.run_id and mat.asset_materialization.partition is None
        assert "run/rows_written" in mat.asset_materialization.metadata


@pytest.mark.slow
def test_an_hourly_run_parses_only_its_new_feed_and_its_day_shows_every_feed(
    data_root: DataRoot, tmp_path: Path
):
    instance = _instance(tmp_path)
    env = data_root.dealer_env()
    data_root.drop_feed("generic", at(0, 8), [("D1", vin(1), "S", "U"), ("D1", vin(2), "S", "U")])
    assert dms_cli.catch_up(env, instance)
    data_root.drop_feed("generic", at(0, 9), [("D1", vin(1), "T", "U"), ("D1", vin(3), "S", "U")])
    assert dms_cli.catch_up(env, instance)
    latest = instance.get_latest_materialization_event(RAW).asset_materialization
    assert latest.partition == "2026-11-01"
    assert latest.metadata["run/feeds"].value == 1, "the day's earlier feed is not parsed again"
    assert (
        instance.get_latest_materialization_event(NORMALIZED)
        .asset_materialization.metadata["run/feeds"]
        .value
        == 1
    )
    day = _day(instance, SRS, "2026-11-01")
    assert day["feeds"] == 2 and day["created"] == 3 and day["updated"] == 1
    assert [r.data["feed_file"] for r in day["per_feed"].records] == [
        "generic-20261101T080000Z.csv",
        "generic-20261101T090000Z.csv",
    ]
    assert _day(instance, RAW, "2026-11-01")["dagster/row_count"] == 4


@pytest.mark.slow
def test_days_between_two_feeds_are_shown_as_days_without_a_feed(data_root: DataRoot, tmp_path: Path):
    instance = _instance(tmp_path)
    env = data_root.dealer_env()
    data_root.drop_feed("generic", at(0, 22), [("D1", vin(1), "S", "U")])
    assert dms_cli.catch_up(env, instance)
    data_root.drop_feed("generic", at(3, 1), [("D1", vin(1), "S", "U")])
    assert dms_cli.catch_up(env, instance)
    days = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    for key in (RAW, NORMALIZED, SRS):
        assert set(days) <= instance.get_materialized_partitions(key)
        assert _day(instance, key, "2026-11-02") == {"feeds": 0, "note": NO_FEED}
        assert _day(instance, key, "2026-11-03") == {"feeds": 0, "note": NO_FEED}
    last = instance.get_runs(limit=1)[0]
    assert (last.tags[PARTITION_RANGE_START_TAG], last.tags[PARTITION_RANGE_END_TAG]) == (days[1], days[3])


@pytest.mark.slow
def test_a_replay_of_one_day_counts_only_that_day_and_notes_the_later_days(
    data_root: DataRoot, tmp_path: Path
):
    for day in range(4):
        data_root.drop_feed(
            "generic", at(day), [("D1", vin(1), f"S{day}", "U"), ("D1", vin(day + 2), "S", "U")]
        )
    instance = _instance(tmp_path)
    job = build_definitions(data_root.dealer_env()).resolve_job_def("dms_generic_feeds_job")
    assert job.execute_in_process(instance=instance, tags=range_tags("2026-11-01", "2026-11-04")).success
    replay = job.execute_in_process(instance=instance, tags=range_tags("2026-11-02", "2026-11-02", "replay"))
    assert replay.success
    own = {
        (m.asset_key, m.partition)
        for m in replay.get_asset_materialization_events()
        for m in [m.event_specific_data.materialization]
        if m.partition is not None
    }
    assert own == {(key, "2026-11-02") for key in (RAW, NORMALIZED, SRS)}, "a backfill's progress stays true"
    for later in ("2026-11-03", "2026-11-04"):
        noted = _day(instance, SRS, later)
        assert noted["reapplied_by_run"] == replay.run_id and noted["feeds"] == 1


@pytest.mark.slow
def test_the_sensor_covers_the_days_since_the_last_feed_and_waits_for_a_day_not_begun(
    data_root: DataRoot, tmp_path: Path
):
    instance = _instance(tmp_path)
    defs = build_definitions(data_root.dealer_env())
    sensor = defs.resolve_sensor_def("dms_drop_zone_sensor")

    def tick(cursor):
        return sensor.evaluate_tick(
            dg.build_sensor_context(
                instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
            )
        )

    data_root.drop_feed("generic", at(0), [("D1", vin(1), "S", "U")])
    assert dms_cli.catch_up(data_root.dealer_env(), instance)
    data_root.drop_feed("generic", at(4), [("D1", vin(1), "S", "U")])
    [request] = tick(None).run_requests
    assert (request.tags[PARTITION_RANGE_START_TAG], request.tags[PARTITION_RANGE_END_TAG]) == (
        "2026-11-02",
        "2026-11-05",
    )
    assert request.tags[MODE_TAG] == "incremental"


@pytest.mark.slow
def test_a_feed_stamped_into_tomorrow_waits_until_its_day_begins(
    data_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Up to an hour ahead of the clock is a valid as-of (CONTRACT section 2); near midnight UTC that is a day
    whose partition does not exist yet: the file waits, out of the cursor, and is asked for once it begins."""
    clock = [datetime(2026, 11, 3, 23, 30, tzinfo=UTC)]

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return clock[0]

    monkeypatch.setattr(sensors, "datetime", Clock)
    instance = _instance(tmp_path)
    defs = build_definitions(data_root.dealer_env())
    sensor = defs.resolve_sensor_def("dms_drop_zone_sensor")

    def tick(cursor):
        return sensor.evaluate_tick(
            dg.build_sensor_context(
                instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
            )
        )

    data_root.drop_feed("generic", datetime(2026, 11, 4, 0, 10, tzinfo=UTC), [("D1", vin(1), "S", "U")])
    waiting = tick(None)
    assert waiting.run_requests == [] and json.loads(waiting.cursor)["pending"] == {}
    clock[0] = datetime(2026, 11, 4, 0, 15, tzinfo=UTC)
    [request] = tick(waiting.cursor).run_requests
    assert request.tags[PARTITION_RANGE_START_TAG] == "2026-11-04"
