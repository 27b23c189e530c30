"""The catalog refresh, and the booking run (requests taken in, then booked)."""

import dagster as dg

from dealer_assets.core.tags import area_tags

from .assets import BOOKINGS_KEY, CATALOG_KEY, REQUESTS_KEY

CATALOG_JOB = "xtime_catalog_job"
BOOKINGS_JOB = "xtime_bookings_job"

xtime_catalog_job = dg.define_asset_job(
    CATALOG_JOB,
    selection=[CATALOG_KEY],
    tags=area_tags("xtime"),
    description="Refreshes every dealership's Xtime opcode catalog.",
)
xtime_bookings_job = dg.define_asset_job(
    BOOKINGS_JOB,
    selection=[REQUESTS_KEY, BOOKINGS_KEY],
    tags=area_tags("xtime"),
    description="Takes in new appointment requests and books what can be booked, each at most once.",
)
