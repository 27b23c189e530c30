"""Where a long step is: feeds done of total, the as-of reached and the rate, logged every 30 s or so."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from dealer_assets.core.timeutil import iso_z

PROGRESS_EVERY_SECONDS = 30.0


class Progress:
    """Counts feeds as a step works through them and reports through `log` at most every `every` seconds
    (the first report after `every`), so that a month-long replay says where it is and a short run is silent."""

    def __init__(
        self,
        what: str,
        log: Callable[[str], None],
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.log, self.clock = what, log, clock
        self._lock = threading.Lock()
        self.every = PROGRESS_EVERY_SECONDS if every is None else every
        self.begin(0)

    def begin(self, total: int) -> None:
        """Called once the step knows how many feeds it will work through."""
        self.total, self.done = total, 0
        self.started = self.last = self.clock()

    def advance(self, as_of: datetime) -> None:
        """Called as the feed with this as-of is taken up (from any thread)."""
        with self._lock:
            self.done += 1
            now = self.clock()
            if now - self.last < self.every:
                return
            self.last = now
            line = self.line(as_of, now)
        self.log(line)

    def line(self, as_of: datetime, now: float) -> str:
        rate = self.done / max(now - self.started, 1e-9)
        left = (self.total - self.done) / rate if rate else 0.0
        return (
            f"{self.what}: feed {self.done} of {self.total}, as-of {iso_z(as_of)} reached, "
            f"{rate:.1f} feeds/s, about {left:.0f} s to go"
        )
