"""Feed file names (CONTRACT section 2): `<source>-<YYYYMMDD>T<HHMMSS>Z.<ext>`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

FEED_NAME = re.compile(r"(?P<source>[a-z0-9_]+)-(?P<stamp>\d{8}T\d{6}Z)\.(?P<ext>[A-Za-z0-9]+)")
"""Matched with `fullmatch`: `$` would also accept a name ending in a newline."""
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
PARTITION_FORMAT = "%Y-%m-%d"
"""Partitions are UTC days of the feeds' as-of times (the DMS guide says why days, not hours)."""
MAX_AHEAD = timedelta(hours=1)
MAX_NAME_BYTES = 200
"""Room under the usual 255-byte limit for the archive's `.sha256` sidecar and the quarantine's suffixes."""


@dataclass(frozen=True, order=True)
class FeedName:
    as_of: datetime
    source: str
    file_name: str

    @property
    def stamp(self) -> str:
        return self.as_of.strftime(STAMP_FORMAT)

    @property
    def partition_key(self) -> str:
        return partition_key_of(self.as_of)


@dataclass(frozen=True)
class Misdelivery:
    file_name: str
    reason: str
    detail: str


def parse_feed_name(file_name: str) -> FeedName | None:
    match = FEED_NAME.fullmatch(file_name)
    if not match or len(file_name.encode()) > MAX_NAME_BYTES:
        return None
    try:
        as_of = datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return FeedName(as_of=as_of, source=match["source"], file_name=file_name)


def classify(
    file_name: str, sources: set[str] | frozenset[str], history_start: datetime, received_at: datetime
) -> FeedName | Misdelivery:
    """Route a delivered file to its source, or say why no source can take it."""
    feed = parse_feed_name(file_name)
    size = len(file_name.encode())
    if feed is None and size > MAX_NAME_BYTES:
        return Misdelivery(
            file_name,
            "bad_file_name",
            f"the name is {size} bytes long; a feed name has at most {MAX_NAME_BYTES}",
        )
    if feed is None:
        return Misdelivery(
            file_name,
            "bad_file_name",
            "expected <source>-<YYYYMMDD>T<HHMMSS>Z.<ext>, e.g. generic-20261101T140000Z.csv",
        )
    if feed.source not in sources:
        return Misdelivery(
            file_name,
            "unknown_source",
            f"source {feed.source!r} is not configured (known: {', '.join(sorted(sources)) or 'none'})",
        )
    if feed.as_of < history_start:
        return Misdelivery(
            file_name,
            "as_of_out_of_range",
            f"as-of {feed.as_of.isoformat()} is before the start of history {history_start.isoformat()}",
        )
    if feed.as_of > received_at + MAX_AHEAD:
        return Misdelivery(
            file_name,
            "as_of_out_of_range",
            f"as-of {feed.as_of.isoformat()} is more than one hour ahead of its arrival "
            f"{received_at.replace(microsecond=0).isoformat()}",
        )
    return feed


def partition_key_of(as_of: datetime) -> str:
    return as_of.astimezone(UTC).strftime(PARTITION_FORMAT)


def partition_start(key: str) -> datetime:
    return datetime.strptime(key, PARTITION_FORMAT).replace(tzinfo=UTC)


def next_partition_key(key: str) -> str:
    return (partition_start(key) + timedelta(days=1)).strftime(PARTITION_FORMAT)


def day_has_begun(as_of: datetime, now: datetime) -> bool:
    """A feed stamped ahead of the clock into a UTC day that has not begun has no partition yet."""
    return partition_key_of(as_of) <= partition_key_of(now)
