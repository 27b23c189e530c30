"""The Xtime area's warehouse tables (CONTRACT section 8, plus the attempt ledger and the received files)."""

from __future__ import annotations

import sqlalchemy as sa

from dealer_assets.core.warehouse import TS, describe, metadata

appointment_requests = sa.Table(
    "appointment_requests",
    metadata,
    sa.Column("request_id", sa.String(200), primary_key=True),
    sa.Column("origin", sa.String(20), nullable=False),
    sa.Column("dealership", sa.String(100)),
    sa.Column("vin", sa.String(40)),
    sa.Column("earliest", sa.String(19)),
    sa.Column("latest", sa.String(19)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("first_name", sa.String(200)),
    sa.Column("last_name", sa.String(200)),
    sa.Column("email", sa.String(320)),
    sa.Column("phone", sa.String(40)),
    sa.Column("comment", sa.Text),
    sa.Column("sr_id", sa.String(100)),
    sa.Column("source_file", sa.String(300)),
    sa.Column("line_number", sa.Integer),
    sa.Column("received_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_appointment_requests_status", "status"),
)

xtime_bookings = sa.Table(
    "xtime_bookings",
    metadata,
    sa.Column("request_id", sa.String(200), primary_key=True),
    sa.Column("dealership", sa.String(100), nullable=False),
    sa.Column("appointment_id", sa.String(100), nullable=False),
    sa.Column("appointment_local", sa.String(40), nullable=False),
    sa.Column("appointment_at", TS),
    sa.Column("opcode", sa.String(200), nullable=False),
    sa.Column("booked_at", TS, nullable=False),
    sa.Column("attempt_no", sa.Integer, nullable=False),
    sa.Column("found_by", sa.String(20), nullable=False),
)

xtime_booking_attempts = sa.Table(
    "xtime_booking_attempts",
    metadata,
    sa.Column("request_id", sa.String(200), primary_key=True),
    sa.Column("attempt_no", sa.Integer, primary_key=True),
    sa.Column("dealership", sa.String(100), nullable=False),
    sa.Column("appointment_local", sa.String(40), nullable=False),
    sa.Column("opcode", sa.String(200), nullable=False),
    sa.Column("sent_at", TS, nullable=False),
    sa.Column("outcome", sa.String(20)),
    sa.Column("detail", sa.Text),
    sa.Column("resolved_at", TS),
)

xtime_services = sa.Table(
    "xtime_services",
    metadata,
    sa.Column("dealership", sa.String(100), primary_key=True),
    sa.Column("opcode", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(300)),
    sa.Column("fetched_at", TS, nullable=False),
)

appointment_request_files = sa.Table(
    "appointment_request_files",
    metadata,
    sa.Column("file_name", sa.String(300), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("archived_as", sa.String(500), nullable=False),
    sa.Column("received_at", TS, nullable=False),
    sa.Column("lines", sa.Integer, nullable=False),
    sa.Column("invalid_lines", sa.Integer, nullable=False),
)

XTIME = {
    "request_id": "The appointment request: its `request_id` from the request file, or `sr-<sr_id>` for one "
    "made from a DMS service request.",
    "dealership": "Our dealership id: its key under `xtime.dealerships` in the settings.",
    "opcode": "The opcode value sent to Xtime (never its name).",
    "appointment_local": "The slot as Xtime listed it: the dealership's local time with its offset "
    "(`2027-11-07T01:30-0700`).",
    "attempt_no": "The booking attempt's number for its request: 1, 2, ...",
    "received_at": "When we took it in (the wall clock, UTC).",
}
describe(
    appointment_requests,
    shared=XTIME,
    docs={
        "request_id": "The request file's `request_id`; `sr-<sr_id>` for a request made from a DMS service "
        "request; `<file>#<line>` for an invalid line.",
        "origin": "Where it came from: `file` (a request file) or `service_request` (a DMS service request).",
        "dealership": "Our dealership id (the key under `xtime.dealerships`), as the request named it.",
        "vin": "The vehicle's VIN, upper-cased without spaces or dashes; null when not given.",
        "earliest": "Start of the booking window: the dealership's local time without offset "
        "(`YYYY-MM-DDTHH:MM:SS`). For a service request, the later of its creation and when it was taken in.",
        "latest": "End of the window (exclusive), local like `earliest`; `earliest` + 7 days unless given.",
        "status": "`pending`, `booked`, `no_slot`, `held_not_enrolled`, `unconfirmed`, `rejected` or `invalid`.",
        "reason": "Why it has that status (an invalid line's problems, joined by `; `; Xtime's `code: message` "
        "for a rejection); null when none.",
        "first_name": "The customer's first name; `Service` for a service request.",
        "last_name": "The customer's last name; the service request's client for one (`Request` when none).",
        "email": "The customer's e-mail; null for a service request. Never shown in logs or metadata.",
        "phone": "The customer's phone; null for a service request. Never shown in logs or metadata.",
        "comment": "The customer's comment, sent with the booking; for a service request `<type> for stock "
        "<stock no> (service request <sr_id>)`.",
        "sr_id": "The DMS service request it was made from; null for a request file's.",
        "source_file": "The request file it was read from (`<name>@<sha256 prefix>` when that name had come "
        "with other bytes before); null for a service request's.",
        "line_number": "Its line in the file, from 1; null for a service request's.",
        "updated_at": "When its status or reason last changed (the wall clock, UTC).",
    },
)
describe(
    xtime_bookings,
    shared=XTIME,
    docs={
        "request_id": "The request booked: one booking per request.",
        "appointment_id": "Xtime's appointment id.",
        "appointment_at": "The appointment's start in UTC; null when Xtime's local time could not be read.",
        "booked_at": "When we recorded the booking (the wall clock, UTC).",
        "attempt_no": "The booking attempt that booked it.",
        "found_by": "How we know: `answer` (Xtime's answer to the booking) or `lookup` (the appointment "
        "labelled with the request id, found by VIN after the answer was lost).",
    },
)
describe(
    xtime_booking_attempts,
    shared=XTIME,
    docs={
        "appointment_local": "The slot sent, as Xtime listed it: the dealership's local time with its offset.",
        "sent_at": "When the attempt was recorded, just before it was sent (the wall clock, UTC).",
        "outcome": "`booked`, `rejected`, `not_sent` or `not_found` (a lookup found nothing); null while the "
        "answer is unknown: the request is looked up before anything is sent again.",
        "detail": "The reason recorded with the outcome (Xtime's `code: message` for `rejected`, what went "
        "wrong otherwise); null when booked or unknown.",
        "resolved_at": "When the outcome was recorded (the wall clock, UTC); null while unknown.",
    },
)
describe(
    xtime_services,
    shared=XTIME,
    docs={
        "opcode": "The service's opcode value in the dealership's Xtime catalog.",
        "name": "The service's name in the catalog (what an `opcode` setting may name instead of the value).",
        "fetched_at": "When the dealership's catalog was fetched (the wall clock, UTC).",
    },
)
describe(
    appointment_request_files,
    shared=XTIME,
    docs={
        "file_name": "The file's name as delivered to `<data root>/appointments/incoming/`; "
        "`<name>@<sha256 prefix>` when that name had come with other bytes before.",
        "sha256": "The sha256 of the file's bytes.",
        "archived_as": "The path of its archived copy, `<data root>/appointments/archive/<sha256 prefix>-<name>`.",
        "lines": "Lines in the file, blank ones included.",
        "invalid_lines": "Lines stored as `invalid` requests.",
    },
)
