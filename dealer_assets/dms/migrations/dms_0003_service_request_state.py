"""DMS feeds: service requests stored as their state, `service_requests` a view over it.

A steady hour sees nearly every vehicle again; storing `last_seen_at` for each of them rewrote the whole
inventory every hour. `service_request_state` keeps `last_seen_at` null while the SR's VIN is in its
source's newest applied feed, and the `service_requests` view puts that feed's as-of back, so the contract's
rows are unchanged and an hour writes only the SRs that changed. Events get an index by feed, so that the
checks of a run read what it wrote.

Revision ID: dms_0003
Revises: dms_0002
"""

from alembic import op

revision = "dms_0003"
down_revision = "dms_0002"
branch_labels = None
depends_on = None

OLD_INDEXES = ("source", "vin")
"""A `source` index picks nearly every row of a deployment with a few sources; a planner without statistics
(right after a first load) took it as selective and looked up every VIN through it (97 s for 5,000 VINs).
The state table keeps only the VIN index."""
EVENTS_BY_FEED = "ix_service_request_events_source_feed_as_of"
"""The checks look at the events a run wrote (from its first feed on), not at the whole history."""
SERVICE_REQUESTS_VIEW = """
SELECT s.sr_id, s.source, s.vin, s.dealer_id, s.client, s.stock_no, s.vehicle_type, s.service_request_type,
       s.status, s.created_at, s.updated_at, s.closed_at, s.close_reason,
       COALESCE(s.last_seen_at, h.newest_feed) AS last_seen_at, s.auto_close_at, s.missing_since
FROM service_request_state s
LEFT JOIN (SELECT source, MAX(feed_as_of) AS newest_feed FROM applied_feeds GROUP BY source) h
  ON h.source = s.source
"""


def upgrade() -> None:
    for column in OLD_INDEXES:
        op.drop_index(f"ix_service_requests_{column}", table_name="service_requests")
    op.rename_table("service_requests", "service_request_state")
    op.create_index("ix_service_request_state_vin", "service_request_state", ["vin"])
    op.execute(
        "UPDATE service_request_state SET last_seen_at = NULL WHERE status = 'active' AND last_seen_at = "
        "(SELECT MAX(a.feed_as_of) FROM applied_feeds a WHERE a.source = service_request_state.source)"
    )
    op.execute(f"CREATE VIEW service_requests AS {SERVICE_REQUESTS_VIEW}")
    op.create_index(EVENTS_BY_FEED, "service_request_events", ["source", "feed_as_of"])


def downgrade() -> None:
    op.drop_index(EVENTS_BY_FEED, table_name="service_request_events")
    op.execute("DROP VIEW service_requests")
    op.execute(
        "UPDATE service_request_state SET last_seen_at = "
        "(SELECT MAX(a.feed_as_of) FROM applied_feeds a WHERE a.source = service_request_state.source) "
        "WHERE last_seen_at IS NULL"
    )
    op.drop_index("ix_service_request_state_vin", table_name="service_request_state")
    op.rename_table("service_request_state", "service_requests")
    for column in OLD_INDEXES:
        op.create_index(f"ix_service_requests_{column}", "service_requests", [column])
