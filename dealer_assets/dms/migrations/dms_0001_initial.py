"""DMS feeds: the schema as it stood before migrations (warehouse schema version 1).

Revision ID: dms_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "dms_0001"
down_revision = None
branch_labels = ("dms",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "service_requests",
        sa.Column("sr_id", sa.String(96), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("dealer_id", sa.Text, nullable=False),
        sa.Column("client", sa.Text, nullable=False),
        sa.Column("stock_no", sa.Text),
        sa.Column("vehicle_type", sa.Text),
        sa.Column("service_request_type", sa.Text),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("closed_at", TS),
        sa.Column("close_reason", sa.String(32)),
        sa.Column("last_seen_at", TS),
        sa.Column("auto_close_at", TS),
        sa.Column("missing_since", TS),
    )
    op.create_index("ix_service_requests_source", "service_requests", ["source"])
    op.create_index("ix_service_requests_vin", "service_requests", ["vin"])
    op.create_table(
        "service_request_events",
        sa.Column("sr_id", sa.String(96), primary_key=True),
        sa.Column("event", sa.String(24), primary_key=True),
        sa.Column("feed_as_of", TS, primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("feed_file", sa.Text, nullable=False),
        sa.Column("details", sa.Text),
    )
    op.create_index("ix_service_request_events_source", "service_request_events", ["source"])
    op.create_table(
        "skipped_vehicles",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("feed_as_of", TS, primary_key=True),
        sa.Column("vin", sa.String(17), primary_key=True),
        sa.Column("feed_file", sa.Text, nullable=False),
        sa.Column("dealer_id", sa.Text),
        sa.Column("reason", sa.String(32), nullable=False),
    )
    op.create_table(
        "rejected_rows",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("feed_as_of", TS, primary_key=True),
        sa.Column("line_number", sa.Integer, primary_key=True),
        sa.Column("feed_file", sa.Text, nullable=False),
        sa.Column("raw_vin", sa.Text),
        sa.Column("dealer_id", sa.Text),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_table(
        "quarantined_files",
        sa.Column("file_name", sa.Text, primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("source", sa.String(64)),
        sa.Column("quarantine_path", sa.Text),
        sa.Column("quarantined_at", TS, nullable=False),
    )
    op.create_table(
        "feed_files",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("feed_as_of", TS, primary_key=True),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("archive_path", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("raw_rows", sa.Integer),
        sa.Column("malformed_rows", sa.Integer),
        sa.Column("vehicles", sa.Integer),
        sa.Column("rejected_rows", sa.Integer),
        sa.Column("check_digit_failures", sa.Integer),
    )
    op.create_table(
        "applied_feeds",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("feed_as_of", TS, primary_key=True),
        sa.Column("feed_file", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("vehicles", sa.Integer, nullable=False),
        sa.Column("created", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("closed", sa.Integer, nullable=False),
        sa.Column("held", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
    )
    op.create_table(
        "late_feeds",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("feed_as_of", TS, primary_key=True),
        sa.Column("feed_file", sa.Text, nullable=False),
        sa.Column("applied_through", TS, nullable=False),
    )
    op.create_table(
        "dealer_coverage",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("feed_as_of", TS, primary_key=True),
        sa.Column("dealer_id", sa.Text, primary_key=True),
        sa.Column("vehicles", sa.Integer, nullable=False),
    )
    op.create_table(
        "close_guard",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("feed_as_of", TS, primary_key=True),
        sa.Column("dealer_id", sa.Text, primary_key=True),
        sa.Column("active", sa.Integer, nullable=False),
        sa.Column("to_close", sa.Integer, nullable=False),
        sa.Column("held", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "close_guard",
        "dealer_coverage",
        "late_feeds",
        "applied_feeds",
        "feed_files",
        "quarantined_files",
        "rejected_rows",
        "skipped_vehicles",
        "service_request_events",
        "service_requests",
    ):
        op.drop_table(table)
