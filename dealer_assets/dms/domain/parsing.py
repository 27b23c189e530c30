"""Raw feed bytes -> a frame of the file's own columns, every data row with its line number.

A record's field count follows from its length less the lengths of the fields polars read from it, so a row
with too many or too few fields is rejected with its line number while polars parses the rest. In a file
read without quoting every newline ends a record: the file's totals of lines and delimiters usually prove
every line whole at once; if they do not, polars also reads each line whole as one text column, which gives
the lengths, and only lines whose count does not fit the header are counted again, delimiter by delimiter.
Otherwise record boundaries come from one vectorized pass over the bytes (a newline counts only
outside quotes; `""` inside a quoted field keeps the parity) and only records with quotes or a wrong count
are counted byte by byte.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from dealer_assets.dms.domain.feed_text import Body, mapped, to_utf8
from dealer_assets.dms.domain.field_counts import (
    FeedUnreadable,
    count_of,
    counts_from_lengths,
    exact_counts,
    line_lengths,
    offsets_of,
    record_ends,
)
from dealer_assets.dms.settings import Layout

LINE_NUMBER = "_line_number"


@dataclass(frozen=True)
class ParsedFeed:
    rows: pl.DataFrame
    """One String column per header (file order, extras kept), plus `_line_number` (UInt32)."""
    malformed: pl.DataFrame
    """line_number, raw_vin, fields, expected_fields: rows whose field count differs from the header."""
    header: tuple[str, ...]


MALFORMED_SCHEMA = {
    "line_number": pl.UInt32,
    "raw_vin": pl.String,
    "fields": pl.UInt32,
    "expected_fields": pl.UInt32,
}


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        name = name.strip() or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


def _quoting(body: Body, buf: np.ndarray, delimiter: int, quote: int) -> tuple[int | None, np.ndarray]:
    """(the quote character, the offsets of its quotes) if some field begins with it, else (None, none): a
    file whose fields never open a quote is read without quoting, so an inch mark inside a field stays text."""
    if body.data.find(bytes((quote,))) < 0:
        return None, np.zeros(0, dtype=np.int64)
    quotes = offsets_of(buf, quote)
    before = buf[np.maximum(quotes - 1, 0)]
    opens = (quotes == 0) | (before == delimiter) | (before == 10) | (before == 13)
    return (quote, quotes) if opens.any() else (None, quotes[:0])


def _header(text: bytes, layout: Layout, quote: int | None) -> tuple[str, ...]:
    line = text.decode("utf-8").rstrip("\r\n")
    dialect = {"quotechar": layout.quote} if quote is not None else {"quoting": csv.QUOTE_NONE}
    try:
        names = next(
            csv.reader(io.StringIO(line, newline=""), delimiter=layout.delimiter, strict=True, **dialect), []
        )
    except csv.Error as exc:
        raise FeedUnreadable("unparseable", f"the header cannot be read: {exc}") from exc
    header = tuple(_unique_names(names))
    missing = [h for h in layout.required_headers if h not in header]
    if missing:
        raise FeedUnreadable(
            "missing_required_column",
            f"header lacks {', '.join(repr(m) for m in missing)}; found {list(header)}",
        )
    return header


def _read_fields(body: Body, skip_lines: int, width: int, layout: Layout, quote: int | None) -> pl.DataFrame:
    """Every record after the header as text columns f0..f{width-1}; short rows padded, long ones cut."""
    try:
        return pl.read_csv(
            body.source,
            has_header=False,
            skip_lines=skip_lines,
            separator=layout.delimiter,
            quote_char=layout.quote if quote is not None else None,
            schema={f"f{i}": pl.String for i in range(width)},
            truncate_ragged_lines=True,
            missing_columns="insert",
            extra_columns="ignore",
            raise_if_empty=False,
            encoding="utf8",
            glob=False,
        )
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FeedUnreadable("unparseable", f"the CSV reader failed: {first}") from exc


@dataclass(frozen=True)
class _Records:
    """The data records polars read (`frame`: columns f0..f{width-1}) with what each is in the file."""

    frame: pl.DataFrame
    fields: np.ndarray
    line_numbers: np.ndarray
    blank: np.ndarray


LINE_SEPARATORS = ("\x1f", "\x1e", "\x1d", "\x1c")
"""Bytes a feed almost never holds; one absent from the file lets polars read each of its lines whole."""


def _all_whole(frame: pl.DataFrame, fields: int, lines: int, delimiters: int) -> bool:
    """Whether every one of `lines` lines has exactly `fields` fields, proven from the whole file at once.

    It does when the frame holds one row per line, the last header column is never empty (so no line is
    short) and the lines hold `fields - 1` delimiters each on average (so, none being short, none is long).
    """
    return (
        frame.height == lines
        and frame.get_column(f"f{fields - 1}").null_count() == 0
        and delimiters == lines * (fields - 1)
    )


def _unquoted_records(
    body: Body, buf: np.ndarray, header: tuple[str, ...], layout: Layout
) -> _Records | None:
    """The records of a file read without quoting, where line N is record N; None when no separator byte is
    free or the two reads disagree on the number of lines (the caller then takes the general path).

    Usually the file's totals prove every line whole (`_all_whole`). Otherwise polars also reads each line
    whole: a line's length less its fields' lengths is its delimiter count whenever it has at most one field
    more than the header, and more otherwise, so those lines are counted again. Every such count is exact or
    too high, which the file's total of delimiters confirms; if it does not, every line is counted.
    """
    frame = _read_fields(body, 1, len(header) + 1, layout, None)
    header_end = body.data.find(b"\n")
    data_delimiters = count_of(buf, ord(layout.delimiter)) - body.data[:header_end].count(
        layout.delimiter.encode()
    )
    data_lines = count_of(buf, 10) - 1 + (body.data[-1:] != b"\n")
    if _all_whole(frame, len(header), data_lines, data_delimiters):
        return _Records(
            frame,
            np.full(data_lines, len(header), dtype=np.uint32),
            np.arange(2, data_lines + 2, dtype=np.uint32),
            np.zeros(data_lines, dtype=bool),
        )
    separator = next(
        (s for s in LINE_SEPARATORS if s != layout.delimiter and body.data.find(s.encode()) < 0), None
    )
    if separator is None:
        return None
    lines = (
        pl.read_csv(
            body.source,
            has_header=False,
            separator=separator,
            quote_char=None,
            schema={"line": pl.String},
            truncate_ragged_lines=True,
            raise_if_empty=False,
            encoding="utf8",
            glob=False,
        )
        .get_column("line")
        .slice(1)
    )
    if frame.height != lines.len():
        return None
    counts = (lines.str.len_bytes().fill_null(0).cast(pl.Int64) - line_lengths(frame)).to_numpy().copy()
    odd = np.flatnonzero(counts != len(header) - 1)
    if len(odd):
        counts[odd] = (
            lines.gather(odd).str.count_matches(layout.delimiter, literal=True).fill_null(0).to_numpy()
        )
    if int(counts.sum()) != data_delimiters:
        counts = lines.str.count_matches(layout.delimiter, literal=True).fill_null(0).to_numpy()
    return _Records(
        frame,
        (counts + 1).astype(np.uint32),
        np.arange(2, len(counts) + 2, dtype=np.uint32),
        lines.is_null().to_numpy(),
    )


def _delimited_records(
    body: Body, buf: np.ndarray, quotes: np.ndarray, quote: int | None, layout: Layout
) -> tuple[tuple[str, ...], _Records | None]:
    """(the header, the records or None when there are none) of any file, from the offsets of its record ends."""
    newlines = offsets_of(buf, 10)
    ends, inner_newlines = record_ends(buf, newlines, quotes)
    starts = np.concatenate(([0], ends[:-1] + 1))
    header = _header(body.data[starts[0] : ends[0]], layout, quote)
    if len(starts) == 1:
        return header, None
    delimiter = ord(layout.delimiter)
    frame = _read_fields(body, int(np.searchsorted(newlines, starts[1])), len(header) + 1, layout, quote)
    quoted = np.zeros(len(ends), dtype=bool)
    quoted[np.searchsorted(ends, quotes)] = True
    starts, ends, quoted = starts[1:], ends[1:], quoted[1:]
    lengths = ends - starts
    blank = (lengths == 0) | ((lengths == 1) & (buf[np.minimum(starts, len(buf) - 1)] == 13))
    line_numbers = (np.arange(2, len(starts) + 2) + np.searchsorted(inner_newlines, starts)).astype(np.uint32)

    if frame.height != len(starts) and frame.height != int((~blank).sum()):
        raise FeedUnreadable(
            "unparseable", f"found {len(starts)} records but the CSV reader saw {frame.height}"
        )
    if frame.height != len(starts):
        keep = ~blank
        starts, ends, quoted, line_numbers, blank = (
            starts[keep],
            ends[keep],
            quoted[keep],
            line_numbers[keep],
            blank[keep],
        )
    counts = counts_from_lengths(buf, frame, starts, ends, quoted, delimiter, quote, len(header))
    if counts is None:
        counts = exact_counts(buf, starts, ends, delimiter, quotes)
    return header, _Records(frame, (counts + 1).astype(np.uint32), line_numbers, blank)


def parse_feed(feed: bytes | Path, layout: Layout) -> ParsedFeed:
    """Parse one feed file, from its bytes or its path. Raises FeedUnreadable for what must be quarantined.

    From its path, a file that is ASCII is mapped into memory and polars reads the file itself: nothing copies
    a file that is already its own UTF-8.
    """
    body = mapped(feed, layout.encoding) if isinstance(feed, Path) else None
    if body is None:
        text = to_utf8(feed.read_bytes() if isinstance(feed, Path) else feed, layout.encoding)
        if not text or text.isspace():
            return _no_rows(tuple(layout.headers.values()))
        body = Body(text, text)
    buf = np.frombuffer(body.data, dtype=np.uint8)
    quote, quotes = _quoting(body, buf, ord(layout.delimiter), ord(layout.quote))
    if quote is None:
        first_end = body.data.find(b"\n")
        header = _header(body.data[: first_end if first_end >= 0 else len(buf)], layout, quote)
        if first_end in (-1, len(buf) - 1):
            return _no_rows(header)
        records = _unquoted_records(body, buf, header, layout)
        if records is not None:
            return _assemble(records, header, layout)
    header, records = _delimited_records(body, buf, quotes, quote, layout)
    return _no_rows(header) if records is None else _assemble(records, header, layout)


def _assemble(records: _Records, header: tuple[str, ...], layout: Layout) -> ParsedFeed:
    frame, fields, line_numbers, blank = records.frame, records.fields, records.line_numbers, records.blank
    whole = (fields == len(header)) & ~blank
    broken = (fields != len(header)) & ~blank
    vin_header = layout.headers.get("vin")
    vin_col = f"f{header.index(vin_header)}" if vin_header in header else None
    malformed = pl.DataFrame(
        {
            "line_number": line_numbers[broken],
            "raw_vin": frame.get_column(vin_col).filter(pl.Series(broken))
            if vin_col
            else pl.Series([None] * int(broken.sum()), dtype=pl.String),
            "fields": fields[broken],
            "expected_fields": np.full(int(broken.sum()), len(header), dtype=np.uint32),
        },
        schema=MALFORMED_SCHEMA,
    )
    rows = frame.select(*(pl.col(f"f{i}").alias(name) for i, name in enumerate(header))).with_columns(
        pl.Series(LINE_NUMBER, line_numbers, dtype=pl.UInt32)
    )
    if not whole.all():
        rows = rows.filter(pl.Series(whole))
    return ParsedFeed(rows, malformed, header)


def _no_rows(header: tuple[str, ...]) -> ParsedFeed:
    rows = pl.DataFrame(schema={**dict.fromkeys(header, pl.String), LINE_NUMBER: pl.UInt32})
    return ParsedFeed(rows, pl.DataFrame(schema=MALFORMED_SCHEMA), header)
