"""The data root on disk: drop zone, immutable checksummed archive, quarantine, and per-feed parquet.

Archive: `archive/<source>/<YYYY>/<MM>/<DD>/<file name>` (read-only) with `<file name>.sha256` beside it.
The archive alone says which feeds were accepted, so a replay works after the drop zone is emptied.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dealer_assets.core.env import DealerPaths
from dealer_assets.core.landing import is_delivery, sha256_of
from dealer_assets.dms.domain.feed_names import FeedName, parse_feed_name


@dataclass(frozen=True)
class ArchivedFeed:
    feed: FeedName
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class Intake:
    outcome: str
    """`archived` (new feed), `duplicate` (same name, same bytes: nothing changes), or `conflict`."""
    sha256: str
    archived: ArchivedFeed | None


class FeedStore:
    def __init__(self, paths: DealerPaths) -> None:
        self.paths = paths

    def incoming(self) -> list[Path]:
        if not self.paths.incoming.is_dir():
            return []
        return sorted(p for p in self.paths.incoming.iterdir() if is_delivery(p))

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

    def intake(self, delivered: Path, feed: FeedName) -> Intake:
        """Archive a delivered file under its name, immutably; a re-delivery is compared by checksum."""
        digest = sha256_of(delivered)
        target = self.archive_path(feed)
        existing = self.archived(feed)
        if existing is not None and existing.feed.file_name != feed.file_name:
            if existing.sha256 != digest:
                return Intake("conflict", digest, None)
            delivered.unlink(missing_ok=True)
            return Intake("duplicate", digest, existing)
        target.parent.mkdir(parents=True, exist_ok=True)
        if existing is None:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            os.close(fd)
            shutil.copyfile(delivered, tmp)
            if sha256_of(Path(tmp)) != digest:
                os.unlink(tmp)
                raise OSError(
                    f"{delivered.name} changed while it was being archived; it stays in the drop zone"
                )
            os.chmod(tmp, 0o444)
            try:
                os.link(tmp, target)
                sidecar = target.with_name(target.name + ".sha256")
                sidecar.write_text(f"{digest}  {target.name}\n")
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
            existing = self.archived(feed)
            assert existing is not None
            if existing.sha256 == digest and existing.path.stat().st_size == delivered.stat().st_size:
                delivered.unlink(missing_ok=True)
                return Intake("archived", digest, existing)
        if existing.sha256 == digest:
            delivered.unlink(missing_ok=True)
            return Intake("duplicate", digest, existing)
        return Intake("conflict", digest, None)

    def quarantine(
        self, delivered: Path, *, sha256: str, reason: str, detail: str, source: str | None, at: datetime
    ) -> Path:
        """Move a file out of the way with its reason beside it; the drop zone keeps only work."""
        self.paths.quarantine.mkdir(parents=True, exist_ok=True)
        target = self.paths.quarantine / f"{delivered.name}.{sha256[:12]}"
        if delivered.resolve() != target.resolve():
            if target.exists():
                delivered.unlink(missing_ok=True)
            else:
                shutil.move(str(delivered), target)
        target.with_name(target.name + ".reason.json").write_text(
            json.dumps(
                {
                    "file_name": delivered.name,
                    "sha256": sha256,
                    "reason": reason,
                    "detail": detail,
                    "source": source,
                    "quarantined_at": at.isoformat(),
                },
                indent=2,
            )
            + "\n"
        )
        return target

    def quarantine_copy(self, archived: ArchivedFeed, *, reason: str, detail: str, at: datetime) -> Path:
        """A copy of an archived feed that cannot be read, for people to look at; the archive stays whole."""
        self.paths.quarantine.mkdir(parents=True, exist_ok=True)
        target = self.paths.quarantine / f"{archived.feed.file_name}.{archived.sha256[:12]}"
        if not target.exists():
            shutil.copyfile(archived.path, target)
        reason_file = target.with_name(target.name + ".reason.json")
        if not reason_file.exists():
            reason_file.write_text(
                json.dumps(
                    {
                        "file_name": archived.feed.file_name,
                        "sha256": archived.sha256,
                        "reason": reason,
                        "detail": detail,
                        "source": archived.feed.source,
                        "quarantined_at": at.isoformat(),
                    },
                    indent=2,
                )
                + "\n"
            )
        return target

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

    def read_verified(self, archived: ArchivedFeed) -> bytes:
        data = archived.path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != archived.sha256:
            raise OSError(
                f"archive corrupted: {archived.path} has sha256 {actual}, recorded {archived.sha256}"
            )
        return data

    def raw_path(self, feed: FeedName) -> Path:
        return self.paths.raw / feed.source / f"{feed.stamp}.parquet"

    def normalized_path(self, feed: FeedName) -> Path:
        return self.paths.normalized / feed.source / f"{feed.stamp}.parquet"
