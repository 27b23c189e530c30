"""Protractor's warehouse tables (CONTRACT section 7) and the bookkeeping that makes runs idempotent."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Index, Integer, String, Table, Text

from dealer_assets.core.warehouse import describe, metadata

TS = DateTime(timezone=True)

protractor_events = Table(
    "protractor_events",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("location_id", String(64), nullable=False),
    Column("type", String(16), nullable=False),
    Column("object_id", String(36), nullable=False),
    Column("operation", String(8), nullable=False),
    Column("received_at", TS, nullable=False),
    Column("processed_at", TS),
    Index("ix_protractor_events_pending", "location_id", "processed_at"),
)

work_order_snapshots = Table(
    "work_order_snapshots",
    metadata,
    Column("location_id", String(64), primary_key=True),
    Column("work_order_id", String(36), primary_key=True),
    Column("work_order_number", BigInteger),
    Column("work_order_type", Text),
    Column("vin", String(32), index=True),
    Column("protractor_stage", Text),
    Column("status", String(32)),
    Column("service_advisor", Text),
    Column("technician", Text),
    Column("protractor_service_advisor", Text),
    Column("protractor_technician", Text),
    Column("protractor_service_advisor_id", String(36)),
    Column("protractor_technician_id", String(36)),
    Column("created_time", TS),
    Column("modified_time", TS),
    Column("completed", Boolean, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("valid_from", TS, primary_key=True),
    Column("valid_to", TS),
    Index("ix_work_order_snapshots_current", "location_id", "valid_to"),
)

work_order_lines = Table(
    "work_order_lines",
    metadata,
    Column("location_id", String(64), primary_key=True),
    Column("work_order_id", String(36), primary_key=True),
    Column("package_id", String(36)),
    Column("package_title", Text),
    Column("line_id", String(36), primary_key=True),
    Column("line_type", Text),
    Column("description", Text),
    Column("quantity", Float),
    Column("price", Float),
    Column("total", Float),
    Column("part_number", Text),
    Column("completed", Boolean, nullable=False),
    Column("valid_from", TS, primary_key=True),
    Column("valid_to", TS),
    Index("ix_work_order_lines_current", "location_id", "valid_to"),
)

service_request_work_orders = Table(
    "service_request_work_orders",
    metadata,
    Column("location_id", String(64), primary_key=True),
    Column("work_order_id", String(36), primary_key=True),
    Column("vin", String(32)),
    Column("sr_id", String(96)),
)

protractor_journal_offsets = Table(
    "protractor_journal_offsets",
    metadata,
    Column("journal_file", String(255), primary_key=True),
    Column("byte_offset", BigInteger, nullable=False),
)

protractor_sweeps = Table(
    "protractor_sweeps",
    metadata,
    Column("location_id", String(64), primary_key=True),
    Column("swept_until", TS, nullable=False),
)

protractor_write_backs = Table(
    "protractor_write_backs",
    metadata,
    Column("package_id", String(36), primary_key=True),
    Column("location_id", String(64), nullable=False),
    Column("work_order_id", String(36), nullable=False),
    Column("sr_id", String(96), nullable=False),
    Column("attempted_at", TS, nullable=False),
    Column("sent_at", TS),
)

protractor_work_order_refs = Table(
    "protractor_work_order_refs",
    metadata,
    Column("location_id", String(64), primary_key=True),
    Column("work_order_id", String(36), primary_key=True),
    Column("service_item_id", String(36)),
    Column("contact_id", String(36)),
    Index("ix_protractor_work_order_refs_service_item", "location_id", "service_item_id"),
    Index("ix_protractor_work_order_refs_contact", "location_id", "contact_id"),
)
"""The service item and contact each work order referenced when last fetched: which work orders a
`ServiceItem` or `Contact` notification re-fetches."""

protractor_write_back_log = Table(
    "protractor_write_back_log",
    metadata,
    Column("package_id", String(36), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("location_id", String(64), nullable=False),
    Column("work_order_id", String(36), nullable=False),
    Column("sr_id", String(96), nullable=False),
    Column("line_id", String(36), nullable=False),
    Column("action", String(8), nullable=False),
    Column("title", Text),
    Column("description", Text),
    Column("stock_no", Text),
    Column("client", Text),
    Column("request", Text, nullable=False),
    Column("attempted_at", TS, nullable=False),
    Column("answered_at", TS),
    Column("http_status", Integer),
    Column("answer", Text),
)
"""Every write-back write: what was sent (`request`), when, and Protractor's answer; no answer when the run
was killed before it came."""

PROTRACTOR = {
    "location_id": "Our location id: its key under `protractor.locations` in the settings.",
    "work_order_id": "Protractor's work order `ID` (a GUID), lower-cased.",
    "package_id": "The service package's `ID` (a GUID), lower-cased.",
    "line_id": "The package line's `ID` (a GUID), lower-cased.",
    "sr_id": "The DMS service request (`service_requests.sr_id`).",
    "vin": "The vehicle's VIN from the work order's `ServiceItem.VIN`, upper-cased without spaces or dashes; "
    "null when it has none.",
    "valid_from": "When this version took effect (UTC).",
    "valid_to": "When the next version took effect (UTC); null for the current version.",
}
describe(
    protractor_events,
    shared=PROTRACTOR,
    docs={
        "event_id": "The id the receiver gave the notification (a GUID).",
        "location_id": "The location whose keys the callback carried.",
        "type": "What Protractor says changed: `WorkOrder`, `ServiceItem` or `Contact`.",
        "object_id": "The `id` Protractor named: the GUID of that work order, service item or contact.",
        "operation": "`Create`, `Update` or `Delete`.",
        "received_at": "When the receiver stored the notification (its wall clock, UTC).",
        "processed_at": "When a run fetched what it names (the run's clock, UTC); null while pending.",
    },
)
describe(
    work_order_snapshots,
    shared=PROTRACTOR,
    docs={
        "work_order_number": "Protractor's `WorkOrderNumber`, as the shop sees it.",
        "work_order_type": "Protractor's `Type` of the work order.",
        "protractor_stage": "Protractor's `WorkflowStage`, as Protractor names it.",
        "status": "Our status, mapped from the stage by the location's `status_map` over the known defaults; "
        "null when unmapped. Rewritten in place when the map changes.",
        "service_advisor": "Our user for the advisor, by the location's `user_map`; null when unmapped.",
        "technician": "Our user for the technician, by the location's `user_map`; null when unmapped.",
        "protractor_service_advisor": "The advisor's name in Protractor: `ServiceAdvisor.Name`, else "
        "`Header.ServiceAdvisor`; null when unset.",
        "protractor_technician": "The technician's name in Protractor: `Technician.Name`, else "
        "`Header.Technician`, else the first line naming one; null when unset.",
        "protractor_service_advisor_id": "The advisor object's `ID` (lower-cased); null when Protractor sends "
        "the advisor as text.",
        "protractor_technician_id": "The technician object's `ID` (lower-cased); null when Protractor sends "
        "the technician as text.",
        "created_time": "`Header.CreationTime`, the location's local time converted to UTC; null when empty.",
        "modified_time": "`Header.LastModifiedTime`, the location's local time converted to UTC; null when "
        "empty.",
        "completed": "Protractor's `Completed` (false when absent).",
        "deleted": "True for the tombstone a `Delete` notification writes.",
        "valid_from": "When this version took effect (UTC): its `modified_time`, else when it was observed (a "
        "change outside the work order, such as a corrected VIN); a tombstone's is the `Delete`'s "
        "`received_at`.",
    },
)
describe(
    work_order_lines,
    shared=PROTRACTOR,
    docs={
        "package_title": "The package's `ServicePackageHeader.Title`.",
        "line_type": "The line's `Type` (e.g. `Labor`, `Part`).",
        "description": "The line's `Description`.",
        "quantity": "The line's `Quantity`, as Protractor has it.",
        "price": "The line's `Price`, in the shop's currency, as Protractor has it.",
        "total": "The line's `Total`, in the shop's currency, as Protractor has it.",
        "part_number": "The line's `PartNumber`; null when none.",
        "completed": "The line's `Completed` (false when absent).",
        "valid_from": "When this line version took effect: the `valid_from` of the work order version that "
        "brought it (UTC).",
        "valid_to": "When the line changed, left the work order or the work order was deleted (UTC); null for "
        "the current line.",
    },
)
describe(
    service_request_work_orders,
    shared=PROTRACTOR,
    docs={
        "vin": "The current work order's VIN; null when it has none.",
        "sr_id": "The VIN's DMS service request of any source: the active one, else the most recently "
        "created; null when none.",
    },
)
describe(
    protractor_journal_offsets,
    {
        "journal_file": "A receiver journal file, relative to `<data root>/protractor/events/` "
        "(`<location>/<UTC day>.jsonl`).",
        "byte_offset": "Bytes of the file loaded into `protractor_events` (whole lines only).",
    },
)
describe(
    protractor_sweeps,
    shared=PROTRACTOR,
    docs={
        "swept_until": "When the location's last resync sweep started (the run's clock, UTC); the next lists "
        "changes from 2 hours before it.",
    },
)
describe(
    protractor_write_backs,
    shared=PROTRACTOR,
    docs={
        "package_id": "The package write-back adds: uuid5 of location, work order and service request.",
        "sr_id": "The active DMS service request the package is for.",
        "attempted_at": "When the add was first attempted (the run's clock, UTC).",
        "sent_at": "When Protractor accepted the add (UTC); null until it has.",
    },
)
describe(
    protractor_work_order_refs,
    shared=PROTRACTOR,
    docs={
        "service_item_id": "The vehicle (`ServiceItem.ID`, lower-cased) the work order referenced when last "
        "fetched; null when none.",
        "contact_id": "The customer (`Contact.ID`, lower-cased) the work order referenced when last fetched; "
        "null when none.",
    },
)
describe(
    protractor_write_back_log,
    shared=PROTRACTOR,
    docs={
        "package_id": "The package written: uuid5 of location, work order and service request.",
        "attempt": "The write's number for its package: 1, 2, ...",
        "sr_id": "The active DMS service request the package is for.",
        "line_id": "The package's labor line written (uuid5 of the package).",
        "action": "`add` (the work order did not carry the package) or `update` (it reads otherwise than its "
        "service request, e.g. a new stock number or client).",
        "title": "The package title sent: the service request type (`Service request` when it has none).",
        "description": "The text sent for the package and its line: `<type> for VIN <vin> (stock <stock no>, "
        "client <client>)`.",
        "stock_no": "The service request's stock number the text carries; null when unknown.",
        "client": "The service request's client the text carries; null when unknown.",
        "request": "The body of `POST /WorkOrder/{id}` as sent (JSON).",
        "attempted_at": "When the write was recorded, just before it was sent (the run's clock, UTC).",
        "answered_at": "When Protractor's answer, or the error, came back (UTC); null when the run was killed "
        "before it.",
        "http_status": "The HTTP status of Protractor's answer; null when the write failed (a 4xx or 5xx, a "
        "timeout after retries: the error is in `answer`) or no answer came.",
        "answer": "The first 500 characters of Protractor's answer, or of the error; null when no answer "
        "came.",
    },
)
