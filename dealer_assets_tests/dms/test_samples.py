"""`make samples`: the sample feeds are staged as if delivered over the days before the day it runs, so the
first screen of `make dev` is mostly filled on any day, and every command sees the same start of history."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from dealer_assets.core.env import SAMPLES_MARKER, load_development_env
from dealer_assets.dms.domain.feed_names import parse_feed_name
from dealer_assets.dms.fake.dealer_feeds import LATE_RENUMBERED, SAMPLES, stage, stage_late
from dealer_assets_tests.support import DataRoot


def _as_ofs(names: list[str]) -> list[datetime]:
    return sorted(n.as_of for n in map(parse_feed_name, names) if n is not None)


def test_samples_end_the_day_before_staging_and_record_the_start_of_history(data_root: DataRoot) -> None:
    staged = stage(data_root.paths, date(2027, 3, 10))
    assert len(staged) == len(list(SAMPLES.glob("*")))
    as_ofs = _as_ofs(staged)
    assert as_ofs[-1].date() == date(2027, 3, 9)
    originals = _as_ofs([p.name for p in SAMPLES.glob("*")])
    assert [b - a for a, b in pairwise(originals)] == [b - a for a, b in pairwise(as_ofs)]
    marker = json.loads((data_root.paths.data_dir / SAMPLES_MARKER).read_text())
    assert marker["history_start"] == datetime.combine(as_ofs[0].date(), datetime.min.time(), UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_a_later_staging_keeps_the_first_shift_and_stages_nothing_twice(data_root: DataRoot) -> None:
    first = stage(data_root.paths, date(2027, 3, 10))
    for name in first:
        (data_root.incoming / name).unlink()
    data_root.paths.archive.mkdir(parents=True, exist_ok=True)
    again = stage(data_root.paths, date(2027, 4, 1))
    assert sorted(again) == sorted(first), "the same names: the shift chosen first is kept"


def test_the_development_environment_fills_only_what_is_missing(data_root: DataRoot) -> None:
    stage(data_root.paths, date(2027, 3, 10))
    environ = {"DEALER_DATA_DIR": str(data_root.paths.data_dir), "XTIME_CLIENT_ID": "from-the-environment"}
    load_development_env(environ)
    assert environ["XTIME_CLIENT_ID"] == "from-the-environment"
    assert environ["PROTRACTOR_NORTH_API_KEY"] == "dev-only-north-fake-key"
    assert environ["DEALER_HISTORY_START"].startswith("2027-03-0")
    production = {"DEALER_SETTINGS_FILE": "/etc/dealer/settings.yaml"}
    load_development_env(production)
    assert production == {"DEALER_SETTINGS_FILE": "/etc/dealer/settings.yaml"}


def test_the_late_sample_renumbers_one_vehicle_four_hours_after_the_last_and_arrives_once(
    data_root: DataRoot,
) -> None:
    staged = stage(data_root.paths, date(2027, 3, 10))
    late = stage_late(data_root.paths, date(2027, 3, 10))
    newest = max(n for n in staged if n.startswith("generic-"))
    assert parse_feed_name(late).as_of == parse_feed_name(newest).as_of + timedelta(hours=4)
    before = (data_root.incoming / newest).read_text().splitlines()
    after = (data_root.incoming / late).read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1 and f",{LATE_RENUMBERED}," in changed[0][0]
    assert f",{LATE_RENUMBERED}-R," in changed[0][1]
    assert stage_late(data_root.paths, date(2027, 3, 11)) is None, "delivered once"
