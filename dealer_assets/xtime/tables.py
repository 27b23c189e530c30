"""The Xtime area's warehouse tables (CONTRACT section 8, plus the attempt ledger and the received files)."""

from __future__ import annotations

import sqlalchemy as sa

from dealer_assets.core.warehouse import TS, metadata

appointment_requests = sa.Table(
    "appointment_requests",
    metadata,
    sa.Column("request_id", sa.String(200), primary_key=True),
    sa.Column("origin", sa.String(20), nullable=False),
    sa.Column("dealership", sa.String(100)),
    sa.Column("vin", sa.String(40)),
    sa.Column("earliest", sa.String(19)),
    sa.Column("latest", sa.String(19)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("first_name", sa.String(200)),
    sa.Column("last_name", sa.String(200)),
    sa.Column("email", sa.String(320)),
    sa.Column("phone", sa.String(40)),
    sa.Column("comment", sa.Text),
    sa.Column("sr_id", sa.String(100)),
    sa.Column("source_file", sa.String(300)),
    sa.Column("line_number", sa.Integer),
    sa.Column("received_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_appointment_requests_status", "status"),
)

xtime_bookings = sa.Table(
    "xtime_bookings",
    metadata,
    sa.Column("request_id", sa.String(200), primary_key=True),
    sa.Column("dealership", sa.String(100), nullable=False),
    sa.Column("appointment_id", sa.String(100), nullable=False),
    sa.Column("appointment_local", sa.String(40), nullable=False),
    sa.Column("appointment_at", TS),
    sa.Column("opcode", sa.String(200), nullable=False),
    sa.Column("booked_at", TS, nullable=False),
    sa.Column("attempt_no", sa.Integer, nullable=False),
    sa.Column("found_by", sa.String(20), nullable=False),
)

xtime_booking_attempts = sa.Table(
    "xtime_booking_attempts",
    metadata,
    sa.Column("request_id", sa.String(200), primary_key=True),
    sa.Column("attempt_no", sa.Integer, primary_key=True),
    sa.Column("dealership", sa.String(100), nullable=False),
    sa.Column("appointment_local", sa.String(40), nullable=False),
    sa.Column("opcode", sa.String(200), nullable=False),
    sa.Column("sent_at", TS, nullable=False),
    sa.Column("outcome", sa.String(20)),
    sa.Column("detail", sa.Text),
    sa.Column("resolved_at", TS),
)

xtime_services = sa.Table(
    "xtime_services",
    metadata,
    sa.Column("dealership", sa.String(100), primary_key=True),
    sa.Column("opcode", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(300)),
    sa.Column("fetched_at", TS, nullable=False),
)

appointment_request_files = sa.Table(
    "appointment_request_files",
    metadata,
    sa.Column("file_name", sa.String(300), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("archived_as", sa.String(500), nullable=False),
    sa.Column("received_at", TS, nullable=False),
    sa.Column("lines", sa.Integer, nullable=False),
    sa.Column("invalid_lines", sa.Integer, nullable=False),
)
