"""Protractor: the write-back log, the service items and contacts work orders reference, and the IDs of the
advisor and technician when Protractor sends them as objects.

Revision ID: protractor_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "protractor_0002"
down_revision = "protractor_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("work_order_snapshots", sa.Column("protractor_service_advisor_id", sa.String(36)))
    op.add_column("work_order_snapshots", sa.Column("protractor_technician_id", sa.String(36)))
    op.create_table(
        "protractor_work_order_refs",
        sa.Column("location_id", sa.String(64), primary_key=True),
        sa.Column("work_order_id", sa.String(36), primary_key=True),
        sa.Column("service_item_id", sa.String(36)),
        sa.Column("contact_id", sa.String(36)),
    )
    op.create_index(
        "ix_protractor_work_order_refs_service_item",
        "protractor_work_order_refs",
        ["location_id", "service_item_id"],
    )
    op.create_index(
        "ix_protractor_work_order_refs_contact", "protractor_work_order_refs", ["location_id", "contact_id"]
    )
    op.create_table(
        "protractor_write_back_log",
        sa.Column("package_id", sa.String(36), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("work_order_id", sa.String(36), nullable=False),
        sa.Column("sr_id", sa.String(96), nullable=False),
        sa.Column("line_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("stock_no", sa.Text),
        sa.Column("client", sa.Text),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("attempted_at", TS, nullable=False),
        sa.Column("answered_at", TS),
        sa.Column("http_status", sa.Integer),
        sa.Column("answer", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("protractor_write_back_log")
    op.drop_table("protractor_work_order_refs")
    with op.batch_alter_table("work_order_snapshots") as batch:
        batch.drop_column("protractor_technician_id")
        batch.drop_column("protractor_service_advisor_id")
