"""Pure domain: flattening, local time -> UTC across DST, mapping, SCD2 versions, SR links, write-back plan."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import polars as pl

from dealer_assets.protractor.domain.events import new_events, to_refetch, work_order_batch
from dealer_assets.protractor.domain.links import SR_SCHEMA, link_service_requests, package_guid
from dealer_assets.protractor.domain.versions import (
    DELETE_SCHEMA,
    LINE_SCHEMA,
    SNAPSHOT_SCHEMA,
    next_versions,
)
from dealer_assets.protractor.domain.workorders import (
    REF_SCHEMA,
    apply_mappings,
    flatten,
    local_to_utc,
    read_documents,
    references,
    unmapped_values,
)
from dealer_assets.protractor.domain.write_back import (
    WRITE_SCHEMA,
    edited_packages,
    package_payload,
    plan_write_back,
)
from dealer_assets.protractor.settings import LocationSettings

ZONE = "America/Chicago"
WO = "3F2504E0-4F89-41D3-9A0C-0305E82C3301"
VIN = "1FTFW1E50NFA00001"


def order(modified: str, stage: str = "Work In Progress", qty: float = 1.0, extra_line: bool = False) -> dict:
    lines = [
        {
            "ID": "AAAA0000-0000-4000-8000-000000000001",
            "Type": "Labor",
            "Description": "Brakes",
            "Quantity": qty,
            "Price": 100.0,
            "Total": 100.0 * qty,
            "PartNumber": None,
            "Completed": False,
            "Technician": "Chris Olsen",
        }
    ]
    if extra_line:
        lines.append(
            {
                "ID": "AAAA0000-0000-4000-8000-000000000002",
                "Type": "Part",
                "Description": "Pads",
                "Quantity": 1,
                "Price": 50,
                "Total": 50,
                "PartNumber": "BP-1",
                "Completed": False,
            }
        )
    return {
        "ID": WO,
        "WorkOrderNumber": 1001,
        "Type": "WorkOrder",
        "WorkflowStage": stage,
        "Completed": False,
        "ServiceItem": {"ID": "x", "VIN": VIN.lower()},
        "Header": {
            "CreationTime": "2026-11-16T08:00:00",
            "LastModifiedTime": modified,
            "ServiceAdvisor": "Dana Smith",
        },
        "ServicePackages": {
            "ItemCollection": [
                {
                    "ID": "BBBB0000-0000-4000-8000-000000000001",
                    "ServicePackageHeader": {"Title": "Brakes", "Description": ""},
                    "ServicePackageLines": {"ItemCollection": lines},
                }
            ]
        },
    }


def fetched(*docs: dict, observed: str = "2026-11-20T00:00:00+00:00") -> tuple[pl.DataFrame, pl.DataFrame]:
    raw = b"".join((json.dumps({**d, "observed_at": observed}) + "\n").encode() for d in docs)
    return flatten(read_documents(raw), "north", ZONE)


def empty_state() -> dict[str, pl.DataFrame]:
    return {"snapshots": pl.DataFrame(schema=SNAPSHOT_SCHEMA), "lines": pl.DataFrame(schema=LINE_SCHEMA)}


def apply(state: dict, docs: list[dict], deletes: list[tuple[str, datetime]] = ()) -> dict:
    """Run one batch and fold its result into `state` the way the warehouse write does."""
    snap, lines = fetched(*docs) if docs else fetched()
    dels = pl.DataFrame([("north", w.lower(), t) for w, t in deletes], schema=DELETE_SCHEMA, orient="row")
    current = state["snapshots"].filter(pl.col("valid_to").is_null())
    current_lines = state["lines"].filter(pl.col("valid_to").is_null())
    out = next_versions(current, snap, dels, current_lines, lines)
    closed = out["closed"].rename({"valid_to": "_to"})
    snaps = state["snapshots"].join(closed, on=["location_id", "work_order_id", "valid_from"], how="left")
    snaps = snaps.with_columns(pl.coalesce("_to", "valid_to").alias("valid_to")).drop("_to")
    closed_lines = out["closed_lines"].rename({"valid_to": "_to"})
    lns = state["lines"].join(
        closed_lines, on=["location_id", "work_order_id", "line_id", "valid_from"], how="left"
    )
    lns = lns.with_columns(pl.coalesce("_to", "valid_to").alias("valid_to")).drop("_to")
    return {
        "snapshots": pl.concat([snaps, out["snapshots"]]).sort("valid_from"),
        "lines": pl.concat([lns, out["lines"]]).sort("line_id", "valid_from"),
        "written": out["snapshots"].height
        + out["lines"].height
        + out["closed"].height
        + out["closed_lines"].height,
    }


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_flatten_shapes_and_conversion() -> None:
    snap, lines = fetched(order("2026-11-16T09:30:00", extra_line=True))
    row = snap.row(0, named=True)
    assert row["work_order_id"] == WO.lower() and row["vin"] == VIN and row["work_order_number"] == 1001
    assert row["modified_time"] == utc(2026, 11, 16, 15, 30)  # CST = UTC-6
    assert row["protractor_technician"] == "Chris Olsen"
    assert lines.height == 2 and lines["package_title"].to_list() == ["Brakes", "Brakes"]
    assert lines.filter(pl.col("line_type") == "Part")["part_number"].item() == "BP-1"


def test_local_times_across_dst() -> None:
    values = [
        "2026-03-08T01:59:00",
        "2026-03-08T02:30:00",
        "2026-03-08T03:00:00",
        "2026-11-01T01:30:00",
        "2026-11-01T02:00:00",
        "2026-07-01T12:00:00.250",
        "0001-01-01T00:00:00",
        "",
        None,
    ]
    got = pl.DataFrame({"t": values}).select(local_to_utc(pl.col("t"), ZONE).alias("t"))["t"].to_list()
    assert got == [
        utc(2026, 3, 8, 7, 59),  # CST
        utc(2026, 3, 8, 8, 30),  # inside the gap: moved forward, as zoneinfo fold=0
        utc(2026, 3, 8, 8, 0),  # CDT
        utc(2026, 11, 1, 6, 30),  # ambiguous: first occurrence (CDT)
        utc(2026, 11, 1, 8, 0),  # CST
        datetime(2026, 7, 1, 17, 0, 0, 250000, tzinfo=UTC),
        None,
        None,
        None,
    ]


def test_status_and_user_mapping_with_unmapped_values() -> None:
    location = LocationSettings(
        name="N",
        time_zone=ZONE,
        connection_id_env="A",
        api_key_env="B",
        status_map={"work in progress": "WIP"},
        user_map={"dana smith": "dana.smith"},
    )
    docs = [
        order("2026-11-16T09:30:00"),
        {**order("2026-11-16T09:30:00", stage="Waiting On Sublet"), "ID": "C" * 8 + WO[8:]},
        {**order("2026-11-16T09:30:00", stage="InspectionCompleted"), "ID": "D" * 8 + WO[8:]},
    ]
    snap, _ = fetched(*docs)
    mapped = apply_mappings(snap, location.effective_status_map(), location.effective_user_map())
    assert dict(zip(mapped["protractor_stage"], mapped["status"], strict=True)) == {
        "Work In Progress": "WIP",
        "Waiting On Sublet": None,
        "InspectionCompleted": "Estimating",
    }
    assert set(mapped["service_advisor"]) == {"dana.smith"}
    report = unmapped_values(mapped)
    assert report.rows() == [("north", "status", "Waiting On Sublet"), ("north", "user", "Chris Olsen")]


def test_versions_create_update_line_delete_and_idempotence() -> None:
    s = apply(empty_state(), [order("2026-11-16T09:00:00")])
    assert s["snapshots"].height == 1 and s["lines"].height == 1
    assert s["snapshots"]["valid_from"].item() == utc(2026, 11, 16, 15)
    again = apply(s, [order("2026-11-16T09:00:00")])
    assert again["written"] == 0, "the same version again writes nothing"

    s = apply(s, [order("2026-11-16T10:00:00", extra_line=True)])  # package update: a line added
    assert s["snapshots"].height == 2 and s["lines"].height == 2
    s = apply(s, [order("2026-11-16T11:00:00", qty=2.0, extra_line=True)])  # line update
    labor = s["lines"].filter(pl.col("line_type") == "Labor").sort("valid_from")
    assert labor["quantity"].to_list() == [1.0, 2.0]
    assert labor["valid_to"].to_list() == [utc(2026, 11, 16, 17), None]
    part = s["lines"].filter(pl.col("line_type") == "Part")
    assert part.height == 1 and part["valid_to"].item() is None, "an unchanged line keeps its version"

    stale = apply(s, [order("2026-11-16T10:00:00", extra_line=True)])
    assert stale["written"] == 0, "a fetch older than the current version is ignored"

    s = apply(s, [], deletes=[(WO, utc(2026, 11, 16, 18, 5))])
    snaps = s["snapshots"].sort("valid_from")
    assert snaps["deleted"].to_list() == [False, False, False, True]
    assert snaps["valid_to"].to_list() == [
        utc(2026, 11, 16, 16),
        utc(2026, 11, 16, 17),
        utc(2026, 11, 16, 18, 5),
        None,
    ]
    assert s["lines"].filter(pl.col("valid_to").is_null()).is_empty(), "a delete ends every current line"
    assert apply(s, [], deletes=[(WO, utc(2026, 11, 16, 18, 30))])["written"] == 0, (
        "a repeated delete changes nothing"
    )


def test_change_without_a_later_time_never_overlaps() -> None:
    s = apply(empty_state(), [order("2026-11-16T09:00:00")])
    s = apply(s, [order("2026-11-16T09:00:00", stage="Completed")])
    froms = s["snapshots"].sort("valid_from")["valid_from"].to_list()
    assert froms[1] > froms[0] and s["snapshots"]["valid_to"].drop_nulls().to_list() == [froms[1]]


def test_event_dedupe_and_batch() -> None:
    t = [utc(2026, 11, 16, 12, 0, i) for i in range(5)]
    rows = pl.DataFrame(
        [
            ("e1", "north", "WorkOrder", "a", "Update", t[0]),
            ("e2", "north", "WorkOrder", "a", "Update", t[1]),
            ("e3", "north", "WorkOrder", "b", "Create", t[2]),
            ("e4", "north", "WorkOrder", "c", "Delete", t[3]),
            ("e5", "north", "WorkOrder", "b", "Create", t[4]),
        ],
        schema=["event_id", "location_id", "type", "object_id", "operation", "received_at"],
        orient="row",
    ).cast({"received_at": pl.Datetime("us", "UTC")})
    pending = rows.filter(pl.col("event_id") == "e3")
    inserted = new_events(rows, pending, pending)
    assert inserted["event_id"].to_list() == ["e1", "e4"], "duplicates of pending or earlier rows are dropped"
    fetch, deletes = work_order_batch(inserted, pl.DataFrame(schema=REF_SCHEMA))
    assert fetch["work_order_id"].to_list() == ["a"] and deletes["work_order_id"].to_list() == ["c"]


def test_refetch_only_what_differs() -> None:
    s = apply(empty_state(), [order("2026-11-16T09:00:00")])
    listed = pl.DataFrame(
        [
            {k: v for k, v in order("2026-11-16T09:00:00").items() if k != "ServicePackages"},
            {**order("2026-11-16T09:00:00"), "ID": "E" * 8 + WO[8:]},
        ]
    )
    assert to_refetch(listed, s["snapshots"], "north", ZONE)["work_order_id"].to_list() == [
        ("e" * 8 + WO[8:]).lower()
    ]


def test_links_active_else_latest_else_null_and_write_back_plan() -> None:
    s = apply(
        empty_state(),
        [
            order("2026-11-16T09:00:00"),
            {
                **order("2026-11-16T09:00:00"),
                "ID": "F" * 8 + WO[8:],
                "ServiceItem": {"VIN": "2T1BURHE0NC000002"},
            },
        ],
    )
    srs = pl.DataFrame(
        [
            ("sr-old", "generic", VIN, "D1", "Acme", "S1", "Recon", "closed", utc(2026, 10, 1)),
            ("sr-new", "generic", VIN, "D1", "Acme", "S2", "Recon", "active", utc(2026, 9, 1)),
            ("sr-x", "northgate", VIN, "D1", "Acme", "S3", "Recon", "closed", utc(2026, 11, 1)),
        ],
        schema=SR_SCHEMA,
        orient="row",
    )
    links = link_service_requests(s["snapshots"], srs)
    assert dict(zip(links["vin"], links["sr_id"], strict=True)) == {VIN: "sr-new", "2T1BURHE0NC000002": None}
    closed_only = link_service_requests(s["snapshots"], srs.filter(pl.col("status") == "closed"))
    assert closed_only.filter(pl.col("vin") == VIN)["sr_id"].item() == "sr-x", (
        "else the most recently created"
    )

    no_writes = pl.DataFrame(schema=WRITE_SCHEMA)
    plan = plan_write_back(links, srs, s["lines"], no_writes, ["north"])
    assert plan.height == 1 and plan["package_id"].item() == package_guid("north", WO.lower(), "sr-new")
    assert plan["action"].item() == "add"
    assert plan_write_back(links, srs, s["lines"], no_writes, ["south"]).is_empty(), (
        "only locations that write back"
    )
    body = package_payload(plan.row(0, named=True))
    assert set(body) == {"ServicePackages"}, "only writable fields are sent"
    written = copy.deepcopy(order("2026-11-16T10:00:00"))
    written["ServicePackages"]["ItemCollection"].append(body["ServicePackages"]["ItemCollection"][0])
    s = apply(s, [written])
    assert plan_write_back(links, srs, s["lines"], no_writes, ["north"]).is_empty(), (
        "a package already there as planned is not sent again"
    )


def _objects_shape(doc: dict, advisor: dict | None, technician: dict | None) -> dict:
    """The other shape public integrations read: top-level user objects, no user text under `Header`."""
    doc = copy.deepcopy(doc)
    doc["Header"].pop("ServiceAdvisor", None)
    for package in doc["ServicePackages"]["ItemCollection"]:
        for line in package["ServicePackageLines"]["ItemCollection"]:
            line.pop("Technician", None)
    return {**doc, "ServiceAdvisor": advisor, "Technician": technician}


def test_users_read_in_both_shapes_and_a_change_of_either_is_a_version() -> None:
    lee = {"ID": "C0FFEE00-0000-4000-8000-000000000001", "Name": "Lee Park"}
    pat = {"ID": "C0FFEE00-0000-4000-8000-000000000002", "Name": "Pat Nguyen"}
    objects = _objects_shape(order("2026-11-16T09:00:00"), lee, pat)
    row = fetched(objects)[0].row(0, named=True)
    assert (row["protractor_service_advisor"], row["protractor_technician"]) == ("Lee Park", "Pat Nguyen")
    assert row["protractor_service_advisor_id"] == lee["ID"].lower()
    assert row["protractor_technician_id"] == pat["ID"].lower()
    unset = fetched(_objects_shape(order("2026-11-16T09:00:00"), None, None))[0].row(0, named=True)
    assert unset["protractor_service_advisor"] is None and unset["protractor_technician"] is None
    header = fetched(order("2026-11-16T09:00:00"))[0].row(0, named=True)
    assert (
        header["protractor_service_advisor"] == "Dana Smith"
        and header["protractor_service_advisor_id"] is None
    )

    location = LocationSettings(
        name="N", time_zone=ZONE, connection_id_env="A", api_key_env="B", user_map={"Lee Park": "lee.park"}
    )
    mapped = apply_mappings(fetched(objects)[0], {}, location.effective_user_map())
    assert mapped["service_advisor"].item() == "lee.park", "user_map keys on the object's Name"

    s = apply(empty_state(), [objects])
    same_name = {**lee, "ID": "C0FFEE00-0000-4000-8000-000000000003"}
    s = apply(s, [_objects_shape(order("2026-11-16T09:00:00"), same_name, pat)])
    assert s["snapshots"].height == 2, "another user of the same name is a change of advisor"
    s = apply(s, [_objects_shape(order("2026-11-16T09:00:00"), same_name, lee)])
    assert s["snapshots"].height == 3, "a change of technician is a version"


def test_service_item_and_contact_notifications_refetch_the_work_orders_that_reference_them() -> None:
    doc = {**order("2026-11-16T09:00:00"), "Contact": {"ID": "CCCC0000-0000-4000-8000-000000000001"}}
    doc["ServiceItem"] = {"ID": "DDDD0000-0000-4000-8000-000000000001", "VIN": VIN}
    refs = references(read_documents((json.dumps({**doc, "observed_at": "x"}) + "\n").encode()), "north")
    assert refs.row(0) == (
        "north",
        WO.lower(),
        "dddd0000-0000-4000-8000-000000000001",
        "cccc0000-0000-4000-8000-000000000001",
    )
    t = [utc(2026, 11, 20, 12, i) for i in range(3)]
    pending = pl.DataFrame(
        [
            ("e1", "north", "ServiceItem", "DDDD0000-0000-4000-8000-000000000001", "Update", t[0], None),
            ("e2", "north", "Contact", "cccc0000-0000-4000-8000-000000000001", "Update", t[1], None),
            ("e3", "south", "ServiceItem", "dddd0000-0000-4000-8000-000000000001", "Update", t[2], None),
        ],
        schema=["event_id", "location_id", "type", "object_id", "operation", "received_at", "processed_at"],
        orient="row",
    ).cast({"received_at": pl.Datetime("us", "UTC"), "processed_at": pl.Datetime("us", "UTC")})
    fetch, _ = work_order_batch(pending, refs)
    assert fetch.rows() == [("north", WO.lower(), t[1])], "each referencing work order once, at the location"

    s = apply(empty_state(), [doc])
    corrected = copy.deepcopy(doc)
    corrected["ServiceItem"]["VIN"] = "2T1BURHE0NC000002"
    snap, lines = fetched(corrected, observed="2026-11-20T12:01:00+00:00")
    current = s["snapshots"].filter(pl.col("valid_to").is_null())
    out = next_versions(current, snap, pl.DataFrame(schema=DELETE_SCHEMA), s["lines"], lines)
    assert out["snapshots"]["vin"].item() == "2T1BURHE0NC000002"
    assert out["snapshots"]["valid_from"].item() == utc(2026, 11, 20, 12, 1), (
        "a change made outside the work order is valid from when it was observed"
    )


def _srs(stock: str, client: str, status: str = "active") -> pl.DataFrame:
    return pl.DataFrame(
        [("sr-1", "generic", VIN, "D1", client, stock, "Used Recon", status, utc(2026, 11, 16))],
        schema=SR_SCHEMA,
        orient="row",
    )


def _sent(plan: pl.DataFrame, attempt: int = 1) -> pl.DataFrame:
    """The plan's rows as the write log keeps them once Protractor answered 200."""
    return (
        plan.with_columns(
            pl.lit(attempt).alias("attempt"),
            pl.lit(utc(2026, 11, 20)).alias("attempted_at"),
            pl.lit(utc(2026, 11, 20)).alias("answered_at"),
            pl.lit(200).alias("http_status"),
        )
        .select(list(WRITE_SCHEMA))
        .cast(WRITE_SCHEMA)
    )


def _with_package(s: dict, plan: pl.DataFrame, modified: str, description: str | None = None) -> dict:
    doc = copy.deepcopy(order(modified))
    package = package_payload(plan.row(0, named=True))["ServicePackages"]["ItemCollection"][0]
    if description:
        package["ServicePackageLines"]["ItemCollection"][0]["Description"] = description
    doc["ServicePackages"]["ItemCollection"].append(package)
    return apply(s, [doc])


def test_write_back_updates_its_package_on_stock_or_client_change_and_never_an_edited_one() -> None:
    s = apply(empty_state(), [order("2026-11-16T09:00:00")])
    links = link_service_requests(s["snapshots"], _srs("S1", "Riverside Motors"))
    add = plan_write_back(
        links, _srs("S1", "Riverside Motors"), s["lines"], pl.DataFrame(schema=WRITE_SCHEMA), ["north"]
    )
    assert "stock S1" in add["description"].item() and "client Riverside Motors" in add["description"].item()
    log = _sent(add)
    s = _with_package(s, add, "2026-11-16T10:00:00")
    assert plan_write_back(links, _srs("S1", "Riverside Motors"), s["lines"], log, ["north"]).is_empty()

    update = plan_write_back(links, _srs("S2", "Riverside Motors"), s["lines"], log, ["north"])
    assert update["action"].to_list() == ["update"] and "stock S2" in update["description"].item()
    assert (
        update["package_id"].item() == add["package_id"].item()
        and update["line_id"].item() == add["line_id"].item()
    )
    log2 = pl.concat([log, _sent(update, 2)])
    assert plan_write_back(links, _srs("S2", "Riverside Motors"), s["lines"], log2, ["north"]).is_empty(), (
        "sent and answered: nothing twice, even before the work order is fetched again"
    )
    client = plan_write_back(links, _srs("S1", "Summit Auto Group"), s["lines"], log, ["north"])
    assert "client Summit Auto Group" in client["description"].item()
    closed = plan_write_back(links, _srs("S2", "Riverside Motors", "closed"), s["lines"], log, ["north"])
    assert closed.is_empty(), "never after the service request closed"

    assert edited_packages(log, s["lines"], s["snapshots"]).is_empty()
    edited = _with_package(s, add, "2026-11-17T10:00:00", description="Recon: hold for customer")
    found = edited_packages(log, edited["lines"], edited["snapshots"])
    assert found.select("location_id", "work_order_number").rows() == [("north", 1001)]
    assert plan_write_back(
        links, _srs("S2", "Riverside Motors"), edited["lines"], log, ["north"]
    ).is_empty(), "a package edited in Protractor is not overwritten"
