"""Whatever bytes arrive, parsing either quarantines the file (FeedUnreadable) or accounts for every record."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealer_assets.dms.domain.parsing import LINE_NUMBER, FeedUnreadable, parse_feed
from dealer_assets.dms.domain.vehicles import FeedRef, normalize_feed
from dealer_assets.dms.settings import GENERIC_LAYOUT, parse_settings

pytestmark = pytest.mark.slow

PIPES = (
    parse_settings(
        """
sources:
  dms:
    layout: {delimiter: '|', quote: "'", columns: {dealer_id: DealerID, vin: VIN, stock_no: StockNo,
             system_code: {constant: U}}}
    track_stock_no_and_client: {mode: never}
    auto_close: {mode: never}
""",
        "<test>",
    )
    .sources["dms"]
    .file_layout
)
LAYOUTS = {
    "generic": (GENERIC_LAYOUT, b"DealerID,VIN,StockNo,SystemCode\n"),
    "pipes": (PIPES, b"DealerID|VIN|StockNo\n"),
}
PIECES = st.sampled_from(
    [
        b",",
        b'"',
        b'""',
        b"'",
        b"\n",
        b"\r\n",
        b"\r",
        b"D1",
        b"1HGCM82633A004352",
        b"1hgcm8263 3a004352",
        b" ",
        b"",
        b"\xc3\xa9",
        b"\xef\xbb\xbf",
        b"2026-01-01",
        b"12,345",
        b"-",
        b"\t",
        b"|",
    ]
)


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(parts=st.lists(PIECES, max_size=40), with_header=st.booleans())
def test_any_bytes_are_quarantined_or_fully_accounted_for(
    layout_name: str, parts: list[bytes], with_header: bool
) -> None:
    layout, header = LAYOUTS[layout_name]
    body = (header if with_header else b"") + b"".join(parts)
    try:
        parsed = parse_feed(body, layout)
    except FeedUnreadable as exc:
        assert exc.reason in {"unparseable", "missing_required_column", "undecodable"} and exc.detail
        return
    lines = (
        parsed.rows.get_column(LINE_NUMBER).to_list() + parsed.malformed.get_column("line_number").to_list()
    )
    assert len(lines) == len(set(lines)), "a record counted twice"
    assert all(2 <= n <= body.count(b"\n") + 1 for n in lines)
    assert parsed.rows.get_column(LINE_NUMBER).is_sorted()
    feed = normalize_feed(parsed.rows, layout, FeedRef("generic", datetime(2026, 1, 1, tzinfo=UTC), "f.csv"))
    assert feed.vehicles.height + feed.rejected.height == parsed.rows.height
    assert feed.vehicles.get_column("vin").is_unique().all()


def _outcome(feed: bytes | Path, layout) -> tuple:
    try:
        parsed = parse_feed(feed, layout)
    except FeedUnreadable as exc:
        return exc.reason, exc.detail
    return parsed.header, parsed.rows.rows(), parsed.malformed.rows()


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(parts=st.lists(PIECES, max_size=40), with_header=st.booleans())
def test_any_bytes_parse_from_their_file_as_from_memory(
    tmp_path_factory: pytest.TempPathFactory, layout_name: str, parts: list[bytes], with_header: bool
) -> None:
    layout, header = LAYOUTS[layout_name]
    body = (header if with_header else b"") + b"".join(parts)
    path = tmp_path_factory.mktemp("feed") / "feed.csv"
    path.write_bytes(body)
    assert _outcome(path, layout) == _outcome(body, layout)
