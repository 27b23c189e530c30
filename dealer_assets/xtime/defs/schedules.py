"""The daily catalog refresh, and an hourly safety net for requests a failed run left pending."""

import dagster as dg

from .jobs import xtime_bookings_job, xtime_catalog_job

xtime_catalog_schedule = dg.ScheduleDefinition(
    name="xtime_catalog_schedule",
    job=xtime_catalog_job,
    cron_schedule="0 6 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refreshes every dealership's opcode catalog once a day (06:00 UTC).",
)
xtime_bookings_schedule = dg.ScheduleDefinition(
    name="xtime_bookings_schedule",
    job=xtime_bookings_job,
    cron_schedule="15 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Safety net: resumes requests left pending by a failed run.",
)
