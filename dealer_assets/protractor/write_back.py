"""Write-back (`write_back: true` per location): the package each linked work order carries for its active
service request, added once and kept current when the request's stock number or client changes.

Every write is recorded in `protractor_write_back_log` before it is sent (what is sent and when) and again
when Protractor answers (the status and the start of the answer), each in a transaction of its own. The
package and line GUIDs come from our ids, so a killed run's retry sends the same package, which Protractor
upserts: it is never added twice, and a write that was answered is not sent again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from dealer_assets.protractor import store
from dealer_assets.protractor import tables as t
from dealer_assets.protractor.client import ProtractorClient, ProtractorError
from dealer_assets.protractor.domain.links import LINK_SCHEMA
from dealer_assets.protractor.domain.write_back import edited_packages, package_payload, plan_write_back
from dealer_assets.protractor.sync import SyncContext, lock

ANSWER_CHARS = 500


@dataclass
class WriteOutcome:
    added: int = 0
    updated: int = 0
    edited: int = 0
    """Packages edited in Protractor after we wrote them: left as they are."""

    @property
    def sent(self) -> int:
        return self.added + self.updated


def _enabled(ctx: SyncContext) -> list[str]:
    return [loc for loc, s in ctx.settings.locations.items() if s.write_back]


def edited(ctx: SyncContext) -> pl.DataFrame:
    """The packages we wrote that someone edited in Protractor since, with their work order's number."""
    with ctx.engine.connect() as conn:
        return edited_packages(
            store.write_log(conn), store.current_lines(conn), store.current_snapshots(conn)
        )


def send_packages(ctx: SyncContext) -> WriteOutcome:
    """Add or update the packages of locations that write back, as `plan_write_back` says."""
    enabled = _enabled(ctx)
    outcome = WriteOutcome()
    if not enabled:
        return outcome
    with lock(ctx.engine, ctx.data_dir):
        with ctx.engine.connect() as conn:
            links = store.all_rows(conn, t.service_request_work_orders, LINK_SCHEMA)
            log, lines = store.write_log(conn), store.current_lines(conn)
            plan = plan_write_back(links, store.service_requests(conn), lines, log, enabled)
        outcome.edited = edited(ctx).filter(pl.col("location_id").is_in(enabled)).height
        for location_id in plan["location_id"].unique().sort().to_list():
            with ctx.client_for(location_id) as client:
                for row in plan.filter(pl.col("location_id") == location_id).iter_rows(named=True):
                    _send(ctx, client, row)
                    if row["action"] == "add":
                        outcome.added += 1
                    else:
                        outcome.updated += 1
    return outcome


def _send(ctx: SyncContext, client: ProtractorClient, row: dict) -> None:
    """Record the write, POST it, record the answer; a failed write is recorded, then fails the run."""
    body = package_payload(row)
    with ctx.engine.begin() as conn:
        if row["action"] == "add":
            store.record_write_back(conn, row, ctx.now())
        attempt = store.record_write(conn, row, json.dumps(body, sort_keys=True), ctx.now())
    try:
        response = client.post_work_order(row["work_order_id"], body)
    except ProtractorError as exc:
        with ctx.engine.begin() as conn:
            store.record_answer(conn, row["package_id"], attempt, ctx.now(), None, str(exc)[:ANSWER_CHARS])
        raise
    with ctx.engine.begin() as conn:
        answer = response.text[:ANSWER_CHARS]
        store.record_answer(conn, row["package_id"], attempt, ctx.now(), response.status_code, answer)
        if row["action"] == "add" and response.status_code < 400:
            store.mark_sent(conn, row["package_id"], ctx.now())
