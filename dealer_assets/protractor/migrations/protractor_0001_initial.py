"""Protractor work orders: the contract's four tables and the bookkeeping of journal loads, sweeps and
write-backs.

Revision ID: protractor_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "protractor_0001"
down_revision = None
branch_labels = ("protractor",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "protractor_events",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("object_id", sa.String(36), nullable=False),
        sa.Column("operation", sa.String(8), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("processed_at", TS),
    )
    op.create_index("ix_protractor_events_pending", "protractor_events", ["location_id", "processed_at"])
    op.create_table(
        "work_order_snapshots",
        sa.Column("location_id", sa.String(64), primary_key=True),
        sa.Column("work_order_id", sa.String(36), primary_key=True),
        sa.Column("work_order_number", sa.BigInteger),
        sa.Column("work_order_type", sa.Text),
        sa.Column("vin", sa.String(32)),
        sa.Column("protractor_stage", sa.Text),
        sa.Column("status", sa.String(32)),
        sa.Column("service_advisor", sa.Text),
        sa.Column("technician", sa.Text),
        sa.Column("protractor_service_advisor", sa.Text),
        sa.Column("protractor_technician", sa.Text),
        sa.Column("created_time", TS),
        sa.Column("modified_time", TS),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("valid_from", TS, primary_key=True),
        sa.Column("valid_to", TS),
    )
    op.create_index("ix_work_order_snapshots_vin", "work_order_snapshots", ["vin"])
    op.create_index("ix_work_order_snapshots_current", "work_order_snapshots", ["location_id", "valid_to"])
    op.create_table(
        "work_order_lines",
        sa.Column("location_id", sa.String(64), primary_key=True),
        sa.Column("work_order_id", sa.String(36), primary_key=True),
        sa.Column("package_id", sa.String(36)),
        sa.Column("package_title", sa.Text),
        sa.Column("line_id", sa.String(36), primary_key=True),
        sa.Column("line_type", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("quantity", sa.Float),
        sa.Column("price", sa.Float),
        sa.Column("total", sa.Float),
        sa.Column("part_number", sa.Text),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("valid_from", TS, primary_key=True),
        sa.Column("valid_to", TS),
    )
    op.create_index("ix_work_order_lines_current", "work_order_lines", ["location_id", "valid_to"])
    op.create_table(
        "service_request_work_orders",
        sa.Column("location_id", sa.String(64), primary_key=True),
        sa.Column("work_order_id", sa.String(36), primary_key=True),
        sa.Column("vin", sa.String(32)),
        sa.Column("sr_id", sa.String(96)),
    )
    op.create_table(
        "protractor_journal_offsets",
        sa.Column("journal_file", sa.String(255), primary_key=True),
        sa.Column("byte_offset", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "protractor_sweeps",
        sa.Column("location_id", sa.String(64), primary_key=True),
        sa.Column("swept_until", TS, nullable=False),
    )
    op.create_table(
        "protractor_write_backs",
        sa.Column("package_id", sa.String(36), primary_key=True),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("work_order_id", sa.String(36), nullable=False),
        sa.Column("sr_id", sa.String(96), nullable=False),
        sa.Column("attempted_at", TS, nullable=False),
        sa.Column("sent_at", TS),
    )


def downgrade() -> None:
    for table in (
        "protractor_write_backs",
        "protractor_sweeps",
        "protractor_journal_offsets",
        "service_request_work_orders",
        "work_order_lines",
        "work_order_snapshots",
        "protractor_events",
    ):
        op.drop_table(table)
