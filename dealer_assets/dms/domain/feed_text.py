"""A feed's bytes as UTF-8 text: decoded from the layout's encoding, or the file mapped into memory when it is
plain ASCII, so that the largest feeds are never copied before polars reads them."""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from dealer_assets.dms.domain.field_counts import FeedUnreadable

UTF8_BOM = b"\xef\xbb\xbf"


UTF8_NAMES = {"utf-8", "utf8", "utf_8", "utf-8-sig", "utf_8_sig"}


def to_utf8(data: bytes, encoding: str) -> bytes:
    """The file's bytes as UTF-8 without a BOM, or FeedUnreadable(`undecodable`)."""
    if encoding.lower().replace(" ", "") in UTF8_NAMES:
        body = data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data
        if body.isascii():
            return body
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FeedUnreadable(
                "undecodable",
                f"not valid {encoding} at byte {exc.start + (len(data) - len(body))}: {exc.reason}",
            ) from exc
        return body
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FeedUnreadable(
            "undecodable", f"not valid {encoding} at byte {exc.start}: {exc.reason}"
        ) from exc
    return text.removeprefix("\ufeff").encode("utf-8")


@dataclass(frozen=True)
class Body:
    """A feed's UTF-8 text: its bytes (`data`, in memory or the file mapped into it) and what polars reads
    them from (`source`: the same bytes, or the file's path)."""

    data: bytes | mmap.mmap
    source: bytes | str


def mapped(path: Path, encoding: str) -> Body | None:
    """The file mapped into memory when it is ASCII and not blank, so that it is its own UTF-8; else None
    (its bytes are then read and decoded like any other file's)."""
    if encoding.lower().replace(" ", "") not in UTF8_NAMES:
        return None
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return None
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    codes = pl.Series(np.frombuffer(data, dtype=np.uint8))
    if (codes > 127).any() or not (codes > 32).any():
        return None
    return Body(data, str(path))
