"""What the UI shows about each DMS asset: keys, owners, kinds, the warehouse table it is, and descriptions
written for someone who has only the UI in front of them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from dealer_assets.core.asset_metadata import table_metadata
from dealer_assets.core.lineage import dms_key, service_requests_key
from dealer_assets.dms import tables as t

OWNERS = ["team:dealer-data"]
DROP_ZONE_KEY = dg.AssetKey(["dms", "drop_zone"])
MISDELIVERED_KEY = dg.AssetKey(["dms", "misdelivered_feed_files"])
DROP_ZONE_GROUP = "dms_drop_zone"

FEED_INTERVAL = timedelta(hours=2)
FEED_SLACK = timedelta(hours=1)
"""DMS exports arrive every one to two hours; a source whose newest feed is older than interval + slack warns."""
FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=24), warn_window=FEED_INTERVAL + FEED_SLACK
)

REPLAY_NOTE = (
    "**Materialize** (one partition) or **Backfill** (a range) replays from the start of the first selected "
    "day to the newest feed: what was applied from there on is discarded and every archived feed from there "
    "is re-applied in as-of order, so later days are recomputed too (an observation says so on each of them). "
    "With unchanged settings the tables come out identical; with changed settings they are what the new "
    "settings would have produced. The drop-zone sensor and `dealer-assets catch-up` instead apply only the "
    "feeds after the last one applied."
)
PER_DAY_NOTE = (
    "Partitions are UTC days of the feeds' as-of times. Each day's own figures are an observation on that "
    "partition (its sums and a `per_feed` table: every feed of the day with its own figures), shown under the "
    "partition in the *Partitions* tab and listed in *Events*; a day without a feed says so. Figures prefixed "
    "`run/` on a materialization are the whole run's, copied by Dagster onto every partition of a range run."
)


def keys_for(source: str) -> tuple[dg.AssetKey, dg.AssetKey, dg.AssetKey]:
    """The source's three steps, under `dms/<source>/`."""
    return (
        dms_key(source, "raw_dms_feeds"),
        dms_key(source, "normalized_vehicles"),
        service_requests_key(source),
    )


RAW_TABLES = (t.feed_files, t.quarantined_files)
NORMALIZED_TABLES = (t.rejected_rows,)
RECONCILED_TABLES = (
    t.service_request_events,
    t.skipped_vehicles,
    t.applied_feeds,
    t.late_feeds,
    t.close_guard,
    t.dealer_coverage,
)

TABLE_DESCRIPTIONS = {
    "feed_files": "Every feed file of this source taken from the drop zone: its archive path, sha256, size, and "
    "whether it was accepted or quarantined (with the reason), with its row counts.",
    "quarantined_files": "Files of this source that could not be read (undecodable, a required column missing, "
    "unparseable) or conflicted with a feed already received; each is copied to the quarantine folder with "
    "a `.reason.json` beside it.",
    "rejected_rows": "Rows of this source's feeds that were not taken as vehicles, with the feed, the physical "
    "line number and the reason (`invalid_vin`, `missing_dealer`, `duplicate_vin`, `malformed_row`). Malformed "
    "rows are found while the raw feeds are parsed; the rest while normalizing.",
    "service_request_events": "One row per change of a service request (`created`, `stock_no_updated`, "
    "`client_updated`, `auto_close_reset`, `auto_closed`, `close_held`) with the feed that caused it.",
    "skipped_vehicles": "Vehicles of a feed that got no service request, with the reason (`unmapped_dealer`, "
    "`excluded_by_include_only`, `recent_sr_exists`); an unmapped dealer shows up on every feed until mapped.",
    "applied_feeds": "The ledger of the feeds the reconciled state is made of, in as-of order, with each feed's "
    "sha256 and its counts (vehicles, created, updated, closed, held, skipped).",
    "late_feeds": "Feeds whose as-of was not after the last feed applied when they arrived (rule 10): recorded, "
    "not applied; `dealer-assets replay --from <as-of>` applies them.",
    "close_guard": "Each time the auto-close guard (rule 8) judged a dealer on a feed: active SRs, closes due and "
    "whether it tripped. A trip holds that dealer's closes until an operator decides (see `guard_decisions`).",
    "dealer_coverage": "Which dealers each feed covered, with their vehicle counts (rule 2).",
}


def table_spec(source: str, table: sa.Table, written_by: dg.AssetKey) -> dg.AssetSpec:
    """A warehouse table a step writes: in the lineage below its step's asset, reported once per run.

    Not partitioned and not materializable on its own: the step writes it in the same transaction as its
    upstream asset, and a run's one materialization of it carries the rows that run wrote.
    """
    return dg.AssetSpec(
        key=dms_key(source, table.name),
        deps=[written_by],
        group_name=f"dms_{source}_tables",
        kinds={"sql"},
        owners=OWNERS,
        description=f"Warehouse table `{table.name}`, rows of source `{source}`. {TABLE_DESCRIPTIONS[table.name]}"
        f" Written by the step of `{written_by.to_user_string()}` in the same transaction; each run that writes "
        "it reports one materialization with the rows it wrote (`run/rows_written`).",
        metadata=table_metadata(table),
    )


def drop_zone_spec(incoming: Path) -> dg.AssetSpec:
    """The folder where dealer systems deliver feeds: outside Dagster, so an external asset."""
    return dg.AssetSpec(
        key=DROP_ZONE_KEY,
        group_name=DROP_ZONE_GROUP,
        kinds={"filesystem"},
        owners=OWNERS,
        description="The drop zone where dealer management systems deliver feed files "
        "(`<source>-<YYYYMMDD>T<HHMMSS>Z.<ext>`). Nothing in Dagster writes it: the sensor "
        "`dms_drop_zone_sensor` watches it and asks for a run per source; each run archives what it takes and "
        "removes it from here.",
        metadata={"path": dg.MetadataValue.path(str(incoming))},
    )


def guard_decisions_key(source: str) -> dg.AssetKey:
    return dms_key(source, "guard_decisions")


def guard_decisions_spec(source: str) -> dg.AssetSpec:
    """Operators' decisions are an input of the source's service requests: in its group, beside them."""
    return dg.AssetSpec(
        key=guard_decisions_key(source),
        group_name=f"dms_{source}",
        kinds={"sql"},
        owners=OWNERS,
        description=f"Operators' decisions on the auto-close guard's holds (rule 8) for source `{source}` "
        "(warehouse table `guard_decisions`), written by `dealer-assets guard release|keep --source S --dealer D "
        "--feed AS_OF` with who, when and why. Every replay honours them: a released hold's closes are applied "
        "as of that feed; a kept one's SRs stay active.",
        metadata=table_metadata(t.guard_decisions),
    )


def raw_feeds_spec(source: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=keys_for(source)[0],
        deps=[DROP_ZONE_KEY],
        group_name=f"dms_{source}",
        kinds={"csv", "filesystem"},
        owners=OWNERS,
        partitions_def=partitions_def,
        description=f"Feed files of source `{source}` taken from the drop zone, partitioned by the day of their "
        "as-of time: each is archived read-only under its sha256 before anything reads it, then parsed in the "
        "source's layout (a parquet per feed under `raw/`). Rows with the wrong number of fields are rejected; "
        "a file that cannot be read is quarantined, and the other feeds still flow. **Materialize** or "
        "**Backfill** re-reads the archived feeds of the selected days (a feed is archived once, whatever "
        f"runs it). {PER_DAY_NOTE}",
    )


def normalized_vehicles_spec(source: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetSpec:
    raw_key, normalized_key, _ = keys_for(source)
    return dg.AssetSpec(
        key=normalized_key,
        deps=[raw_key],
        group_name=f"dms_{source}",
        kinds={"polars", "parquet"},
        owners=OWNERS,
        partitions_def=partitions_def,
        description="Vehicles of each raw feed with normalized VINs (upper case, no spaces or dashes, 17 valid "
        "characters; a wrong check digit is flagged, not rejected), dealer id, stock number and system code, "
        "one parquet per feed under `normalized/`. Rejected rows go to `rejected_rows` with their line number "
        "and reason. **Materialize** or **Backfill** re-normalizes the feeds of the selected days from their "
        f"raw parquet. {PER_DAY_NOTE}",
    )


def service_requests_spec(source: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetSpec:
    _, normalized_key, sr_key = keys_for(source)
    return dg.AssetSpec(
        key=sr_key,
        deps=[
            normalized_key,
            guard_decisions_key(source),
            dg.AssetDep(
                sr_key, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
            ),
        ],
        group_name=f"dms_{source}",
        kinds={"polars", "sql"},
        owners=OWNERS,
        partitions_def=partitions_def,
        freshness_policy=FRESHNESS,
        metadata=table_metadata(t.service_request_state, name="service_requests"),
        description=f"Service requests of source `{source}` (warehouse view `service_requests` over the table "
        "`service_request_state`, which a steady hour writes only where an SR changed), reconciled "
        "from the normalized feeds in as-of order under the source's settings: created for eligible vehicles, "
        "stock number and client tracked, auto-closed when missing, held by the auto-close guard when a feed "
        "lacks too many of a dealer's vehicles. Each day's state builds on the day before it. "
        f"{REPLAY_NOTE} {PER_DAY_NOTE} Freshness warns when no feed was applied for 3 hours (feeds arrive "
        "every one to two hours).",
    )
