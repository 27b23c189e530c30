"""How many fields each record of a delimited file holds, from its bytes: record ends outside quotes, and the
counts of delimiters, in vectorized passes over the bytes (numpy) rather than a Python loop over lines."""

from __future__ import annotations

import numpy as np
import polars as pl


class FeedUnreadable(Exception):
    """The whole file cannot be taken: it is quarantined with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def offsets_of(buf: np.ndarray, byte: int) -> np.ndarray:
    """The offsets at which `byte` occurs, found by polars on every core through a bitmask (numpy would build
    a mask as large as the file)."""
    return (pl.Series(buf) == byte).arg_true().to_numpy().astype(np.int64)


def count_of(buf: np.ndarray, byte: int) -> int:
    return int((pl.Series(buf) == byte).sum())


def line_lengths(columns: pl.DataFrame) -> pl.Series:
    """The bytes each row holds in its fields (none for a missing field)."""
    return columns.select(pl.sum_horizontal(pl.all().str.len_bytes()).cast(pl.Int64)).to_series()


def record_ends(buf: np.ndarray, newlines: np.ndarray, quotes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the end offset of every record, the newlines inside quoted fields): a record ends at a newline outside
    quotes (`quotes`: their offsets, empty when the file is read without quoting), or at the end of the file
    when it lacks a final newline.

    Quotes alternate between opening and closing (a doubled quote inside a field closes and reopens at once),
    so a byte is inside a quoted field when an odd number of quotes precede it.
    """
    if len(quotes) % 2:
        line = int(np.searchsorted(newlines, quotes[-1])) + 1
        raise FeedUnreadable("unparseable", f"a quoted field opened near line {line} is never closed")
    inside = (
        np.searchsorted(quotes, newlines) % 2 == 1 if len(quotes) else np.zeros(len(newlines), dtype=bool)
    )
    ends = newlines[~inside] if len(quotes) else newlines
    if len(buf) and buf[-1] != 10:
        ends = np.append(ends, len(buf))
    return ends, newlines[inside]


def exact_counts(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, delimiter: int, quotes: np.ndarray
) -> np.ndarray:
    """Delimiters outside quotes in every data record, from the offsets of every delimiter."""
    delims = offsets_of(buf, delimiter)
    counts = np.searchsorted(delims, ends) - np.searchsorted(delims, starts)
    opens, closes = quotes[0::2], quotes[1::2]
    in_data = opens >= starts[0]
    quoted_delims = (np.searchsorted(delims, closes) - np.searchsorted(delims, opens))[in_data]
    record_of = np.searchsorted(ends, opens[in_data])
    return counts - np.bincount(record_of, weights=quoted_delims, minlength=len(ends)).astype(counts.dtype)


def byte_counts(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, delimiter: int, quote: int | None
) -> tuple[np.ndarray, int]:
    """(delimiters outside quotes in each of a few records, delimiters inside quotes in all of them), counted
    byte by byte; every record holds an even number of quotes, so parity restarts with each."""
    lengths = ends - starts
    stops = np.cumsum(lengths)
    chars = buf[np.repeat(starts - stops + lengths, lengths) + np.arange(stops[-1] if len(stops) else 0)]
    hits = chars == delimiter
    outside = hits & (np.cumsum(chars == quote) % 2 == 0) if quote is not None else hits
    seen = np.concatenate(([0], np.cumsum(outside)))
    return seen[stops] - seen[stops - lengths], int(np.count_nonzero(hits)) - int(seen[-1])


def counts_from_lengths(
    buf: np.ndarray,
    frame: pl.DataFrame,
    starts: np.ndarray,
    ends: np.ndarray,
    quoted: np.ndarray,
    delimiter: int,
    quote: int | None,
    fields: int,
) -> np.ndarray | None:
    """Delimiters outside quotes in every data record, or None if the shortcut does not add up.

    The reader keeps every byte of a record without quote characters in its fields except the delimiters
    and one final CR, so the record's length less its fields' lengths is its delimiter count when it fits in
    the frame's columns; only records with quotes or a wrong count are counted byte by byte, if they are few.
    The total must match the delimiters of the file.
    """
    cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    counts = ends - starts - cr - line_lengths(frame).to_numpy()
    odd = np.flatnonzero((counts != fields - 1) | quoted)
    if len(odd) * 8 > len(counts):
        return None
    counts[odd], inside = byte_counts(buf, starts[odd], ends[odd], delimiter, quote)
    total = count_of(buf[starts[0] :], delimiter)
    return counts if int(counts.sum()) + inside == total else None
