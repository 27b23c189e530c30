"""The durable, append-only record of received notifications: one JSONL file per location and UTC day under
`<data root>/protractor/events/<location>/`. The receiver answers 2xx only after its line is fsync'd; loading
reads whole lines from a byte offset the warehouse remembers, so a line is loaded once and none is lost.

Concurrent requests share one write and one fsync (group commit): throughput does not pay an fsync per call.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

from dealer_assets.core.files import append_durably
from dealer_assets.protractor.domain.events import EVENT_SCHEMA

FLUSHES_IN_FLIGHT = 4
JOURNAL_SCHEMA: dict[str, pl.DataType] = {k: v for k, v in EVENT_SCHEMA.items() if k != "processed_at"}


def journal_dir(data_dir: Path) -> Path:
    return data_dir / "protractor" / "events"


def journal_file(root: Path, location_id: str, day: date | datetime) -> Path:
    return root / location_id / f"{day:%Y-%m-%d}.jsonl"


@dataclass
class _Pending:
    path: Path
    line: bytes
    done: asyncio.Future


class Journal:
    """Group-committing appender; one writer task drains every queued line, writes, fsyncs, then answers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._paths: dict[tuple[str, object], Path] = {}
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._writer())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def append(self, record: dict, received_at: datetime) -> None:
        assert self._queue is not None, "Journal.start() was not awaited"
        key = (record["location_id"], received_at.date())
        path = self._paths.get(key)
        if path is None:
            path = self._paths[key] = journal_file(self.root, *key)
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        done = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(path, line, done))
        await done

    async def _writer(self) -> None:
        """Drain the queue into a batch; up to FLUSHES_IN_FLIGHT batches are written and fsync'd at once, so
        callbacks arriving during one fsync do not wait for it to end before theirs starts."""
        assert self._queue is not None
        slots = asyncio.Semaphore(FLUSHES_IN_FLIGHT)
        flushing: set[asyncio.Task] = set()
        while True:
            batch = [await self._queue.get()]
            await slots.acquire()
            while not self._queue.empty() and len(batch) < 5000:
                batch.append(self._queue.get_nowait())
            task = asyncio.create_task(self._flush(batch, slots))
            flushing.add(task)
            task.add_done_callback(flushing.discard)

    @staticmethod
    async def _flush(batch: list[_Pending], slots: asyncio.Semaphore) -> None:
        """Any failure is every waiter's answer: none may answer 2xx for a line that is not stored."""
        try:
            await asyncio.to_thread(_write_batch, batch)
        except Exception as exc:
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(exc)
        else:
            for item in batch:
                if not item.done.done():
                    item.done.set_result(None)
        finally:
            slots.release()


def _write_batch(batch: list[_Pending]) -> None:
    by_path: dict[Path, list[bytes]] = {}
    for item in batch:
        by_path.setdefault(item.path, []).append(item.line)
    for path, lines in by_path.items():
        append_durably(path, b"".join(lines))


def read_new(root: Path, offsets: dict[str, int]) -> tuple[pl.DataFrame, dict[str, int]]:
    """Whole lines appended since `offsets` (file path relative to root -> byte offset), and the new offsets.

    A trailing partial line (a write in progress) is left for the next read."""
    frames = []
    new_offsets = dict(offsets)
    for path in sorted(root.glob("*/*.jsonl")):
        rel = path.relative_to(root).as_posix()
        start = offsets.get(rel, 0)
        with path.open("rb") as fh:
            fh.seek(start)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        if end == 0:
            continue
        chunk = data[:end]
        frame = pl.read_ndjson(chunk, schema={**JOURNAL_SCHEMA, "received_at": pl.String})
        frames.append(
            frame.with_columns(pl.col("received_at").str.to_datetime(time_unit="us", time_zone="UTC"))
        )
        new_offsets[rel] = start + end
    if not frames:
        return pl.DataFrame(schema=JOURNAL_SCHEMA), new_offsets
    return pl.concat(frames).cast(JOURNAL_SCHEMA), new_offsets
