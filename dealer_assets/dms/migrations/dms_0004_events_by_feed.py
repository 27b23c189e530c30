"""DMS feeds: `service_request_events` keyed by feed first, (source, feed_as_of, sr_id, event).

Keyed by `sr_id` first, every hour's events landed at random places in the key's B-tree: 7,000 events of a
steady hour dirtied 26 MiB of SQLite pages among 1M earlier events, against 2.5 MiB keyed by feed, where they
append. Every read of the project is by source and feed (a run's checks, a replay's delete), which the key now
serves, so the two indexes by source and by (source, feed_as_of) go.

Revision ID: dms_0004
Revises: dms_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "dms_0004"
down_revision = "dms_0003"
branch_labels = None
depends_on = None

TABLE = "service_request_events"
BY_FEED = ("source", "feed_as_of", "sr_id", "event")
BY_SR = ("sr_id", "event", "feed_as_of")
INDEXES = {
    "ix_service_request_events_source": ["source"],
    "ix_service_request_events_source_feed_as_of": ["source", "feed_as_of"],
}
COLUMNS = "sr_id, event, feed_as_of, source, vin, feed_file, details"


def _rekey(key: tuple[str, ...]) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT {TABLE}_pkey")
        op.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY ({', '.join(key)})")
        return
    ts = sa.DateTime(timezone=True)
    op.create_table(
        f"_{TABLE}_rekeyed",
        sa.Column("sr_id", sa.String(96), nullable=False),
        sa.Column("event", sa.String(24), nullable=False),
        sa.Column("feed_as_of", ts, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("feed_file", sa.Text, nullable=False),
        sa.Column("details", sa.Text),
        sa.PrimaryKeyConstraint(*key),
    )
    op.execute(
        f"INSERT INTO _{TABLE}_rekeyed ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE} ORDER BY {', '.join(key)}"
    )
    op.drop_table(TABLE)
    op.rename_table(f"_{TABLE}_rekeyed", TABLE)


def upgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name=TABLE)
    _rekey(BY_FEED)


def downgrade() -> None:
    _rekey(BY_SR)
    for name, columns in INDEXES.items():
        op.create_index(name, TABLE, columns)
