"""The fake Xtime's four scheduling calls over its in-memory dealerships: the catalog, open slots, booking
a slot (taken from then on; refused once it has begun by the fake's clock) and the lookup by VIN.

Open slots are listed for whole days, earlier hours of today included, so that only the booking rule keeps a
client from choosing one that has begun."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse

from dealer_assets.xtime.fake.state import BOOKING_PATH, FakeDealership, FakeState, local_text, parse_local


def error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"success": False, "code": code, "message": message}, status_code=status, headers=headers
    )


async def _services(state: FakeState, dealer: FakeDealership, request: Request) -> JSONResponse:
    return JSONResponse({"success": True, "services": dealer.catalog})


def _open_slots(state: FakeState, dealer: FakeDealership, first: date, last: date) -> list[datetime]:
    # Compared in UTC: an ambiguous local time never equals a time of another zone (PEP 495).
    taken = {
        parse_local(a["appointmentDateTimeLocal"]).astimezone(UTC)
        for a in state.appointments
        if a["dealerCode"] == dealer.dealer_code
    }
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [s for d in days for s in dealer.slots(d) if s.astimezone(UTC) not in taken]


async def _availabilities(state: FakeState, dealer: FakeDealership, request: Request) -> JSONResponse:
    q = request.query_params
    if q.get("opcode") not in {s["opcode"] for s in dealer.catalog}:
        return error(200, "INVALID_OPCODE", "opcode is not in the dealer's catalog")
    try:
        first, last = date.fromisoformat(q["start"]), date.fromisoformat(q["end"])
    except (KeyError, ValueError):
        return error(400, "INVALID_DATE", "start and end must be YYYY-MM-DD")
    if not 0 <= (last - first).days <= 31:
        return error(200, "INVALID_DATE_RANGE", "end must be within 31 days after start")
    slots = _open_slots(state, dealer, first, last)
    return JSONResponse(
        {
            "success": True,
            "availableAppointments": [
                {"appointmentDateTimeLocal": local_text(s), "durationMinutes": dealer.slot_minutes}
                for s in slots
            ],
        }
    )


async def _book(state: FakeState, dealer: FakeDealership, request: Request) -> JSONResponse:
    body = await request.json()
    missing = [
        k
        for k in ("appointmentDateTimeLocal", "firstName", "lastName", "services", "label")
        if not body.get(k)
    ]
    if missing:
        return error(400, "MISSING_FIELD", f"missing {', '.join(missing)}")
    catalog = {s["opcode"] for s in dealer.catalog}
    if any(s.get("opcode") not in catalog for s in body["services"]):
        return error(200, "INVALID_OPCODE", "opcode is not in the dealer's catalog")
    slot = parse_local(body["appointmentDateTimeLocal"])
    if slot is None:
        return error(400, "INVALID_DATE", "appointmentDateTimeLocal must be local time with offset")
    if slot <= state.clock():
        return error(200, "APPOINTMENT_IN_PAST", "appointmentDateTimeLocal has already begun")
    with state.lock:
        local_day = slot.astimezone(ZoneInfo(dealer.time_zone)).date()
        if slot.astimezone(UTC) not in {
            s.astimezone(UTC) for s in _open_slots(state, dealer, local_day, local_day)
        }:
            return error(200, "SLOT_UNAVAILABLE", "that time is not available")
        appointment_id = f"XT{next(state.ids):07d}"
        state.appointments.append(
            {
                "appointmentId": appointment_id,
                "dealerCode": dealer.dealer_code,
                "vin": body.get("vin"),
                "appointmentDateTimeLocal": body["appointmentDateTimeLocal"],
                "services": body["services"],
                "label": body["label"],
                "reportingLabel": body.get("reportingLabel"),
                "firstName": body["firstName"],
                "lastName": body["lastName"],
            }
        )
    return JSONResponse({"success": True, "appointmentId": appointment_id})


async def _lookup(state: FakeState, dealer: FakeDealership, request: Request) -> JSONResponse:
    vin = request.query_params.get("vin")
    if not vin:
        return error(400, "MISSING_FIELD", "vin is required")
    found = [
        {k: a[k] for k in ("appointmentId", "vin", "appointmentDateTimeLocal", "services", "label")}
        for a in state.appointments
        if a["dealerCode"] == dealer.dealer_code and a["vin"] == vin
    ]
    return JSONResponse({"success": True, "appointments": found})


SCHEDULING_CALLS = {
    "/service/services": _services,
    "/service/appointments-availabilities": _availabilities,
    BOOKING_PATH: _book,
    "/service/appointments": _lookup,
}
