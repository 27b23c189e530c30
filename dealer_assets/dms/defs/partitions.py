"""Hourly partitions by feed as-of time, one asset set per source.

A partition holds every feed of the source whose as-of falls in its hour. `end_offset=2` keeps the partition
of a feed stamped up to an hour ahead of the clock (CONTRACT section 2) in the set.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from dealer_assets.dms.domain.feed_names import PARTITION_FORMAT

SINGLE_RUN = dg.BackfillPolicy.single_run()


def feed_partitions(history_start: datetime) -> dg.HourlyPartitionsDefinition:
    return dg.HourlyPartitionsDefinition(
        start_date=history_start.strftime(PARTITION_FORMAT),
        end_offset=2,
        timezone="UTC",
        fmt=PARTITION_FORMAT,
    )
