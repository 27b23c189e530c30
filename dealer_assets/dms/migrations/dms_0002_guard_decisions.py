"""DMS feeds: operators' decisions on the auto-close guard's holds (rule 8).

Revision ID: dms_0002
Revises: dms_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "dms_0002"
down_revision = "dms_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "guard_decisions",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("feed_as_of", TS, primary_key=True),
        sa.Column("dealer_id", sa.Text, primary_key=True),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("decided_by", sa.Text, nullable=False),
        sa.Column("decided_at", TS, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("guard_decisions")
