"""The fake's in-memory shop: work orders per location, seeded from the DMS sample VINs, changed through
methods that return the callbacks Protractor would send.

A shop sends its users in one of the two shapes public integrations read: `header` (text under
`Header.ServiceAdvisor`, technicians on the lines) or `objects` (top-level `ServiceAdvisor` and `Technician`
objects with `ID` and `Name`, no user text)."""

from __future__ import annotations

import copy
import csv
import random
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[3] / "data" / "samples"
STAGES = [
    "Scheduled Work",
    "Unassigned",
    "Inspection In Progress",
    "InspectionCompleted",
    "EstimateCompleted",
    "Approved",
    "Work In Progress",
    "Parts On Order",
    "Quality Check",
    "Completed",
    "Waiting On Sublet",
]
ADVISORS = ["Dana Smith", "Lee Park", "Morgan Diaz"]
TECHNICIANS = ["Chris Olsen", "Pat Nguyen", "Sam Rivera", "Jo Becker"]
LABOR = [
    ("Labor", "Multi-point inspection", 0.5, 120.0),
    ("Labor", "Detail and recon wash", 2.0, 95.0),
    ("Labor", "Replace front brake pads", 1.2, 140.0),
    ("Labor", "Oil and filter change", 0.4, 110.0),
]
PARTS = [
    ("Part", "Brake pad set", 1.0, 89.5, "BP-4471"),
    ("Part", "Oil filter", 1.0, 12.4, "OF-220"),
    ("Part", "Synthetic oil 5W-30", 6.0, 8.9, "OIL-530"),
    ("Part", "Wiper blades", 2.0, 18.0, "WB-24"),
]
READ_ONLY = ("ID", "WorkOrderNumber", "Header", "Summary", "Completed", "Type")
LOCAL = "%Y-%m-%dT%H:%M:%S"
USER_SHAPES = ("header", "objects")
Change = tuple[str, str] | tuple[str, str, str]
"""(operation, id) of a work order, or (operation, id, type) of a `ServiceItem` or `Contact`."""


def sample_vehicles(folder: Path = SAMPLES) -> list[dict]:
    """Every distinct VIN of the committed DMS sample feeds, with its year, make and model."""
    seen: dict[str, dict] = {}
    for path in sorted(folder.glob("*-*T*Z.*")):
        pipe = path.suffix == ".txt"
        with path.open(encoding="latin-1" if pipe else "utf-8-sig", errors="replace", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="|" if pipe else ","):
                vin = (row.get("VIN") or row.get("Vehicle VIN") or "").strip().upper()
                if len(vin) == 17 and vin not in seen:
                    seen[vin] = {
                        "VIN": vin,
                        "Year": (row.get("Year") or row.get("Yr") or "").strip(),
                        "Make": (row.get("Make") or "").strip(),
                        "Model": (row.get("Model") or "").strip(),
                    }
    return [seen[v] for v in sorted(seen)]


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()


def _line(rng: random.Random, labor: bool) -> dict:
    if labor:
        kind, text, qty, price = rng.choice(LABOR)
        part = None
    else:
        kind, text, qty, price, part = rng.choice(PARTS)
    return {
        "ID": guid(rng),
        "Type": kind,
        "Description": text,
        "Quantity": qty,
        "Price": price,
        "Total": round(qty * price, 2),
        "PartNumber": part,
        "Completed": False,
        "Technician": rng.choice(TECHNICIANS) if labor else None,
    }


def user(name: str | None) -> dict | None:
    """A user object as the `objects` shape sends it; the same name always has the same ID."""
    return {"ID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"user:{name}")).upper(), "Name": name} if name else None


class Shop:
    """Work orders of one location; every change returns the `Change` its callback reports."""

    def __init__(self, users: str = "header") -> None:
        if users not in USER_SHAPES:
            raise ValueError(f"users must be one of {USER_SHAPES}")
        self.users = users
        self.orders: dict[str, dict] = {}
        self.lock = threading.RLock()
        self._number = 1000

    def seed(self, vehicles: list[dict], start: datetime, count: int, seed: int) -> None:
        rng = random.Random(seed)
        for i, vehicle in enumerate(vehicles[:count]):
            created = start + timedelta(hours=3 * i + rng.randint(0, 2), minutes=rng.randint(0, 59))
            self.create(vehicle, created, rng=rng, modified=created + timedelta(minutes=rng.randint(5, 400)))

    def create(
        self,
        vehicle: dict,
        when: datetime,
        *,
        rng: random.Random | None = None,
        modified: datetime | None = None,
        work_order_id: str | None = None,
    ) -> tuple[str, str]:
        rng = rng or random.Random(len(self.orders))
        with self.lock:
            self._number += 1
            wo_id = work_order_id or guid(rng)
            packages = []
            for _ in range(rng.randint(1, 2)):
                lines = [_line(rng, True)] + [_line(rng, False) for _ in range(rng.randint(0, 2))]
                packages.append(
                    {
                        "ID": guid(rng),
                        "ServicePackageHeader": {"Title": lines[0]["Description"], "Description": ""},
                        "ServicePackageLines": {"ItemCollection": lines},
                    }
                )
            self.orders[wo_id] = {
                "ID": wo_id,
                "WorkOrderNumber": self._number,
                "Type": "WorkOrder",
                "WorkflowStage": rng.choice(STAGES),
                "Completed": False,
                "ServiceItem": {"ID": guid(rng), **vehicle},
                "Contact": {"ID": guid(rng), "FirstName": "Sample", "LastName": f"Customer {self._number}"},
                "Header": {
                    "CreationTime": when.strftime(LOCAL),
                    "LastModifiedTime": (modified or when).strftime(LOCAL),
                    "ServiceAdvisor": rng.choice(ADVISORS),
                    "Technician": None,
                },
                "Summary": {},
                "ServicePackages": {"ItemCollection": packages},
            }
            if self.users == "objects":
                self._as_objects(self.orders[wo_id])
            self._summarize(wo_id)
            return "Create", wo_id

    @staticmethod
    def _as_objects(order: dict) -> None:
        lines = [
            ln
            for p in order["ServicePackages"]["ItemCollection"]
            for ln in p["ServicePackageLines"]["ItemCollection"]
        ]
        technician = next((ln["Technician"] for ln in lines if ln.get("Technician")), None)
        for line in lines:
            line.pop("Technician", None)
        order["ServiceAdvisor"] = user(order["Header"].pop("ServiceAdvisor"))
        order["Technician"] = user(order["Header"].pop("Technician") or technician)

    def _summarize(self, wo_id: str) -> None:
        order = self.orders[wo_id]
        lines = [
            ln
            for p in order["ServicePackages"]["ItemCollection"]
            for ln in p["ServicePackageLines"]["ItemCollection"]
        ]
        labor = sum(ln["Total"] or 0 for ln in lines if ln["Type"] == "Labor")
        parts = sum(ln["Total"] or 0 for ln in lines if ln["Type"] == "Part")
        order["Summary"] = {
            "LaborTotal": round(labor, 2),
            "PartsTotal": round(parts, 2),
            "GrandTotal": round(labor + parts, 2),
        }

    def _touch(self, wo_id: str, when: datetime) -> None:
        self._summarize(wo_id)
        self.orders[wo_id]["Header"]["LastModifiedTime"] = when.strftime(LOCAL)

    def set_stage(self, wo_id: str, stage: str, when: datetime) -> tuple[str, str]:
        with self.lock:
            self.orders[wo_id]["WorkflowStage"] = stage
            self.orders[wo_id]["Completed"] = stage == "Completed"
            self._touch(wo_id, when)
            return "Update", wo_id

    def set_advisor(self, wo_id: str, name: str, when: datetime) -> tuple[str, str]:
        with self.lock:
            order = self.orders[wo_id]
            if self.users == "objects":
                order["ServiceAdvisor"] = user(name)
            else:
                order["Header"]["ServiceAdvisor"] = name
            self._touch(wo_id, when)
            return "Update", wo_id

    def set_vin(self, wo_id: str, vin: str) -> Change:
        """A corrected VIN on the work order's vehicle: the work order itself is not modified, and the callback
        names the service item (assumed of Protractor, which publishes no schema)."""
        with self.lock:
            item_id = self.orders[wo_id]["ServiceItem"]["ID"]
            for order in self.orders.values():
                if order["ServiceItem"]["ID"] == item_id:
                    order["ServiceItem"]["VIN"] = vin
            return "Update", item_id, "ServiceItem"

    def rename_contact(self, wo_id: str, first: str, last: str) -> Change:
        with self.lock:
            contact = self.orders[wo_id]["Contact"]
            contact.update(FirstName=first, LastName=last)
            return "Update", contact["ID"], "Contact"

    def edit_package(self, wo_id: str, package_id: str, description: str, when: datetime) -> tuple[str, str]:
        """A shop user rewording the first line of a package (e.g. one we wrote)."""
        with self.lock:
            order = self.orders[wo_id]
            package = next(
                p for p in order["ServicePackages"]["ItemCollection"] if p["ID"].lower() == package_id.lower()
            )
            package["ServicePackageLines"]["ItemCollection"][0]["Description"] = description
            self._touch(wo_id, when)
            return "Update", wo_id

    def update_line(self, wo_id: str, when: datetime, **fields: object) -> tuple[str, str]:
        with self.lock:
            line = self.orders[wo_id]["ServicePackages"]["ItemCollection"][0]["ServicePackageLines"][
                "ItemCollection"
            ][0]
            line.update(fields)
            line["Total"] = round((line["Quantity"] or 0) * (line["Price"] or 0), 2)
            self._touch(wo_id, when)
            return "Update", wo_id

    def upsert(self, wo_id: str, body: dict, when: datetime) -> tuple[str, str]:
        """`POST /WorkOrder/{id}`: packages and lines are upserted by their ID; read-only fields are refused."""
        bad = [k for k in body if k in READ_ONLY]
        if bad:
            raise ValueError(f"read-only fields sent: {', '.join(bad)}")
        with self.lock:
            wo_id = self._find(wo_id) or wo_id
            operation = "Update" if wo_id in self.orders else "Create"
            if operation == "Create":
                self.create({"VIN": None}, when, work_order_id=wo_id)
                self.orders[wo_id]["ServicePackages"]["ItemCollection"] = []
            order = self.orders[wo_id]
            for key, value in body.items():
                if key != "ServicePackages":
                    order[key] = value
            existing = {p["ID"].lower(): p for p in order["ServicePackages"]["ItemCollection"]}
            for package in (body.get("ServicePackages") or {}).get("ItemCollection", []):
                current = existing.get(str(package["ID"]).lower())
                if current is None:
                    order["ServicePackages"]["ItemCollection"].append(copy.deepcopy(package))
                    continue
                current["ServicePackageHeader"] = package.get(
                    "ServicePackageHeader", current["ServicePackageHeader"]
                )
                lines = {ln["ID"].lower(): ln for ln in current["ServicePackageLines"]["ItemCollection"]}
                for line in package.get("ServicePackageLines", {}).get("ItemCollection", []):
                    if str(line["ID"]).lower() in lines:
                        lines[str(line["ID"]).lower()].update(line)
                    else:
                        current["ServicePackageLines"]["ItemCollection"].append(copy.deepcopy(line))
            for package in order["ServicePackages"]["ItemCollection"]:
                for line in package["ServicePackageLines"]["ItemCollection"]:
                    for field in ("Price", "Total", "PartNumber"):
                        line.setdefault(field, None)
                    if self.users == "header":
                        line.setdefault("Technician", None)
                    line.setdefault("Completed", False)
                    if line["Total"] is None and line["Price"] is not None:
                        line["Total"] = round((line["Quantity"] or 0) * line["Price"], 2)
            self._touch(wo_id, when)
            return operation, wo_id

    def delete(self, wo_id: str) -> tuple[str, str]:
        with self.lock:
            self.orders.pop(wo_id)
            return "Delete", wo_id

    def _find(self, wo_id: str) -> str | None:
        """Protractor's GUIDs are case-insensitive."""
        return next((key for key in self.orders if key.lower() == wo_id.lower()), None)

    def get(self, wo_id: str) -> dict | None:
        with self.lock:
            key = self._find(wo_id)
            return copy.deepcopy(self.orders[key]) if key else None

    def changed_between(self, start: str, end: str) -> list[dict]:
        """Thin work orders (no packages) modified on local dates start..end, oldest first."""
        with self.lock:
            rows = [o for o in self.orders.values() if start <= o["Header"]["LastModifiedTime"][:10] <= end]
            rows.sort(key=lambda o: (o["Header"]["LastModifiedTime"], o["ID"]))
            return [{k: copy.deepcopy(v) for k, v in o.items() if k != "ServicePackages"} for o in rows]
