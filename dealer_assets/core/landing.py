"""Files arriving from outside: what counts as a finished delivery, checksums, atomic and durable writes.

A delivery is taken only when it is a regular file (never through a symbolic link, never a FIFO or device)
that has settled: its size and modification time unchanged for the quiet period `DEALER_SETTLE_SECONDS`;
and only when it is visibly finished: no local process holds it open for writing, and it ends with a line
ending where its layout's files do (a writer that pauses longer than the quiet period is not done).
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart")
COPY_CHUNK = 1 << 20
PROC = Path("/proc")


class NotRegularFile(OSError):
    """A drop-zone entry that is not a regular file: it is never opened, read or followed."""


class ChangedWhileReading(OSError):
    """A delivery that a writer still holds: left where it is, for a later run."""


@dataclass(frozen=True)
class Snapshot:
    """What a delivery looked like when it was listed: a change in any of these means it is being written."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> Snapshot:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)

    def settled(self, quiet_seconds: float, now: float | None = None) -> bool:
        """Unchanged for the quiet period: every write moves mtime, so its age says how long it has held."""
        if quiet_seconds <= 0:
            return True
        return ((now if now is not None else time.time()) - self.mtime_ns / 1e9) >= quiet_seconds


def sha256_of(path: Path) -> str:
    with open_regular(path) as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def open_regular(path: Path):
    """Open for reading without following a symbolic link or blocking on a FIFO; refuse anything not regular."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(f"{path.name} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def entry_kind(path: Path) -> str | None:
    """`regular`, or what else a drop-zone entry is (`symlink`, `fifo`, ...); None when it is gone."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return "regular"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def is_candidate(path: Path) -> bool:
    """Not hidden, not a partial upload by its name (write, then rename into place)."""
    return not path.name.startswith(".") and not path.name.endswith(IGNORED_SUFFIXES)


def is_delivery(path: Path) -> bool:
    """A finished delivery by name and kind: a regular file (not followed through a link)."""
    return is_candidate(path) and entry_kind(path) == "regular"


def copy_verified(source: Path, target: Path, listed: Snapshot) -> str:
    """Copy a settled delivery to `target` and return its sha256, refusing one that changed meanwhile.

    The copy is read from one descriptor opened without following links; afterwards the entry must still
    be the same file with the same size and mtime as when it was listed, else OSError (nothing is taken).
    """
    digest = hashlib.sha256()
    with open_regular(source) as handle:
        if Snapshot.of(os.fstat(handle.fileno())) != listed:
            raise ChangedWhileReading(f"{source.name} changed since it was listed; it stays in the drop zone")
        with open(target, "wb") as out:
            while chunk := handle.read(COPY_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        after = Snapshot.of(os.fstat(handle.fileno()))
    if after != listed or Snapshot.of(os.lstat(source)) != listed:
        raise ChangedWhileReading(
            f"{source.name} changed while it was being archived; it stays in the drop zone"
        )
    return digest.hexdigest()


def writers_in(folder: Path, proc: Path = PROC) -> dict[str, list[int]]:
    """Files directly in `folder` that a local process holds open for writing, by name, with the processes' ids.

    Read from /proc (Linux): only what this user may inspect (every process for root); empty without /proc.
    One pass over the open descriptors, so a caller scans once for all its candidate files.
    """
    if not proc.is_dir():
        return {}
    prefix = os.path.realpath(folder) + os.sep
    found: dict[str, list[int]] = {}
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir(proc / pid / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(proc / pid / "fd" / fd)
            except OSError:
                continue
            name = target[len(prefix) :] if target.startswith(prefix) else ""
            if name and os.sep not in name and _writable(proc / pid / "fdinfo" / fd):
                found.setdefault(name, []).append(int(pid))
    return found


def _writable(fdinfo: Path) -> bool:
    try:
        lines = fdinfo.read_text().splitlines()
    except OSError:
        return False
    flags = next((line.split()[1] for line in lines if line.startswith("flags:")), "0")
    return int(flags, 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)


def ends_mid_record(path: Path, listed: Snapshot, line_endings: tuple[bytes, ...]) -> bool:
    """A non-empty file whose last bytes are none of `line_endings`: cut inside its last record."""
    if not line_endings or listed.size == 0:
        return False
    tail = max(len(end) for end in line_endings)
    with open_regular(path) as handle:
        last = os.pread(handle.fileno(), tail, max(0, listed.size - tail))
    return not last.endswith(line_endings)


def unfinished(
    path: Path, listed: Snapshot, line_endings: tuple[bytes, ...], writers: dict[str, list[int]]
) -> str | None:
    """Why a settled delivery is visibly not finished (held open for writing, cut inside its last record)."""
    pids = writers.get(path.name)
    if pids:
        return f"process {', '.join(map(str, sorted(pids)))} still holds it open for writing"
    if ends_mid_record(path, listed, line_endings):
        return "its last record has no line ending"
    return None
