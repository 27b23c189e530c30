"""Daily partitions by the UTC day of a feed's as-of time, one asset set per source.

A partition holds every feed of the source whose as-of falls on its day. Days rather than hours: a range run
writes Dagster events per partition, so days keep a backfill's cost with its feeds (a source delivering
once a day costs what one delivering hourly for a day does), and a day without a feed is rare enough to be
worth seeing (runs cover such days with "no feed on this day"). `end_offset=1` makes today's partition exist.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from dealer_assets.dms.domain.feed_names import PARTITION_FORMAT, partition_key_of

SINGLE_RUN = dg.BackfillPolicy.single_run()


def feed_partitions(history_start: datetime) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=partition_key_of(history_start), end_offset=1, timezone="UTC", fmt=PARTITION_FORMAT
    )
