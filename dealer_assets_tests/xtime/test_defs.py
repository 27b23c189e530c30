"""The Xtime area in Dagster: real runs of its jobs against the fake over loopback, on SQLite and PostgreSQL;
metadata, checks, lineage, the sensor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from dealer_assets.core.defs import build_core_defs
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.warehouse import engine_for
from dealer_assets.xtime import store
from dealer_assets.xtime.defs import build_defs
from dealer_assets.xtime.defs.assets import xtime_service_catalog
from dealer_assets.xtime.defs.jobs import BOOKINGS_JOB, CATALOG_JOB
from dealer_assets.xtime.intake import RequestPaths
from dealer_assets.xtime.settings import load_xtime_settings
from dealer_assets_tests.support import BASIC_SETTINGS, make_root
from dealer_assets_tests.xtime.support import (
    CREDENTIALS,
    REQUEST,
    control,
    days_ahead,
    make_resource,
    settings_document,
)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def upcoming(**changes: str) -> dict:
    """REQUEST dated ahead of the wall clock, which the assets book under."""
    return REQUEST | {"earliest": days_ahead()} | changes


@pytest.fixture
def area(tmp_path, fake, warehouse_url, monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    root = make_root(tmp_path, warehouse_url)
    document = yaml.safe_load(BASIC_SETTINGS) | settings_document(fake.url)
    now = datetime.now(UTC)
    d = document["xtime"]["dealerships"]
    d["d300"]["invitation"]["issued_at"] = iso(now - timedelta(hours=80))  # expired
    completed_2h_ago = {
        "issued_at": iso(now - timedelta(hours=26)),
        "completed_at": iso(now - timedelta(hours=2)),
        "confirmed_at": None,
    }
    d["d200"]["invitation"].update(completed_2h_ago)  # awaiting confirmation, within 24 h
    root.settings(yaml.safe_dump(document))
    env = root.dealer_env()
    return root, dg.Definitions.merge(build_core_defs(env), build_defs(env))


def run(defs: dg.Definitions, job: str) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.asset_check_key.name: c for c in result.get_asset_check_evaluations()}


def materialization(result: dg.ExecuteInProcessResult, key: str) -> dict:
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key == dg.AssetKey(["xtime", key])
    ]
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


@pytest.mark.slow
def test_catalog_then_requests_then_bookings_with_metadata_and_checks(area, fake):
    root, defs = area
    incoming = RequestPaths(root.paths.data_dir).incoming
    incoming.mkdir(parents=True)
    (incoming / "web.jsonl").write_text(
        json.dumps(upcoming())
        + "\n"
        + json.dumps(upcoming(request_id="web-2", dealership="d200"))
        + "\nnope\n"
    )

    catalog = run(defs, CATALOG_JOB)
    assert catalog.success
    meta = materialization(catalog, "service_catalog")
    assert meta["dagster/table_name"] == "xtime_services" and meta["dagster/row_count"] > 0
    assert "opcode" in {c.name for c in meta["dagster/column_schema"].columns}
    opcode = checks(catalog)["opcode_in_catalog"]
    assert not opcode.passed
    assert "d200: opcode 'DataClover Appt' is not in its Xtime catalog" in opcode.description

    booking = run(defs, BOOKINGS_JOB)
    assert booking.success
    requests_meta = materialization(booking, "appointment_requests")
    assert (requests_meta["dagster/row_count"], requests_meta["new_from_files"]) == (3, 3)
    assert requests_meta["dagster/table_name"] == "appointment_requests"
    bookings_meta = materialization(booking, "bookings")
    assert bookings_meta["dagster/row_count"] == 1 and bookings_meta["status_booked"] == 1
    assert bookings_meta["dagster/table_name"] == "xtime_bookings"
    result = checks(booking)
    assert not result["invitation_not_expired"].passed
    assert "d300: invitation CC33" in result["invitation_not_expired"].description
    assert "a new invitation code is needed" in result["invitation_not_expired"].description
    confirmed = result["enrollment_confirmed_within_24h"]
    assert not confirmed.passed and confirmed.severity == dg.AssetCheckSeverity.WARN
    assert "d200: opt-in completed" in confirmed.description
    assert result["no_unconfirmed_bookings"].passed
    assert not result["request_lines_valid"].passed
    rows = dict(
        store.read_requests(engine_for(root.paths.warehouse_url)).select("request_id", "status").rows()
    )
    assert rows == {"web-1": "booked", "web-2": "held_not_enrolled", "web.jsonl#3": "invalid"}

    again = run(defs, BOOKINGS_JOB)
    assert again.success and fake.state.calls["/service/appointments-bookings"] == 1


@pytest.mark.slow
def test_overdue_confirmation_fails_and_an_unconfirmed_booking_is_listed(area, fake):
    root, _ = area
    document = yaml.safe_load(root.paths.settings_file.read_text())
    d200 = document["xtime"]["dealerships"]["d200"]
    d200["invitation"]["issued_at"] = iso(datetime.now(UTC) - timedelta(hours=32))
    d200["invitation"]["completed_at"] = iso(datetime.now(UTC) - timedelta(hours=30))
    root.settings(yaml.safe_dump(document))
    defs = dg.Definitions.merge(build_core_defs(root.dealer_env()), build_defs(root.dealer_env()))
    incoming = RequestPaths(root.paths.data_dir).incoming
    incoming.mkdir(parents=True)
    (incoming / "web.jsonl").write_text(
        json.dumps({k: v for k, v in upcoming().items() if k != "vin"}) + "\n"
    )
    assert run(defs, CATALOG_JOB).success
    control(fake, "failures", {"kind": "lost_error", "path": "/service/appointments-bookings"})
    result = checks(run(defs, BOOKINGS_JOB))
    overdue = result["enrollment_confirmed_within_24h"]
    assert not overdue.passed and overdue.severity == dg.AssetCheckSeverity.ERROR
    assert "has not confirmed it within 24 hours" in overdue.description
    unconfirmed = result["no_unconfirmed_bookings"]
    assert not unconfirmed.passed and "web-1" in unconfirmed.description


@pytest.mark.slow
def test_service_requests_of_bookable_types_become_requests(area, fake):
    root, defs = area
    engine = engine_for(root.paths.warehouse_url)
    table = sa.Table("service_request_state", sa.MetaData(), autoload_with=engine)  # behind the DMS view
    now = datetime.now(UTC)
    base = {
        "source": "generic",
        "vin": "1FTFW1E50NFA00002",
        "dealer_id": "D100",
        "client": "Client One",
        "stock_no": "S1",
        "vehicle_type": "Used",
        "status": "active",
        "created_at": now,
        "updated_at": now,
    }
    with engine.begin() as conn:
        conn.execute(
            table.insert(),
            [
                base | {"sr_id": "sr1", "service_request_type": "Mechanical Recon"},
                base | {"sr_id": "sr2", "service_request_type": "Used Recon", "vin": "1FTFW1E50NFA00003"},
            ],
        )
    assert run(defs, CATALOG_JOB).success
    assert run(defs, BOOKINGS_JOB).success
    rows = store.read_requests(engine)
    assert rows.select("request_id", "origin", "status").rows() == [("sr-sr1", "service_request", "booked")]
    assert [a["label"] for a in fake.state.appointments] == ["sr-sr1"]


def test_lineage_from_service_requests_to_bookings(area):
    _, defs = area
    graph = defs.resolve_asset_graph()
    requests = graph.get(dg.AssetKey(["xtime", "appointment_requests"]))
    bookings = graph.get(dg.AssetKey(["xtime", "bookings"]))
    assert dg.AssetKey(["dms", "generic", "service_requests"]) in requests.parent_keys
    assert {dg.AssetKey(["xtime", "appointment_requests"]), dg.AssetKey(["xtime", "service_catalog"])} == set(
        bookings.parent_keys
    )


@pytest.mark.slow
def test_the_sensor_asks_for_a_run_when_a_request_file_arrives_and_when_a_dealership_is_confirmed(area):
    root, defs = area
    sensor = defs.resolve_sensor_def("xtime_requests_sensor")

    def evaluate() -> list[str]:
        resources = {
            "dealer_env": DealerEnvironment.of(root.paths),
            "warehouse": WarehouseResource(url=root.paths.warehouse_url),
        }
        ctx = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), resources=resources)
        result = sensor(ctx)
        return [] if isinstance(result, dg.SkipReason) else sorted(r.job_name for r in result)

    assert evaluate() == [CATALOG_JOB]
    incoming = RequestPaths(root.paths.data_dir).incoming
    incoming.mkdir(parents=True)
    (incoming / "web.jsonl").write_text(json.dumps(upcoming(dealership="d200")) + "\n")
    assert evaluate() == [CATALOG_JOB]  # bookings wait for the catalog
    assert run(defs, CATALOG_JOB).success
    assert evaluate() == [BOOKINGS_JOB]
    assert run(defs, BOOKINGS_JOB).success
    assert evaluate() == []  # the request is held: d200 is not confirmed
    document = yaml.safe_load(root.paths.settings_file.read_text())
    invitation = document["xtime"]["dealerships"]["d200"]["invitation"]
    invitation["confirmed_at"] = iso(datetime.now(UTC))
    document["xtime"]["dealerships"]["d200"]["opcode"] = "Tell Us More"
    root.settings(yaml.safe_dump(document))
    assert evaluate() == [BOOKINGS_JOB]


def test_the_catalog_asset_through_materialize(area, fake):
    root, _ = area
    settings = load_xtime_settings(root.paths.settings_file)
    result = dg.materialize(
        [xtime_service_catalog],
        resources={
            "dealer_env": DealerEnvironment.of(root.paths),
            "warehouse": WarehouseResource(url=root.paths.warehouse_url),
            "xtime": make_resource(settings),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    meta = materialization(result, "service_catalog")
    assert meta["dagster/row_count"] == 12  # three dealerships, four published services each
    services = store.read_services(engine_for(root.paths.warehouse_url))
    assert services.filter(services["dealership"] == "d100")["opcode"].sort().to_list() == [
        "LOF",
        "MPI",
        "ROT",
        "TUM",
    ]
