"""Protractor's resync schedule: callbacks can be lost for days, so every location is re-listed regularly."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from dealer_assets.protractor.defs.jobs import RESYNC_JOB


def resync_due(tick: datetime, every_hours: int) -> bool:
    """Whether the hourly tick at `tick` is one of the resyncs `every_hours` apart, counted in whole hours
    since the Unix epoch: any interval from 1 to 168 hours is kept exactly, across days, months and years."""
    return int(tick.timestamp() // 3600) % every_hours == 0


def build_schedule(every_hours: int) -> dg.ScheduleDefinition:
    """Ticks hourly and runs on the ticks `every_hours` apart (cron alone cannot step 5 or 30 hours)."""
    return dg.ScheduleDefinition(
        name="protractor_resync_schedule",
        job_name=RESYNC_JOB,
        cron_schedule="7 * * * *",
        execution_timezone="UTC",
        should_execute=lambda context: resync_due(context.scheduled_execution_time, every_hours),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Resync every {every_hours} h (UTC hours since the epoch divisible by {every_hours}): "
        "callbacks can be lost for days.",
    )
