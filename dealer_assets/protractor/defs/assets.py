"""Protractor's assets: `protractor_events` -> `work_order_snapshots` + `work_order_lines` ->
`service_request_work_orders` (which also depends on every DMS source's `service_requests`)."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from dealer_assets.core.asset_metadata import table_metadata
from dealer_assets.core.lineage import service_requests_key
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.timeutil import parse_utc
from dealer_assets.protractor import store, sync
from dealer_assets.protractor import tables as t
from dealer_assets.protractor.defs.checks import (
    NO_STALE_PENDING_EVENTS,
    ONE_CURRENT_VERSION,
    PACKAGES_NOT_EDITED,
    STATUSES_AND_USERS_MAPPED,
    one_current_version,
    packages_not_edited,
    stale_pending_events,
    statuses_and_users_mapped,
)
from dealer_assets.protractor.defs.resources import ProtractorResource, sync_context
from dealer_assets.protractor.write_back import edited, send_packages

GROUP = "protractor"
TABLES_GROUP = "protractor_tables"
"""Bookkeeping tables, one click away from the business chain of the area's own group."""
EVENTS = dg.AssetKey(["protractor", "protractor_events"])
SNAPSHOTS = dg.AssetKey(["protractor", "work_order_snapshots"])
LINES = dg.AssetKey(["protractor", "work_order_lines"])
LINKS = dg.AssetKey(["protractor", "service_request_work_orders"])
WORK_ORDERS_OP = "protractor_work_orders"
"""The multi-asset's op: its name is the key of the run config (`ops: {protractor_work_orders: ...}`)."""


class ProtractorRun(dg.Config):
    """`events` processes pending notifications; `sweep` lists what changed since the last sweep (or `since`)."""

    mode: str = "events"
    since: str | None = None
    locations: list[str] = []

    def since_at(self) -> datetime | None:
        return parse_utc(self.since, key="since", origin="run config") if self.since else None


def run_figures(conn: sa.Connection, table: sa.Table, **figures: object) -> dict[str, object]:
    """A materialization's metadata: the table, its row count now, and what this run did."""
    rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0
    return {
        **table_metadata(table),
        "dagster/row_count": dg.MetadataValue.int(rows),
        **{k: dg.MetadataValue.int(v) if isinstance(v, int) else v for k, v in figures.items()},
    }


@dg.asset(
    key=EVENTS,
    metadata=table_metadata(t.protractor_events),
    group_name=GROUP,
    kinds={"sql"},
    description="Protractor's change notifications as the receiver journaled them, deduplicated.",
    check_specs=[NO_STALE_PENDING_EVENTS.spec(EVENTS)],
)
def protractor_events(
    dealer_env: DealerEnvironment, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    engine, data_dir = warehouse.engine(), Path(dealer_env.data_dir)
    with sync.lock(engine, data_dir):
        loaded = sync.load_journal(engine, data_dir)
    with engine.connect() as conn:
        pending = store.pending_events(conn)
        meta = run_figures(conn, t.protractor_events, loaded=loaded, pending=pending.height)
    yield dg.MaterializeResult(asset_key=EVENTS, metadata=meta)
    yield stale_pending_events(pending, sync.utc_now())


@dg.multi_asset(
    name=WORK_ORDERS_OP,
    specs=[
        dg.AssetSpec(
            SNAPSHOTS,
            metadata=table_metadata(t.work_order_snapshots),
            deps=[EVENTS],
            group_name=GROUP,
            kinds={"sql"},
            description="Every version of every work order, valid_from/valid_to; current: valid_to null.",
        ),
        dg.AssetSpec(
            LINES,
            metadata=table_metadata(t.work_order_lines),
            deps=[SNAPSHOTS],
            group_name=TABLES_GROUP,
            kinds={"sql"},
            description="Every version of every work-order line (packages, labor, parts), written with the "
            "snapshots by the same step.",
        ),
    ],
    check_specs=[STATUSES_AND_USERS_MAPPED.spec(SNAPSHOTS), ONE_CURRENT_VERSION.spec(SNAPSHOTS)],
)
def protractor_work_orders(
    context: dg.AssetExecutionContext,
    config: ProtractorRun,
    dealer_env: DealerEnvironment,
    warehouse: WarehouseResource,
    protractor: ProtractorResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    ctx = sync_context(dealer_env, warehouse, protractor)
    outcome = sync.process_events(ctx)
    if config.mode == "sweep":
        outcome.merge(sync.sweep(ctx, since=config.since_at(), locations=config.locations or None))
    context.log.debug(f"protractor {config.mode}: {outcome.per_location}")
    yield from work_order_results(ctx.engine, outcome)


def work_order_results(
    engine: sa.Engine, outcome: sync.Outcome
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    with engine.connect() as conn:
        current = store.current_snapshots(conn)
        snapshots = run_figures(
            conn,
            t.work_order_snapshots,
            versions_written=outcome.snapshots_written,
            versions_superseded=outcome.closed,
            work_orders_fetched=outcome.fetched,
            notifications_processed=outcome.events_processed,
        )
        lines = run_figures(conn, t.work_order_lines, versions_written=outcome.lines_written)
        one_current = one_current_version(conn)
    yield dg.MaterializeResult(asset_key=SNAPSHOTS, metadata=snapshots)
    yield dg.MaterializeResult(asset_key=LINES, metadata=lines)
    yield statuses_and_users_mapped(current)
    yield one_current


def link_work_orders(ctx: sync.SyncContext) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Rebuild the links, then add or update the packages of locations that write back."""
    with sync.lock(ctx.engine, ctx.data_dir):
        links = sync.refresh_links(ctx.engine)
    written = send_packages(ctx)
    linked = int(links["sr_id"].is_not_null().sum())
    with ctx.engine.connect() as conn:
        meta = run_figures(
            conn,
            t.service_request_work_orders,
            linked=linked,
            packages_added=written.added,
            packages_updated=written.updated,
        )
    yield dg.MaterializeResult(asset_key=LINKS, metadata=meta)
    yield packages_not_edited(edited(ctx))


def build_links_asset(dms_sources: list[str]) -> dg.AssetsDefinition:
    """The links depend on the `service_requests` of every DMS source of the settings file."""

    @dg.asset(
        key=LINKS,
        metadata=table_metadata(t.service_request_work_orders),
        deps=[SNAPSHOTS, *[service_requests_key(s) for s in dms_sources]],
        group_name=GROUP,
        kinds={"sql"},
        description="Each current work order and the DMS service request of its VIN (active, else the latest). "
        "Locations with write_back add a package for an active one and keep its stock number and client "
        "current (protractor_write_back_log records each write).",
        check_specs=[PACKAGES_NOT_EDITED.spec(LINKS)],
    )
    def service_request_work_orders(
        dealer_env: DealerEnvironment, warehouse: WarehouseResource, protractor: ProtractorResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        yield from link_work_orders(sync_context(dealer_env, warehouse, protractor))

    return service_request_work_orders


def build_assets(dms_sources: list[str]) -> list[dg.AssetsDefinition]:
    return [protractor_events, protractor_work_orders, build_links_asset(dms_sources)]
