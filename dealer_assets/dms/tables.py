"""DMS tables: the contract's five (CONTRACT section 5) and the ledgers that make runs replayable."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, PrimaryKeyConstraint, String, Table, Text

from dealer_assets.core.warehouse import describe, metadata
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

FEED = {
    "source": "The DMS integration (settings key under `sources`) the feed came from.",
    "feed_as_of": "The feed's as-of time (UTC), from its file name: the time every rule reads.",
    "feed_file": "The feed's file name as delivered.",
    "dealer_id": "The dealer's id in the DMS feed.",
    "vin": "The vehicle's VIN, normalized (17 characters, upper case).",
}
describe(
    service_request_state,
    shared=FEED,
    docs={
        "sr_id": "The service request's id: `<source>-<n>`, numbered in creation order.",
        "vin": "The vehicle's VIN; one active SR per VIN and source.",
        "dealer_id": "The dealer the vehicle was last seen at (rule 4 tracks changes within the window).",
        "client": "The client the dealer maps to (`client_dealer_mappings`).",
        "stock_no": "The dealer's stock number, tracked under rule 4.",
        "vehicle_type": "From `vehicle_type_mappings` by the feed's system code.",
        "service_request_type": "From the vehicle-type or client mapping (rule 3).",
        "status": "`active` or `closed`.",
        "created_at": "As-of of the feed that created the SR.",
        "updated_at": "As-of of the feed that last changed the SR.",
        "closed_at": "As-of of the feed that closed it; null while active.",
        "close_reason": "Why it closed (`auto_closed`); null while active.",
        "last_seen_at": "As-of of the last feed that listed the VIN; null while the newest applied feed lists it.",
        "auto_close_at": "When rule 7 closes it if the VIN stays missing; null when not scheduled.",
        "missing_since": "As-of of the first covering feed that missed the VIN since it was last seen.",
    },
)
describe(
    service_request_events,
    shared=FEED,
    docs={
        "sr_id": "The service request the event is about.",
        "event": "What happened (CONTRACT section 5): created, stock_no_updated, client_updated, "
        "auto_close_reset, auto_closed, close_held.",
        "details": "The change as JSON (from/to values, the guard's numbers for a held close).",
    },
)
describe(
    skipped_vehicles,
    shared=FEED,
    docs={"reason": "Why no SR was created (rule 3): unmapped dealer, ignored type, closed SR, ..."},
)
describe(
    rejected_rows,
    shared=FEED,
    docs={
        "line_number": "The row's line in the file (the header is line 1).",
        "raw_vin": "The VIN as it stood in the file, before normalizing.",
        "dealer_id": "The row's dealer id, when it had one.",
        "reason": "Why the row was rejected (invalid_vin, missing_field, wrong_field_count, ...).",
        "detail": "The rejection in words: which field, which value.",
    },
)
describe(
    quarantined_files,
    {
        "file_name": "The file's name as delivered to the drop zone.",
        "sha256": "The sha256 of its bytes (of a link's target text for a link).",
        "reason": "Why it was quarantined (unparseable_name, unknown_source, conflicting_redelivery, ...).",
        "detail": "The reason in words.",
        "source": "The source its name names, when it names one.",
        "quarantine_path": "Where the file lies now, under the quarantine folder.",
        "quarantined_at": "When it was moved (the wall clock: an operator's time, not a feed's).",
    },
)
describe(
    feed_files,
    shared=FEED,
    docs={
        "file_name": "The feed's file name as delivered.",
        "sha256": "The sha256 of the archived bytes; replay verifies it.",
        "bytes": "The file's size.",
        "archive_path": "Where the feed is archived, read-only.",
        "status": "`accepted` or `quarantined`.",
        "reason": "Why it was quarantined; null when accepted.",
        "raw_rows": "Data rows read from the file.",
        "malformed_rows": "Rows with the wrong number of fields.",
        "vehicles": "Rows that normalized into vehicles.",
        "rejected_rows": "Rows rejected (malformed or invalid), each in `rejected_rows`.",
        "check_digit_failures": "VINs with a wrong check digit (flagged, not rejected).",
    },
)
describe(
    applied_feeds,
    shared=FEED,
    docs={
        "sha256": "The sha256 of the feed as applied.",
        "vehicles": "Vehicles in the feed.",
        "created": "SRs the feed created.",
        "updated": "SRs the feed updated (stock number, client, auto-close reset).",
        "closed": "SRs the feed closed.",
        "held": "Closes the auto-close guard held.",
        "skipped": "Vehicles skipped (in `skipped_vehicles`).",
    },
)
describe(
    late_feeds,
    shared=FEED,
    docs={
        "applied_through": "The as-of of the last feed applied when this one arrived (at or after its own)."
    },
)
describe(
    dealer_coverage,
    shared=FEED,
    docs={"vehicles": "The dealer's vehicles in the feed: the feed covers the dealer."},
)
describe(
    close_guard,
    shared=FEED,
    docs={
        "active": "The dealer's SRs active before the feed.",
        "to_close": "Closes due on this feed.",
        "held": "Whether rule 8 tripped: the closes are held for an operator.",
    },
)
describe(
    guard_decisions,
    shared=FEED,
    docs={
        "feed_as_of": "As-of of the feed whose hold was decided.",
        "decision": "`release` (apply the closes) or `keep` (keep the SRs active).",
        "decided_by": "Who decided.",
        "decided_at": "When they decided (the wall clock).",
        "reason": "Why, in their words.",
    },
)
