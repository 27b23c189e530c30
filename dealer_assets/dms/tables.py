"""DMS tables: the contract's five (CONTRACT section 5) and the ledgers that make runs replayable."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, PrimaryKeyConstraint, String, Table, Text

from dealer_assets.core.warehouse import metadata
from dealer_assets.core.warehouse import ts as _ts

service_request_state = Table(
    "service_request_state",
    metadata,
    Column("sr_id", String(96), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("vin", String(17), nullable=False, index=True),
    Column("dealer_id", Text, nullable=False),
    Column("client", Text, nullable=False),
    Column("stock_no", Text),
    Column("vehicle_type", Text),
    Column("service_request_type", Text),
    Column("status", String(8), nullable=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("closed_at"),
    Column("close_reason", String(32)),
    _ts("last_seen_at"),
    _ts("auto_close_at"),
    _ts("missing_since"),
)
"""The SRs as stored: `last_seen_at` is null while the VIN is in the source's newest applied feed. The
contract's `service_requests` is a view over it (migration dms_0003) that fills that in from `applied_feeds`."""

service_request_events = Table(
    "service_request_events",
    metadata,
    Column("sr_id", String(96), nullable=False),
    Column("event", String(24), nullable=False),
    _ts("feed_as_of", nullable=False),
    Column("source", String(64), nullable=False),
    Column("vin", String(17), nullable=False),
    Column("feed_file", Text, nullable=False),
    Column("details", Text),
    PrimaryKeyConstraint("source", "feed_as_of", "sr_id", "event"),
)
"""Keyed by feed first: an hour's events append to the key instead of landing all over it (migration
dms_0004), and every read is by source and feed. A lookup by `sr_id` alone scans the source's events."""

skipped_vehicles = Table(
    "skipped_vehicles",
    metadata,
    Column("source", String(64), primary_key=True),
    _ts("feed_as_of", primary_key=True),
    Column("vin", String(17), primary_key=True),
    Column("feed_file", Text, nullable=False),
    Column("dealer_id", Text),
    Column("reason", String(32), nullable=False),
)

rejected_rows = Table(
    "rejected_rows",
    metadata,
    Column("source", String(64), primary_key=True),
    _ts("feed_as_of", primary_key=True),
    Column("line_number", Integer, primary_key=True),
    Column("feed_file", Text, nullable=False),
    Column("raw_vin", Text),
    Column("dealer_id", Text),
    Column("reason", String(32), nullable=False),
    Column("detail", Text),
)

quarantined_files = Table(
    "quarantined_files",
    metadata,
    Column("file_name", Text, primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("reason", String(32), nullable=False),
    Column("detail", Text),
    Column("source", String(64)),
    Column("quarantine_path", Text),
    _ts("quarantined_at", nullable=False),
)

feed_files = Table(
    "feed_files",
    metadata,
    Column("source", String(64), primary_key=True),
    _ts("feed_as_of", primary_key=True),
    Column("file_name", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("archive_path", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(32)),
    Column("raw_rows", Integer),
    Column("malformed_rows", Integer),
    Column("vehicles", Integer),
    Column("rejected_rows", Integer),
    Column("check_digit_failures", Integer),
)

applied_feeds = Table(
    "applied_feeds",
    metadata,
    Column("source", String(64), primary_key=True),
    _ts("feed_as_of", primary_key=True),
    Column("feed_file", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("vehicles", Integer, nullable=False),
    Column("created", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("closed", Integer, nullable=False),
    Column("held", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
)

late_feeds = Table(
    "late_feeds",
    metadata,
    Column("source", String(64), primary_key=True),
    _ts("feed_as_of", primary_key=True),
    Column("feed_file", Text, nullable=False),
    _ts("applied_through", nullable=False),
)

dealer_coverage = Table(
    "dealer_coverage",
    metadata,
    Column("source", String(64), primary_key=True),
    _ts("feed_as_of", primary_key=True),
    Column("dealer_id", Text, primary_key=True),
    Column("vehicles", Integer, nullable=False),
)

close_guard = Table(
    "close_guard",
    metadata,
    Column("source", String(64), primary_key=True),
    _ts("feed_as_of", primary_key=True),
    Column("dealer_id", Text, primary_key=True),
    Column("active", Integer, nullable=False),
    Column("to_close", Integer, nullable=False),
    Column("held", Boolean, nullable=False),
)

guard_decisions = Table(
    "guard_decisions",
    metadata,
    Column("source", String(64), primary_key=True),
    _ts("feed_as_of", primary_key=True),
    Column("dealer_id", Text, primary_key=True),
    Column("decision", String(8), nullable=False),
    Column("decided_by", Text, nullable=False),
    _ts("decided_at", nullable=False),
    Column("reason", Text, nullable=False),
)
"""An operator's decision on a hold of rule 8 (`release` or `keep`), one per hold; every replay honours it.
`decided_at` is the wall clock: it records when a person decided, not a feed's time."""
