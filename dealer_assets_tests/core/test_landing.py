"""What the drop zone can tell of a delivery's writer: open descriptors from /proc, and a cut last record."""

from __future__ import annotations

import os
from pathlib import Path

from dealer_assets.core.landing import Snapshot, ends_mid_record, writers_in


def test_writers_are_read_from_proc_for_files_open_for_writing_only(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    names = ["written", "read", "read_write", "sub/nested", "closed"]
    for name in names:
        (tmp_path / name).write_bytes(b"x\n")
    with (
        open(tmp_path / "written", "ab"),
        open(tmp_path / "read", "rb"),
        open(tmp_path / "read_write", "r+b"),
        open(tmp_path / "sub" / "nested", "ab"),
    ):
        found = writers_in(tmp_path)
    assert {n: os.getpid() in pids for n, pids in found.items()} == {"written": True, "read_write": True}
    assert writers_in(tmp_path) == {}
    assert writers_in(tmp_path, proc=tmp_path / "no_proc") == {}


def test_a_cut_last_record_is_told_by_its_last_bytes(tmp_path: Path) -> None:
    def cut(body: bytes, endings: tuple[bytes, ...] = (b"\n", b"\r")) -> bool:
        path = tmp_path / "feed.csv"
        path.write_bytes(body)
        return ends_mid_record(path, Snapshot.of(os.lstat(path)), endings)

    assert cut(b"H\nD1,V1")
    assert not cut(b"H\nD1,V1\n") and not cut(b"H\r\nD1,V1\r\n") and not cut(b"H\rD1\r")
    assert not cut(b""), "an empty file is a valid feed"
    assert not cut(b"H\nD1,V1", ()), "a layout whose files need not end a line"
    assert cut("H\nD1".encode("utf-16-le"), (b"\n\x00",)) and not cut("H\n".encode("utf-16-le"), (b"\n\x00",))
