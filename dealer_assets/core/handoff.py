"""Frames handed from one step of a run to the next in the same process.

A step writes its parquet (what the asset keeps) and leaves the frame here; the next step, when it runs in
the same process (the default in-process executor) and the file is still the one written, takes the frame
instead of reading the file back. Only the last few frames are held, and each is handed over once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import polars as pl

from dealer_assets.core.files import write_parquet_atomically

HELD = 2
"""Frames held at most: a step's last output and the one before, so a run over many feeds holds little."""

_lock = threading.Lock()
_held: OrderedDict[Path, tuple[tuple[int, int, int], pl.DataFrame]] = OrderedDict()


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def write_parquet_handed_on(frame: pl.DataFrame, path: Path) -> None:
    """Write `frame` to `path` atomically and hold it for the next step's `read_parquet_handed_on`."""
    write_parquet_atomically(frame, path)
    identity = _identity(path)
    with _lock:
        _held.pop(path, None)
        if identity is not None:
            _held[path] = (identity, frame)
        while len(_held) > HELD:
            _held.popitem(last=False)


def read_parquet_handed_on(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """The parquet at `path`: the frame this process wrote there while the file is still that one, else read."""
    with _lock:
        held = _held.pop(path, None)
    if held is not None and held[0] == _identity(path):
        return held[1] if columns is None else held[1].select(columns)
    return pl.read_parquet(path, columns=columns)
