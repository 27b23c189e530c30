"""Feed file names (CONTRACT section 2) and how the files in the drop zone are planned into runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dealer_assets.dms.domain.deliveries import SourceRun, plan_deliveries
from dealer_assets.dms.domain.feed_names import (
    FeedName,
    Misdelivery,
    classify,
    parse_feed_name,
    partition_key_of,
    partition_start,
)

START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 14, 30, tzinfo=UTC)
SOURCES = {"generic", "dms_two"}


def test_parse_feed_name() -> None:
    feed = parse_feed_name("generic-20261101T140000Z.csv")
    assert feed == FeedName(
        as_of=datetime(2026, 11, 1, 14, 0, 0, tzinfo=UTC),
        source="generic",
        file_name="generic-20261101T140000Z.csv",
    )
    assert feed.as_of.tzinfo is not None and feed.as_of.utcoffset() == timedelta(0)
    assert feed.stamp == "20261101T140000Z"
    assert feed.partition_key == "2026-11-01"

    other = parse_feed_name("dms_2-20280229T235959Z.TXT")
    assert other is not None
    assert (other.source, other.as_of) == ("dms_2", datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC))


@pytest.mark.parametrize(
    "name",
    [
        "generic-20261101T140000Z",  # no extension
        "generic-20261101T140000.csv",  # no Z
        "generic_20261101T140000Z.csv",  # underscore instead of dash: source would be "generic_..." w/o stamp
        "Generic-20261101T140000Z.csv",  # upper case source
        "my-dms-20261101T140000Z.csv",  # dash in source
        "generic-2026-11-01T140000Z.csv",  # dashes in date
        "generic-20261301T140000Z.csv",  # month 13
        "generic-20261131T140000Z.csv",  # 31 November
        "generic-20261101T250000Z.csv",  # hour 25
        "generic-20270229T120000Z.csv",  # not a leap year
        "-20261101T140000Z.csv",  # empty source
        "generic-20261101T140000Z.csv.tmp.x-y",
        " generic-20261101T140000Z.csv",
        "generic-20261101T140000Z.",
    ],
)
def test_parse_feed_name_rejects(name: str) -> None:
    assert parse_feed_name(name) is None


def test_feeds_order_by_as_of() -> None:
    a = parse_feed_name("zeta-20261101T100000Z.csv")
    b = parse_feed_name("alpha-20261101T110000Z.csv")
    assert sorted([b, a]) == [a, b]


def test_classify_accepts_a_good_name() -> None:
    verdict = classify("generic-20261101T140000Z.csv", SOURCES, START, NOW)
    assert isinstance(verdict, FeedName)
    assert verdict.source == "generic"


def test_classify_bad_file_name() -> None:
    verdict = classify("inventory.csv", SOURCES, START, NOW)
    assert isinstance(verdict, Misdelivery)
    assert verdict.reason == "bad_file_name" and verdict.file_name == "inventory.csv"


def test_classify_unknown_source() -> None:
    verdict = classify("other-20261101T140000Z.csv", SOURCES, START, NOW)
    assert isinstance(verdict, Misdelivery)
    assert verdict.reason == "unknown_source"
    assert "other" in verdict.detail


def test_classify_before_history_start() -> None:
    verdict = classify("generic-20241231T235959Z.csv", SOURCES, START, NOW)
    assert isinstance(verdict, Misdelivery) and verdict.reason == "as_of_out_of_range"
    # Exactly the start of history is in range.
    assert isinstance(classify("generic-20250101T000000Z.csv", SOURCES, START, NOW), FeedName)


def test_classify_more_than_one_hour_ahead() -> None:
    received = datetime(2026, 11, 1, 14, 0, 0, tzinfo=UTC)
    exactly = classify("generic-20261101T150000Z.csv", SOURCES, START, received)
    assert isinstance(exactly, FeedName), "exactly one hour ahead is accepted"
    ahead = classify("generic-20261101T150001Z.csv", SOURCES, START, received)
    assert isinstance(ahead, Misdelivery) and ahead.reason == "as_of_out_of_range"
    far = classify("generic-20261102T140000Z.csv", SOURCES, START, received)
    assert isinstance(far, Misdelivery) and far.reason == "as_of_out_of_range"
    # Old feeds arriving late are fine (they are late, not out of range).
    assert isinstance(classify("generic-20251101T140000Z.csv", SOURCES, START, received), FeedName)


def test_classify_checks_name_before_source() -> None:
    # An unconfigured source with a bad stamp is a bad name, not an unknown source.
    verdict = classify("other-20261301T140000Z.csv", SOURCES, START, NOW)
    assert isinstance(verdict, Misdelivery) and verdict.reason == "bad_file_name"


@pytest.mark.parametrize(
    ("when", "key"),
    [
        (datetime(2026, 11, 1, 0, 0, tzinfo=UTC), "2026-11-01"),
        (datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=UTC), "2026-11-01"),
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "2026-12-31"),
        # Another offset is converted to UTC first: 01:30 at +02:00 is the evening before in UTC.
        (datetime(2026, 11, 2, 1, 30, tzinfo=timezone(timedelta(hours=2))), "2026-11-01"),
    ],
)
def test_partition_key_of_is_the_utc_day(when: datetime, key: str) -> None:
    assert partition_key_of(when) == key
    assert partition_start(key) == when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def test_a_feed_stamped_into_a_day_that_has_not_begun_waits_for_it() -> None:
    received = datetime(2026, 11, 3, 23, 30, tzinfo=UTC)
    plan = plan_deliveries(
        ["generic-20261104T000500Z.csv", "generic-20261103T230000Z.csv"], SOURCES, START, received
    )
    assert plan.not_yet == ["generic-20261104T000500Z.csv"]
    assert plan.runs["generic"].files == ["generic-20261103T230000Z.csv"]
    assert plan.misdelivered == []
    later = plan_deliveries(["generic-20261104T000500Z.csv"], SOURCES, START, received + timedelta(hours=1))
    assert later.not_yet == [] and later.runs["generic"].first_partition == "2026-11-04"


def test_a_run_covers_the_days_since_the_last_applied_feed() -> None:
    run = SourceRun("generic", "2026-11-05", "2026-11-05", ["generic-20261105T010000Z.csv"])
    # Applied through the 2nd: the 3rd and 4th had no feed and are covered as such.
    widened = run.since(datetime(2026, 11, 2, 22, tzinfo=UTC))
    assert (widened.first_partition, widened.last_partition) == ("2026-11-03", "2026-11-05")
    assert widened.files == run.files
    # Applied through earlier the same day, or nothing applied yet: the run's own days.
    assert run.since(datetime(2026, 11, 5, 0, tzinfo=UTC)).first_partition == "2026-11-05"
    assert run.since(None) is run
    # A late feed (before the last applied) keeps its own day as the start.
    late = SourceRun("generic", "2026-11-01", "2026-11-01", ["generic-20261101T010000Z.csv"])
    assert late.since(datetime(2026, 11, 2, 22, tzinfo=UTC)).first_partition == "2026-11-01"


def test_plan_deliveries_one_run_per_source() -> None:
    received = datetime(2026, 11, 3, 12, tzinfo=UTC)
    files = [
        "generic-20261102T090000Z.csv",
        "generic-20261101T140000Z.csv",
        "generic-20261101T143000Z.csv",
        "generic-20261103T120000Z.csv",
        "dms_two-20261102T000000Z.txt",
        "notes.txt",
        "other-20261101T140000Z.csv",
        "generic-20241201T000000Z.csv",
        "generic-20261103T131500Z.csv",
    ]
    plan = plan_deliveries(files, SOURCES, START, received)
    assert set(plan.runs) == {"generic", "dms_two"}
    g = plan.runs["generic"]
    assert (g.first_partition, g.last_partition) == ("2026-11-01", "2026-11-03")
    assert sorted(g.files) == sorted(
        [
            "generic-20261101T140000Z.csv",
            "generic-20261101T143000Z.csv",
            "generic-20261102T090000Z.csv",
            "generic-20261103T120000Z.csv",
        ]
    )
    d = plan.runs["dms_two"]
    assert (d.first_partition, d.last_partition, d.files) == (
        "2026-11-02",
        "2026-11-02",
        ["dms_two-20261102T000000Z.txt"],
    )
    assert sorted((m.file_name, m.reason) for m in plan.misdelivered) == [
        ("generic-20241201T000000Z.csv", "as_of_out_of_range"),
        ("generic-20261103T131500Z.csv", "as_of_out_of_range"),
        ("notes.txt", "bad_file_name"),
        ("other-20261101T140000Z.csv", "unknown_source"),
    ]


def test_plan_deliveries_run_key_depends_on_files_and_checksums() -> None:
    received = datetime(2026, 11, 3, 12, tzinfo=UTC)
    files = ["generic-20261101T140000Z.csv", "generic-20261102T140000Z.csv"]
    run = plan_deliveries(files, SOURCES, START, received).runs["generic"]
    same = plan_deliveries(list(reversed(files)), SOURCES, START, received).runs["generic"]
    sums = {f: "a" * 64 for f in files}
    assert run.run_key(sums) == same.run_key(sums)
    assert run.run_key(sums).startswith("generic:2026-11-01:2026-11-02:")
    assert run.run_key(sums) != run.run_key({**sums, files[0]: "b" * 64})


def test_plan_deliveries_empty() -> None:
    plan = plan_deliveries([], SOURCES, START, NOW)
    assert plan.runs == {} and plan.misdelivered == []
