"""Named crash points for fault-tolerance tests: `DEALER_CRASH_AT=<point>` kills the process there with
SIGKILL, as a power cut or an OOM kill would. Unset (always, outside those tests), it does nothing."""

from __future__ import annotations

import os
import signal

from dealer_assets.core.env import DealerEnv

POINTS = (
    "ingest:after_archive",
    "normalize:before_commit",
    "reconcile:before_commit",
    "reconcile:after_commit",
)


def crash_point(name: str) -> None:
    if DealerEnv.load().crash_at == name:
        os.kill(os.getpid(), signal.SIGKILL)
