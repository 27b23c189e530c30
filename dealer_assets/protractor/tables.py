"""Protractor's warehouse tables (CONTRACT section 7) and the bookkeeping that makes runs idempotent."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Index, Integer, String, Table, Text

from dealer_assets.core.warehouse import metadata

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
