"""The Xtime assets: `xtime/service_catalog`, `xtime/appointment_requests` (fed by every DMS source's
`service_requests`) and `xtime/bookings`, with their checks beside them."""

from datetime import UTC, datetime

import dagster as dg
import httpx
import polars as pl

from dealer_assets.core.asset_metadata import markdown_table, table_metadata
from dealer_assets.core.lineage import service_requests_key
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.warehouse import exclusive_lock
from dealer_assets.xtime import store
from dealer_assets.xtime.book_appointments import Booker
from dealer_assets.xtime.client import XtimeError
from dealer_assets.xtime.domain.enrollment import enrollment_states
from dealer_assets.xtime.intake import RequestPaths, ingest_files, ingest_service_requests
from dealer_assets.xtime.refresh_catalog import refresh_catalog
from dealer_assets.xtime.settings import XtimeSettings, settings_from_document
from dealer_assets.xtime.tables import appointment_requests as requests_table
from dealer_assets.xtime.tables import xtime_bookings as bookings_table
from dealer_assets.xtime.tables import xtime_services as services_table

from .checks import (
    BOOKINGS_CHECKS,
    OPCODE_IN_CATALOG,
    REQUEST_LINES_VALID,
    enrollment_checks,
    invalid_lines_check,
    opcode_check,
    unconfirmed_check,
)
from .resources import XtimeResource

GROUP = "xtime"
CATALOG_KEY = dg.AssetKey(["xtime", "service_catalog"])
REQUESTS_KEY = dg.AssetKey(["xtime", "appointment_requests"])
BOOKINGS_KEY = dg.AssetKey(["xtime", "bookings"])
PREVIEW = ("request_id", "origin", "dealership", "status", "reason", "earliest", "latest")
STATUSES = ("pending", "booked", "no_slot", "held_not_enrolled", "unconfirmed", "rejected", "invalid")


def _settings(dealer_env: DealerEnvironment) -> XtimeSettings:
    """The current file, so a run always uses what the operator last wrote (e.g. a new confirmation)."""
    settings = settings_from_document(dealer_env.settings_document(), dealer_env.settings_file)
    if settings is None:
        raise dg.Failure(f"{dealer_env.settings_file}: xtime: the key was removed; nothing to do")
    return settings


ACTION_FIGURES = {
    "book": "bookings_sent",
    "lookup": "lost_answers_looked_up",
    "unconfirm": "bookings_unconfirmed",
    "window_passed": "windows_passed",
    "hold": "requests_held",
    "wait_opcode": "requests_waiting_for_opcode",
    "none": "requests_unchanged",
}
"""What the run did to requests, by the booking plan's action, under names that say what they count."""


def run_summary(actions: dict[str, int]) -> dict[str, object]:
    """The run's figures, and a sentence saying so when it changed nothing (the latest figures of the asset
    then read as what they are, not as a run that booked nothing out of what there was to book)."""
    figures = {ACTION_FIGURES[k]: int(v) for k, v in sorted(actions.items()) if k in ACTION_FIGURES}
    changed = sum(v for k, v in actions.items() if k != "none")
    this_run = (
        f"{changed} request(s) acted on" if changed else "changed nothing: every request already settled"
    )
    return {"this_run": this_run, **figures}


def _status_counts(requests: pl.DataFrame) -> dict[str, int]:
    counts = dict(requests.group_by("status").len().iter_rows())
    return {f"status_{s}": int(counts.get(s, 0)) for s in STATUSES}


def _table_meta(table, rows: int) -> dict:
    return {**table_metadata(table), "dagster/row_count": rows}


@dg.asset(
    key=CATALOG_KEY,
    group_name=GROUP,
    kinds={"xtime", "sql"},
    metadata=table_metadata(services_table),
    check_specs=[OPCODE_IN_CATALOG.spec(CATALOG_KEY)],
    description="Each dealership's Xtime opcode catalog (one row per dealership and opcode), refreshed daily.",
)
def xtime_service_catalog(
    context: dg.AssetExecutionContext,
    dealer_env: DealerEnvironment,
    warehouse: WarehouseResource,
    xtime: XtimeResource,
) -> dg.MaterializeResult:
    """Dealership by dealership: one failure does not stop the others, and fails the run only for a confirmed
    dealership (Xtime may refuse one that has not opted in)."""
    settings = _settings(dealer_env)
    engine = warehouse.engine()
    enrollment = enrollment_states(settings, datetime.now(UTC))
    failed: dict[str, str] = {}
    with xtime.client() as client:
        for row in enrollment.to_dicts():
            try:
                refresh_catalog(engine, client, settings, datetime.now(UTC), row["dealership"])
            except (XtimeError, httpx.TransportError) as exc:
                failed[row["dealership"]] = f"{exc}" + ("" if row["confirmed"] else " (not confirmed yet)")
                context.log.warning(f"catalog of {row['dealership']}: {failed[row['dealership']]}")
    services = store.read_services(engine)
    confirmed_failures = [d for d in failed if enrollment.filter(pl.col("dealership") == d)["confirmed"][0]]
    if confirmed_failures:
        raise dg.Failure(
            f"catalog fetch failed for confirmed dealership(s): {', '.join(confirmed_failures)}",
            metadata={"failures": "; ".join(f"{k}: {v}" for k, v in sorted(failed.items()))},
        )
    per_dealer = services.group_by("dealership").len().sort("dealership")
    return dg.MaterializeResult(
        metadata={
            **_table_meta(services_table, services.height),
            "opcodes_per_dealership": markdown_table(per_dealer, 50),
            "fetch_failures": "; ".join(f"{k}: {v}" for k, v in sorted(failed.items())) or "none",
        },
        check_results=[opcode_check(enrollment, services)],
    )


def take_in_requests(dealer_env: DealerEnvironment, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The body of `xtime/appointment_requests`: new request files, then newly eligible service requests."""
    settings = _settings(dealer_env)
    now = datetime.now(UTC)
    engine = warehouse.engine()
    files = ingest_files(engine, settings, RequestPaths(dealer_env.paths().data_dir), now)
    from_srs = ingest_service_requests(engine, settings, store.read_service_requests(engine, settings), now)
    requests = store.read_requests(engine)
    return dg.MaterializeResult(
        metadata={
            **_table_meta(requests_table, requests.height),
            "files": files.height,
            "new_from_files": int(files["added"].sum() or 0),
            "invalid_lines_in_new_files": int(files["invalid"].sum() or 0),
            "new_from_service_requests": from_srs,
            **_status_counts(requests),
            "files_received": markdown_table(files, 20),
            "latest_requests": markdown_table(requests.select(PREVIEW).sort("request_id").tail(10), 10),
        },
        check_results=[invalid_lines_check(requests)],
    )


def build_requests_asset(sources: list[str]) -> dg.AssetsDefinition:
    """Depends on each DMS source's `service_requests` by key only (areas never import each other)."""

    @dg.asset(
        key=REQUESTS_KEY,
        group_name=GROUP,
        kinds={"sql", "filesystem"},
        deps=[service_requests_key(source) for source in sources],
        metadata=table_metadata(requests_table),
        check_specs=[REQUEST_LINES_VALID.spec(REQUESTS_KEY)],
        description="Appointment requests from request files and from service requests of bookable types.",
    )
    def appointment_requests(
        context: dg.AssetExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        return take_in_requests(dealer_env, warehouse)

    return appointment_requests


@dg.asset(
    key=BOOKINGS_KEY,
    group_name=GROUP,
    kinds={"xtime", "sql"},
    deps=[REQUESTS_KEY, CATALOG_KEY],
    metadata=table_metadata(bookings_table),
    check_specs=[check.spec(BOOKINGS_KEY) for check in BOOKINGS_CHECKS],
    description="Each request's booking in Xtime, made at most once: attempt recorded first, lost answers "
    "looked up by VIN and label.",
)
def xtime_bookings(
    context: dg.AssetExecutionContext,
    dealer_env: DealerEnvironment,
    warehouse: WarehouseResource,
    xtime: XtimeResource,
) -> dg.MaterializeResult:
    settings = _settings(dealer_env)
    engine = warehouse.engine()
    with xtime.client() as client, exclusive_lock(engine, dealer_env.paths().locks, "xtime_bookings"):
        result = Booker(engine, client, settings).run()
    requests = store.read_requests(engine)
    bookings = store.read_bookings(engine)
    if result.errors:
        raise dg.Failure(
            f"{len(result.errors)} request(s) could not be completed this run and stay pending; the next run "
            "resumes them (a lost answer is looked up, never re-sent)",
            metadata={"errors": "; ".join(result.errors[:20]), **_status_counts(requests)},
        )
    return dg.MaterializeResult(
        metadata={
            **_table_meta(bookings_table, bookings.height),
            **run_summary(result.actions),
            **_status_counts(requests),
            "xtime_calls": client.stats.calls,
            "limiter_wait_seconds": round(client.stats.limiter_wait_seconds, 3),
            "latest_bookings": markdown_table(
                bookings.sort("booked_at", "request_id").tail(10).drop("booked_at", "attempt_no"), 10
            ),
        },
        check_results=[
            *enrollment_checks(enrollment_states(settings, datetime.now(UTC))),
            unconfirmed_check(requests),
        ],
    )
