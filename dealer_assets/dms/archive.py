"""The data root on disk: drop zone, immutable checksummed archive, quarantine, and per-feed parquet.

Archive: `archive/<source>/<YYYY>/<MM>/<DD>/<file name>` (read-only) with `<file name>.sha256` beside it.
The archive alone says which feeds were accepted, so a replay works after the drop zone is emptied.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dealer_assets.core.env import DealerPaths
from dealer_assets.core.files import write_durably
from dealer_assets.core.landing import (
    ChangedWhileReading,
    NotRegularFile,
    Snapshot,
    copy_verified,
    entry_kind,
    is_candidate,
    sha256_of,
    unfinished,
)
from dealer_assets.dms.domain.feed_names import FeedName, parse_feed_name

REASON_SUFFIX = ".reason.json"


@dataclass(frozen=True)
class ArchivedFeed:
    feed: FeedName
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class Intake:
    outcome: str
    """`archived` (new feed), `duplicate` (same name, same bytes: nothing changes), `conflict`, `waiting` (not
    settled yet, or taken by another run), `unfinished` (settled but visibly not done) or `left` (changed while
    read, or unreadable): the last two stay in the drop zone and are reported; `detail` says why."""
    sha256: str
    archived: ArchivedFeed | None
    detail: str = ""
    listed: Snapshot | None = None


QUARANTINE_NAME_BYTES = 200
UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/]")


def quarantine_name(file_name: str, sha256: str) -> str:
    """`<file name>.<sha12>`, control characters replaced and the name cut to leave room for suffixes."""
    safe = UNSAFE_NAME.sub("_", file_name)
    cut = safe.encode()[:QUARANTINE_NAME_BYTES].decode(errors="ignore")
    return f"{cut}.{sha256[:12]}"


class FeedArchive:
    def __init__(self, paths: DealerPaths) -> None:
        self.paths = paths
        self._archived_here: dict[Path, tuple[Snapshot, str]] = {}
        """Archive files this store wrote, with the digest taken while writing them: read back unchanged (same
        inode, size and mtime), they are not hashed again."""

    def _known_digest(self, path: Path) -> str | None:
        written = self._archived_here.get(path)
        if written is None:
            return None
        try:
            return written[1] if Snapshot.of(os.stat(path)) == written[0] else None
        except FileNotFoundError:
            return None

    def _entries(self) -> list[Path]:
        if not self.paths.incoming.is_dir():
            return []
        return sorted(p for p in self.paths.incoming.iterdir() if is_candidate(p))

    def incoming(self) -> list[Path]:
        """Regular files in the drop zone (a link is never followed), settled or not."""
        return [p for p in self._entries() if entry_kind(p) == "regular"]

    def irregular(self) -> list[Path]:
        """Drop-zone entries that are neither regular files nor folders: links, FIFOs, sockets, devices."""
        return [p for p in self._entries() if entry_kind(p) not in ("regular", "directory", None)]

    def unsettled(self, now: float | None = None) -> list[Path]:
        """Regular files written to within the quiet period: a writer may still hold them."""
        out = []
        for p in self.incoming():
            try:
                if not Snapshot.of(os.lstat(p)).settled(self.paths.settle_seconds, now):
                    out.append(p)
            except FileNotFoundError:
                continue
        return out

    def wait_until_settled(self, limit_seconds: float) -> list[Path]:
        """Wait (at most `limit_seconds`) for young files to settle; returns those still unsettled."""
        deadline = time.monotonic() + limit_seconds
        while (young := self.unsettled()) and time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        return young

    def archive_path(self, feed: FeedName) -> Path:
        day = feed.as_of.strftime("%Y/%m/%d")
        return self.paths.archive / feed.source / day / feed.file_name

    def archived(self, feed: FeedName) -> ArchivedFeed | None:
        """The archived feed of this source and as-of, whatever the extension it was delivered with."""
        path = self.archive_path(feed)
        if not path.exists():
            stem = f"{feed.source}-{feed.stamp}."
            same = (
                sorted(p for p in path.parent.glob(f"{stem}*") if not p.name.endswith(".sha256"))
                if path.parent.is_dir()
                else []
            )
            if not same:
                return None
            path = same[0]
            feed = FeedName(as_of=feed.as_of, source=feed.source, file_name=path.name)
        sidecar = path.with_name(path.name + ".sha256")
        digest = sidecar.read_text().split()[0] if sidecar.exists() else sha256_of(path)
        return ArchivedFeed(feed, path, digest, path.stat().st_size)

    def intake(
        self,
        delivered: Path,
        feed: FeedName,
        line_endings: tuple[bytes, ...] = (),
        writers: dict[str, list[int]] | None = None,
    ) -> Intake:
        """Archive a settled, finished delivery under its name, immutably; a re-delivery is compared by checksum.

        Finished: no process in `writers` (`landing.writers_in`) holds it, and it ends with one of
        `line_endings` (its layout's). The drop-zone entry is removed only after the archived copy's digest
        matches it and only if it is still the same file, unchanged, so a writer's later bytes are never lost.
        """
        try:
            listed = Snapshot.of(os.lstat(delivered))
        except FileNotFoundError:
            return Intake("waiting", "", None, "taken by another run")
        if not listed.settled(self.paths.settle_seconds):
            return Intake(
                "waiting",
                "",
                None,
                f"written within the last {self.paths.settle_seconds:g} s; not settled yet",
            )
        try:
            why = unfinished(delivered, listed, line_endings, writers or {})
        except FileNotFoundError:
            return Intake("waiting", "", None, "taken by another run")
        except OSError as exc:
            return Intake("left", "", None, f"cannot be read: {exc.strerror or exc}")
        if why:
            return Intake("unfinished", "", None, why, listed)
        target = self.archive_path(feed)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        os.close(fd)
        try:
            try:
                digest = copy_verified(delivered, Path(tmp), listed)
            except FileNotFoundError:
                return Intake("waiting", "", None, "taken by another run")
            except ChangedWhileReading as exc:
                return Intake("left", "", None, str(exc))
            except NotRegularFile:
                return Intake("left", "", None, "not a regular file")
            except OSError as exc:
                return Intake("left", "", None, f"cannot be read: {exc.strerror or exc}")
            existing = self.archived(feed)
            if existing is None:
                os.chmod(tmp, 0o444)
                try:
                    os.link(tmp, target)
                    self._archived_here[target] = (Snapshot.of(os.stat(target)), digest)
                    write_durably(target.with_name(target.name + ".sha256"), f"{digest}  {target.name}\n")
                except FileExistsError:
                    pass
                existing = self.archived(feed)
                assert existing is not None
                on_disk = self._known_digest(existing.path) or sha256_of(existing.path)
                if existing.sha256 == digest and on_disk == digest:
                    self._remove_if_unchanged(delivered, listed)
                    return Intake("archived", digest, existing)
        finally:
            Path(tmp).unlink(missing_ok=True)
        if existing.sha256 == digest:
            self._remove_if_unchanged(delivered, listed)
            return Intake("duplicate", digest, existing)
        return Intake("conflict", digest, None)

    @staticmethod
    def _remove_if_unchanged(delivered: Path, listed: Snapshot) -> None:
        try:
            if Snapshot.of(os.lstat(delivered)) == listed:
                delivered.unlink(missing_ok=True)
        except FileNotFoundError:
            pass

    def _reason(
        self,
        file_name: str,
        sha256: str,
        reason: str,
        detail: str,
        source: str | None,
        at: datetime,
        keep: bool = False,
    ) -> Path:
        """Write the reason file of a quarantined file (with `keep`, only if it has none yet); its path."""
        self.paths.quarantine.mkdir(parents=True, exist_ok=True)
        target = self.paths.quarantine / quarantine_name(file_name, sha256)
        reason_file = target.with_name(target.name + REASON_SUFFIX)
        if not (keep and reason_file.exists()):
            record = {"file_name": file_name, "sha256": sha256, "reason": reason, "detail": detail}
            record |= {"source": source, "quarantined_at": at.isoformat(), "quarantine_path": str(target)}
            write_durably(reason_file, json.dumps(record, indent=2) + "\n")
        return target

    def quarantine(
        self, delivered: Path, *, sha256: str, reason: str, detail: str, source: str | None, at: datetime
    ) -> Path:
        """Move a file out of the way with its reason beside it; the drop zone keeps only work.

        The reason is written before the move, so a run killed in between leaves either the file in the
        drop zone (taken again next time) or the file and its reason in the quarantine (recorded next time).
        """
        target = self._reason(delivered.name, sha256, reason, detail, source, at)
        if os.path.lexists(target):
            delivered.unlink(missing_ok=True)
        else:
            shutil.move(delivered, target)
        return target

    def quarantine_copy(self, archived: ArchivedFeed, *, reason: str, detail: str, at: datetime) -> Path:
        """A copy of an archived feed that cannot be read, for people to look at; the archive stays whole."""
        feed = archived.feed
        target = self._reason(feed.file_name, archived.sha256, reason, detail, feed.source, at, keep=True)
        if not target.exists():
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.copyfile(archived.path, tmp)
            os.replace(tmp, target)
        return target

    def quarantine_records(self) -> list[dict]:
        """Every quarantined file with its reason, read back from the quarantine folder itself."""
        if not self.paths.quarantine.is_dir():
            return []
        out = []
        for reason_file in sorted(self.paths.quarantine.glob(f"*{REASON_SUFFIX}")):
            kept = reason_file.with_name(reason_file.name[: -len(REASON_SUFFIX)])
            if not os.path.lexists(kept):
                continue
            try:
                record = json.loads(reason_file.read_text())
            except (OSError, ValueError):
                continue
            out.append({**record, "quarantine_path": str(kept)})
        return out

    def archived_feeds(
        self, source: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[ArchivedFeed]:
        """Archived feeds of a source with start <= as-of < end, in as-of order."""
        root = self.paths.archive / source
        if not root.is_dir():
            return []
        found = []
        for path in root.glob("*/*/*/*"):
            if path.name.endswith(".sha256") or path.name.startswith("."):
                continue
            feed = parse_feed_name(path.name)
            if feed is None or feed.source != source:
                continue
            if (start is None or feed.as_of >= start) and (end is None or feed.as_of < end):
                archived = self.archived(feed)
                if archived is not None:
                    found.append(archived)
        return sorted(found, key=lambda a: a.feed.as_of)

    @contextmanager
    def verified(self, archived: ArchivedFeed) -> Iterator[Path]:
        """The archive file, its digest checked against the one recorded when it was archived; OSError if it
        does not match, or if the file changes before the caller is done reading it."""
        path = archived.path
        before = Snapshot.of(os.lstat(path))
        actual = self._known_digest(path) or sha256_of(path)
        if actual != archived.sha256:
            raise OSError(f"archive corrupted: {path} has sha256 {actual}, recorded {archived.sha256}")
        yield path
        if Snapshot.of(os.lstat(path)) != before:
            raise OSError(f"archive changed while read: {path}")

    def raw_path(self, feed: FeedName) -> Path:
        return self.paths.raw / feed.source / f"{feed.stamp}.parquet"

    def normalized_path(self, feed: FeedName) -> Path:
        return self.paths.normalized / feed.source / f"{feed.stamp}.parquet"
