"""A step's parquet output is handed to the next step of the same process only while the file is the one written."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from dealer_assets.core import handoff
from dealer_assets.core.files import write_parquet_atomically

FRAME = pl.DataFrame({"vin": ["1HGCM82633A004352", "1FTFW1E5XNFA00001"], "line_number": [2, 3]})


@pytest.fixture(autouse=True)
def nothing_held():
    handoff._held.clear()
    yield
    handoff._held.clear()


def test_the_frame_written_is_handed_over_once_then_read_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "feed.parquet"
    handoff.write_parquet_handed_on(FRAME, path)
    assert handoff.read_parquet_handed_on(path) is FRAME
    again = handoff.read_parquet_handed_on(path)
    assert again is not FRAME and again.equals(FRAME)
    assert not handoff._held


def test_columns_are_selected_from_the_held_frame(tmp_path: Path) -> None:
    path = tmp_path / "feed.parquet"
    handoff.write_parquet_handed_on(FRAME, path)
    assert handoff.read_parquet_handed_on(path, columns=["vin"]).equals(FRAME.select("vin"))


def test_a_file_rewritten_since_is_read_from_disk(tmp_path: Path) -> None:
    """Another process re-running the partition replaces the file: the held frame is stale and not used."""
    path = tmp_path / "feed.parquet"
    handoff.write_parquet_handed_on(FRAME, path)
    newer = FRAME.with_columns(pl.col("line_number") + 10)
    write_parquet_atomically(newer, path)
    assert handoff.read_parquet_handed_on(path).equals(newer)


def test_a_removed_file_is_not_handed_over(tmp_path: Path) -> None:
    path = tmp_path / "feed.parquet"
    handoff.write_parquet_handed_on(FRAME, path)
    path.unlink()
    with pytest.raises(FileNotFoundError):
        handoff.read_parquet_handed_on(path)


def test_only_the_last_frames_are_held(tmp_path: Path) -> None:
    paths = [tmp_path / f"feed{i}.parquet" for i in range(handoff.HELD + 2)]
    for i, path in enumerate(paths):
        handoff.write_parquet_handed_on(FRAME.with_columns(pl.lit(i).alias("feed")), path)
    assert list(handoff._held) == paths[-handoff.HELD :]
    assert handoff.read_parquet_handed_on(paths[0]).get_column("feed").to_list() == [0, 0]
