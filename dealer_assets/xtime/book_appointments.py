"""Carries out the booking plan against Xtime: availabilities, slot choice, the recorded attempt, the POST,
and the lookup that resolves an attempt whose answer was lost. Nothing here is ever sent twice for a request:
an attempt row is committed before its POST, and a request with an unresolved attempt is only looked up.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
import polars as pl
from sqlalchemy.engine import Engine

from dealer_assets.xtime import store
from dealer_assets.xtime.client import AnswerLost, XtimeClient, XtimeError
from dealer_assets.xtime.domain.booking import find_labelled, plan, readiness
from dealer_assets.xtime.domain.enrollment import enrollment_states
from dealer_assets.xtime.domain.slots import SLOT_SCHEMA, choose_slot, slot_instant
from dealer_assets.xtime.settings import XtimeSettings

log = logging.getLogger(__name__)
REPORTING_LABEL = "dealer_assets"
MAX_QUERY_DAYS = 31
LOOKUP_SCHEMA = {"appointment_id": pl.String(), "label": pl.String(), "appointment_local": pl.String()}


def wall_clock() -> datetime:
    return datetime.now(UTC)


def current_plan(engine: Engine, settings: XtimeSettings, now: datetime) -> pl.DataFrame:
    """What the next run would do with each stored request (also what the sensor looks at)."""
    ready = readiness(enrollment_states(settings, now), store.read_services(engine))
    return plan(store.read_requests(engine), store.read_attempts(engine), ready, now)


@dataclass
class BookingRun:
    actions: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def booking_payload(request: dict, opcode: str, appointment_local: str) -> dict:
    """The POST body: the slot exactly as Xtime listed it, the opcode's value (never its name), labelled with
    the request id for a later lookup."""
    payload = {
        "appointmentDateTimeLocal": appointment_local,
        "firstName": request["first_name"],
        "lastName": request["last_name"],
        "emailAddress": request["email"],
        "phoneNumber": request["phone"],
        "comment": request["comment"],
        "services": [{"opcode": opcode}],
        "label": request["request_id"],
        "reportingLabel": REPORTING_LABEL,
        "vin": request["vin"],
    }
    return {k: v for k, v in payload.items() if v is not None}


@dataclass
class Booker:
    engine: Engine
    client: XtimeClient
    settings: XtimeSettings
    now: Callable[[], datetime] = wall_clock

    def plan(self) -> pl.DataFrame:
        return current_plan(self.engine, self.settings, self.now())

    def run(self) -> BookingRun:
        result = BookingRun()
        planned = self.plan()
        requests = {r["request_id"]: r for r in store.read_requests(self.engine).to_dicts()}
        for step in planned.to_dicts():
            result.actions[step["action"]] += 1
            request = requests[step["request_id"]]
            if step["action"] in ("hold", "wait_opcode", "unconfirm", "window_passed"):
                self._set_status(step["request_id"], step["status"], step["reason"])
            elif step["action"] == "lookup" and request["dealership"] not in self.settings.dealerships:
                self._set_status(
                    step["request_id"],
                    "pending",
                    "a booking answer was lost and the dealership is no longer configured: the lookup waits",
                )
            elif step["action"] == "lookup":
                self._lookup(request, step["next_attempt_no"] - 1, step["opcode"], result)
            elif step["action"] == "book":
                self._book(request, step["next_attempt_no"], step["opcode"], result)
            if step["action"] != "none":
                result.outcomes[self._status(step["request_id"])] += 1
        return result

    def _set_status(self, request_id: str, status: str, reason: str | None) -> None:
        store.set_status(self.engine, request_id, status, reason, self.now())

    def _record(
        self, request_id: str, attempt_no: int, outcome: str, status: str, reason: str | None
    ) -> None:
        store.record_outcome(self.engine, request_id, attempt_no, outcome, status, reason, self.now())

    def _status(self, request_id: str) -> str:
        return store.read_requests(self.engine, store.appointment_requests.c.request_id == request_id)[
            "status"
        ][0]

    def _slots(self, dealer_code: str, opcode: str, request: dict) -> pl.DataFrame:
        """Every availability in the request's window, asked for in spans of at most 31 days (Xtime's limit)."""
        first = date.fromisoformat(request["earliest"][:10])
        last = date.fromisoformat(request["latest"][:10])
        frames, start = [], first
        while start <= last:
            end = min(last, start + timedelta(days=MAX_QUERY_DAYS - 1))
            found = self.client.availabilities(dealer_code, opcode, start, end, request["vin"])
            frames.append(
                pl.DataFrame(
                    [
                        {
                            "appointment_local": a.get("appointmentDateTimeLocal"),
                            "duration_minutes": a.get("durationMinutes"),
                        }
                        for a in found
                    ],
                    schema=SLOT_SCHEMA,
                )
            )
            start = end + timedelta(days=1)
        return pl.concat(frames)

    def _chosen_slot(self, request: dict, opcode: str, result: BookingRun) -> str | None:
        """The slot to book, or None once the request's status says why there is none."""
        rid = request["request_id"]
        dealer = self.settings.dealerships[request["dealership"]]
        try:
            slots = self._slots(dealer.dealer_code, opcode, request)
        except XtimeError as exc:
            self._failed(rid, exc, result, definitive=exc.about_request)
            return None
        except httpx.TransportError as exc:
            self._failed(rid, exc, result, definitive=False)
            return None
        now = self.now()
        chosen = choose_slot(rid, request["earliest"], request["latest"], dealer.time_zone, slots, now)
        if chosen.is_empty():
            self._set_status(
                rid,
                "no_slot",
                f"no available slot from {request['earliest']} to before {request['latest']} "
                f"({dealer.time_zone}) that had not begun at {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
            )
            return None
        return chosen["appointment_local"][0]

    def _book(self, request: dict, attempt_no: int, opcode: str, result: BookingRun) -> None:
        rid, key = request["request_id"], request["dealership"]
        dealer = self.settings.dealerships[key]
        local = self._chosen_slot(request, opcode, result)
        if local is None:
            return
        if not store.claim_attempt(self.engine, rid, attempt_no, key, local, opcode, self.now()):
            log.warning("request %s attempt %s was claimed by another run; not sending", rid, attempt_no)
            return
        try:
            appointment_id = self.client.book(dealer.dealer_code, booking_payload(request, opcode, local))
        except XtimeError as exc:
            if exc.about_request:
                self._record(rid, attempt_no, "rejected", "rejected", f"{exc.code}: {exc.message}")
            else:
                self._record(
                    rid, attempt_no, "not_sent", "pending", f"not booked ({exc}); sent again on a later run"
                )
                result.errors.append(f"{rid}: {exc.code}")
            return
        except AnswerLost as exc:
            log.warning("request %s attempt %s: %s; looking it up", rid, attempt_no, exc)
            self._lookup(request, attempt_no, opcode, result)
            return
        except httpx.TransportError as exc:
            reason = f"could not reach Xtime ({type(exc).__name__}); nothing was sent"
            self._record(rid, attempt_no, "not_sent", "pending", reason)
            result.errors.append(f"{rid}: {type(exc).__name__}")
            return
        self._booked(request, attempt_no, appointment_id, local, opcode, "answer")

    def _booked(
        self, request: dict, attempt_no: int, appointment_id: str, local: str, opcode: str, found_by: str
    ) -> None:
        at = pl.DataFrame({"appointment_local": [local]}).select(slot_instant())["appointment_local"][0]
        booking = {
            "request_id": request["request_id"],
            "dealership": request["dealership"],
            "appointment_id": appointment_id,
            "appointment_local": local,
            "appointment_at": at,
            "opcode": opcode,
            "booked_at": self.now(),
            "attempt_no": attempt_no,
            "found_by": found_by,
        }
        store.record_outcome(
            self.engine, request["request_id"], attempt_no, "booked", "booked", None, self.now(), booking
        )

    def _lookup(self, request: dict, attempt_no: int, opcode: str, result: BookingRun) -> None:
        """Resolves an attempt whose answer was lost: the appointment labelled with the request id, if any."""
        rid = request["request_id"]
        if not request["vin"]:
            self._set_status(
                rid,
                "unconfirmed",
                f"the answer to booking attempt {attempt_no} was lost and without a VIN it cannot be "
                f"looked up: confirm in Xtime whether an appointment labelled '{rid}' exists; it is "
                "never re-sent automatically",
            )
            return
        dealer = self.settings.dealerships[request["dealership"]]
        try:
            found = self.client.appointments(dealer.dealer_code, request["vin"])
        except (XtimeError, httpx.TransportError) as exc:
            self._set_status(
                rid,
                "pending",
                f"the answer to booking attempt {attempt_no} was lost and the lookup failed ({exc}); "
                "it is looked up again on the next run, never re-sent before that",
            )
            result.errors.append(f"{rid}: lookup failed")
            return
        frame = pl.DataFrame(
            [
                {
                    "appointment_id": str(a.get("appointmentId")),
                    "label": a.get("label"),
                    "appointment_local": a.get("appointmentDateTimeLocal"),
                }
                for a in found
            ],
            schema=LOOKUP_SCHEMA,
        )
        mine = find_labelled(frame, rid)
        if mine.is_empty():
            self._record(
                rid,
                attempt_no,
                "not_found",
                "pending",
                f"the answer to booking attempt {attempt_no} was lost and Xtime holds no appointment "
                "labelled with this request: it is sent again on the next run",
            )
            return
        hit = mine.row(0, named=True)
        self._booked(request, attempt_no, hit["appointment_id"], hit["appointment_local"], opcode, "lookup")

    def _failed(self, rid: str, exc: Exception, result: BookingRun, *, definitive: bool) -> None:
        if definitive and isinstance(exc, XtimeError):
            self._set_status(rid, "rejected", f"{exc.code}: {exc.message}")
        else:
            self._set_status(rid, "pending", f"availabilities failed ({exc}); retried next run")
            result.errors.append(f"{rid}: {exc}")
