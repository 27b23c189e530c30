"""Per-feed work on every core: a range of many feeds is parsed and normalized two feeds at a time.

Small feeds cost polars' per-query overhead more than their rows, and that overhead holds the GIL, so a long
range goes to worker processes; a run of a few feeds stays in the step's own process (its frames are then
handed on to the next step instead of read back).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

FEED_WORKERS = 2
"""Feeds worked on at once. Two: the machines this runs on have two cores or more, and a 1M-row feed's
normalization peaks near 500 MiB, so a backfill of such feeds stays near 1 GiB."""
PROCESSES_FROM = 8
"""Feeds in one step from which worker processes pay for their start (about half a second)."""

T = TypeVar("T")
R = TypeVar("R")


def in_order(work: Callable[[T], R], items: Iterable[T], workers: int = FEED_WORKERS) -> Iterator[R]:
    """`work` (a module-level function: it may run in another process) applied to every item, results in the
    items' order, so what a step writes does not depend on which worker finished first; the first exception
    raised is raised here."""
    items = list(items)
    if workers <= 1 or len(items) < PROCESSES_FROM:
        yield from map(work, items)
        return
    context = multiprocessing.get_context("spawn")  # never fork a process that runs polars' threads
    chunk = max(1, len(items) // (workers * 16))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(work, items, chunksize=chunk)
