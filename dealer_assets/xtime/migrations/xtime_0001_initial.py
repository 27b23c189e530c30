"""Xtime appointments: requests, the attempt ledger, bookings, catalogs and received request files.

Revision ID: xtime_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "xtime_0001"
down_revision = None
branch_labels = ("xtime",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "appointment_requests",
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
    )
    op.create_index("ix_appointment_requests_status", "appointment_requests", ["status"])
    op.create_table(
        "xtime_bookings",
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
    op.create_table(
        "xtime_booking_attempts",
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
    op.create_table(
        "xtime_services",
        sa.Column("dealership", sa.String(100), primary_key=True),
        sa.Column("opcode", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(300)),
        sa.Column("fetched_at", TS, nullable=False),
    )
    op.create_table(
        "appointment_request_files",
        sa.Column("file_name", sa.String(300), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("archived_as", sa.String(500), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
        sa.Column("invalid_lines", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("appointment_request_files", "xtime_services", "xtime_booking_attempts", "xtime_bookings"):
        op.drop_table(table)
    op.drop_index("ix_appointment_requests_status", "appointment_requests")
    op.drop_table("appointment_requests")
