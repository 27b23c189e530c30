"""Protractor's assets: `protractor_events` -> `work_order_snapshots` + `work_order_lines` ->
`service_request_work_orders` (which also depends on every DMS source's `service_requests`)."""

import dagster as dg
import polars as pl
import sqlalchemy as sa

from dealer_assets.core.asset_metadata import column_schema
from dealer_assets.core.lineage import service_requests_key
from dealer_assets.protractor import store, sync
from dealer_assets.protractor import tables as t
from dealer_assets.protractor.defs.support import ProtractorRun, runtime
from dealer_assets.protractor.domain.workorders import unmapped_values
from dealer_assets.protractor.settings import ProtractorSettings

GROUP = "protractor"
EVENTS = dg.AssetKey(["protractor", "protractor_events"])
SNAPSHOTS = dg.AssetKey(["protractor", "work_order_snapshots"])
LINES = dg.AssetKey(["protractor", "work_order_lines"])
LINKS = dg.AssetKey(["protractor", "service_request_work_orders"])


def table_metadata(conn: sa.Connection, table: sa.Table, **extra: object) -> dict:
    rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0
    return {
        "dagster/row_count": dg.MetadataValue.int(rows),
        "dagster/table_name": dg.MetadataValue.text(table.name),
        "dagster/column_schema": column_schema(table),
        **{k: dg.MetadataValue.int(v) if isinstance(v, int) else v for k, v in extra.items()},
    }


def build_assets(settings: ProtractorSettings, dms_sources: list[str], resource_keys: set[str]) -> list:
    @dg.asset(
        key=EVENTS,
        group_name=GROUP,
        kinds={"sql"},
        required_resource_keys=resource_keys,
        description="Protractor's change notifications as the receiver journaled them, deduplicated.",
        check_specs=[dg.AssetCheckSpec("no_stale_pending_events", asset=EVENTS)],
    )
    def protractor_events(context: dg.AssetExecutionContext):
        rt = runtime(context, settings)
        with sync.lock(rt.engine, rt.data_dir):
            loaded = sync.load_journal(rt.engine, rt.data_dir)
        with rt.engine.connect() as conn:
            pending = store.pending_events(conn)
            meta = table_metadata(conn, t.protractor_events, loaded=loaded, pending=pending.height)
        yield dg.MaterializeResult(asset_key=EVENTS, metadata=meta)
        oldest = pending["received_at"].min() if pending.height else None
        stale = oldest is not None and (sync.utc_now() - oldest).total_seconds() > 3600
        yield dg.AssetCheckResult(
            asset_key=EVENTS, check_name="no_stale_pending_events", passed=not stale,
            severity=dg.AssetCheckSeverity.WARN,
            description="Notifications should not wait over an hour to be processed.",
            metadata={"pending": pending.height, "oldest_pending": str(oldest) if oldest else "none"},
        )  # fmt: skip

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                SNAPSHOTS,
                deps=[EVENTS],
                group_name=GROUP,
                kinds={"sql"},
                description="Every version of every work order, valid_from/valid_to; current: valid_to null.",
            ),
            dg.AssetSpec(
                LINES,
                deps=[EVENTS],
                group_name=GROUP,
                kinds={"sql"},
                description="Every version of every work-order line.",
            ),
        ],  # fmt: skip
        check_specs=[
            dg.AssetCheckSpec(
                "statuses_and_users_mapped",
                asset=SNAPSHOTS,
                description="Protractor stages and users without a mapping, per location.",
            ),
            dg.AssetCheckSpec("one_current_version", asset=SNAPSHOTS),
        ],  # fmt: skip
        required_resource_keys=resource_keys,
        name="protractor_work_orders",
    )
    def work_orders(context: dg.AssetExecutionContext, config: ProtractorRun):
        rt = runtime(context, settings)
        outcome = sync.process_events(rt.engine, settings, rt.client_for, rt.data_dir, sync.utc_now)
        if config.mode == "sweep":
            swept = sync.sweep(rt.engine, settings, rt.client_for, rt.data_dir, sync.utc_now,
                               history_start=rt.history_start, since=config.since_at(),
                               locations=config.locations or None)  # fmt: skip
            outcome.merge(swept)
        context.log.info(f"protractor {config.mode}: {outcome.per_location}")
        yield from results(rt.engine, outcome)

    @dg.asset(
        key=LINKS,
        deps=[SNAPSHOTS, *[service_requests_key(s) for s in dms_sources]],
        group_name=GROUP,
        kinds={"sql"},
        required_resource_keys=resource_keys,
        description="Each current work order and the DMS service request of its VIN (active, else the latest). "
        "Locations with write_back add a package for an active one.",
    )
    def service_request_work_orders(context: dg.AssetExecutionContext):
        rt = runtime(context, settings)
        with sync.lock(rt.engine, rt.data_dir):
            links = sync.refresh_links(rt.engine)
        sent = sync.write_back(rt.engine, settings, rt.client_for, rt.data_dir, sync.utc_now)
        with rt.engine.connect() as conn:
            meta = table_metadata(conn, t.service_request_work_orders, linked=links["sr_id"].is_not_null().sum(),
                                  packages_sent=sent)  # fmt: skip
        return dg.MaterializeResult(metadata=meta)

    return [protractor_events, work_orders, service_request_work_orders]


def results(engine: sa.Engine, outcome: sync.Outcome):  # noqa: ANN201
    with engine.connect() as conn:
        current = store.current_snapshots(conn)
        yield dg.MaterializeResult(
            asset_key=SNAPSHOTS,
            metadata=table_metadata(
                conn,
                t.work_order_snapshots,
                written=outcome.snapshots_written,
                closed=outcome.closed,
                fetched=outcome.fetched,
                events_processed=outcome.events_processed,
            ),  # fmt: skip
        )
        yield dg.MaterializeResult(asset_key=LINES, metadata=table_metadata(conn, t.work_order_lines,
                                                                           written=outcome.lines_written))  # fmt: skip
        duplicates = conn.execute(sa.text(
            "SELECT count(*) FROM (SELECT location_id, work_order_id FROM work_order_snapshots "
            "WHERE valid_to IS NULL GROUP BY location_id, work_order_id HAVING count(*) > 1) d"
        )).scalar()  # fmt: skip
    unmapped = unmapped_values(current.filter(~pl.col("deleted")))
    by_location = {
        loc: sorted(f"{k}: {v}" for k, v in zip(g["kind"], g["value"], strict=True))
        for (loc,), g in unmapped.group_by("location_id", maintain_order=True)
    }
    text = "; ".join(f"{loc}: {', '.join(vals)}" for loc, vals in sorted(by_location.items()))
    yield dg.AssetCheckResult(
        asset_key=SNAPSHOTS, check_name="statuses_and_users_mapped", passed=unmapped.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        description=("unmapped (kept raw, ours null) " + text) if text else "every stage and user is mapped",
        metadata={"unmapped": dg.MetadataValue.json(by_location)},
    )  # fmt: skip
    yield dg.AssetCheckResult(
        asset_key=SNAPSHOTS, check_name="one_current_version", passed=duplicates == 0,
        metadata={"work_orders_with_two_current_rows": int(duplicates or 0)},
    )  # fmt: skip
