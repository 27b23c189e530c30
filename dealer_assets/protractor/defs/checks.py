"""Protractor's asset checks: each declared once, its spec and its result from the same `Check`."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import polars as pl
import sqlalchemy as sa

from dealer_assets.core.checks import WARN, Check
from dealer_assets.protractor.domain.workorders import unmapped_values

STALE_AFTER = timedelta(hours=1)

NO_STALE_PENDING_EVENTS = Check(
    "no_stale_pending_events", "No notification waits over an hour to be processed.", WARN
)
STATUSES_AND_USERS_MAPPED = Check(
    "statuses_and_users_mapped",
    "Every Protractor stage and user of a current work order maps to ours, per location (unmapped ones are "
    "kept raw, ours null).",
    WARN,
)
ONE_CURRENT_VERSION = Check("one_current_version", "A work order has at most one current version.")
PACKAGES_NOT_EDITED = Check(
    "write_back_packages_not_edited",
    "No package that write-back added was edited in Protractor since it was written (an edited one is never "
    "overwritten: its stock number and client are no longer kept current).",
    WARN,
)


def stale_pending_events(pending: pl.DataFrame, now: datetime) -> dg.AssetCheckResult:
    oldest = pending["received_at"].min() if pending.height else None
    stale = oldest is not None and now - oldest > STALE_AFTER
    if oldest is None:
        finding = "no notification is pending"
    else:
        finding = (
            f"{pending.height} notifications pending, the oldest received {oldest:%Y-%m-%d %H:%M:%S} UTC"
        )
    metadata = {"pending": pending.height, "oldest_pending": str(oldest) if oldest else "none"}
    return NO_STALE_PENDING_EVENTS.result(not stale, finding, metadata)


def statuses_and_users_mapped(current: pl.DataFrame) -> dg.AssetCheckResult:
    unmapped = unmapped_values(current.filter(~pl.col("deleted")))
    by_location = {
        loc: sorted(f"{k}: {v}" for k, v in zip(g["kind"], g["value"], strict=True))
        for (loc,), g in unmapped.group_by("location_id", maintain_order=True)
    }
    text = "; ".join(f"{loc}: {', '.join(vals)}" for loc, vals in sorted(by_location.items()))
    finding = ("unmapped (kept raw, ours null) " + text) if text else "every stage and user is mapped"
    metadata = {"unmapped": dg.MetadataValue.json(by_location)}
    return STATUSES_AND_USERS_MAPPED.result(unmapped.is_empty(), finding, metadata)


def one_current_version(conn: sa.Connection) -> dg.AssetCheckResult:
    duplicates = conn.execute(
        sa.text(
            "SELECT count(*) FROM (SELECT location_id, work_order_id FROM work_order_snapshots "
            "WHERE valid_to IS NULL GROUP BY location_id, work_order_id HAVING count(*) > 1) d"
        )
    ).scalar()
    count = int(duplicates or 0)
    finding = (
        f"{count} work orders have two current rows" if count else "every work order has one current row"
    )
    return ONE_CURRENT_VERSION.result(count == 0, finding, {"work_orders_with_two_current_rows": count})


def packages_not_edited(edited: pl.DataFrame) -> dg.AssetCheckResult:
    named = [
        f"{r['location_id']} work order {r['work_order_number']} ({r['work_order_id']}): {r['description']!r}"
        for r in edited.iter_rows(named=True)
    ]
    if named:
        finding = "edited in Protractor after we wrote it, not overwritten: " + "; ".join(named)
    else:
        finding = "no package we wrote was edited in Protractor"
    metadata = {"edited_packages": edited.height}
    return PACKAGES_NOT_EDITED.result(edited.is_empty(), finding, metadata)
