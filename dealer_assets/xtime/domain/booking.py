"""The booking state machine: what to do next with each request, so that none is ever booked twice.

Every send is preceded by a stored attempt whose `outcome` stays NULL until Xtime's answer is recorded. An
attempt still NULL at the start of a run means its answer was lost (a timeout, a kill): the request is looked up
by VIN and label before anything is sent again, and without a VIN it becomes `unconfirmed` for a person. A
request whose window has ended by `now` can never be booked: it is `no_slot`, unless a lost answer may have
booked it (looked up first).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from dealer_assets.xtime.domain.opcodes import resolve_opcodes
from dealer_assets.xtime.domain.slots import local_to_utc_by_zone

FINAL = ("booked", "no_slot", "rejected", "invalid", "unconfirmed")
ATTEMPT_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "attempt_no": pl.Int64(),
    "dealership": pl.String(),
    "appointment_local": pl.String(),
    "opcode": pl.String(),
    "sent_at": pl.Datetime("us", "UTC"),
    "outcome": pl.String(),
    "detail": pl.String(),
}
READINESS_SCHEMA: dict[str, pl.DataType] = {
    "dealership": pl.String(),
    "time_zone": pl.String(),
    "confirmed": pl.Boolean(),
    "enrollment_detail": pl.String(),
    "send_opcode": pl.String(),
    "opcode_problem": pl.String(),
}
PLAN_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "dealership": pl.String(),
    "action": pl.String(),
    "status": pl.String(),
    "reason": pl.String(),
    "next_attempt_no": pl.Int64(),
    "opcode": pl.String(),
}
ACTIONS = ("none", "lookup", "unconfirm", "window_passed", "hold", "wait_opcode", "book")


def _facts(
    requests: pl.DataFrame, attempts: pl.DataFrame, readiness: pl.DataFrame, now: datetime
) -> pl.DataFrame:
    """Each request with its attempts summed up, its dealership's readiness, and whether its window has ended."""
    per_request = (
        attempts.cast(ATTEMPT_SCHEMA)
        .group_by("request_id")
        .agg(
            pl.col("outcome").is_null().any().alias("in_doubt"),
            pl.col("attempt_no").max().alias("last_attempt_no"),
            pl.col("appointment_local").filter(pl.col("outcome").is_null()).first().alias("doubt_slot"),
            pl.col("opcode").filter(pl.col("outcome").is_null()).first().alias("doubt_opcode"),
        )
    )
    ready = readiness.cast(READINESS_SCHEMA)
    zones = ready["time_zone"].drop_nulls().unique().sort().to_list()
    window_end = local_to_utc_by_zone("latest", "time_zone", zones)
    return (
        requests.select("request_id", "dealership", "vin", "status", "reason", "latest")
        .join(per_request, on="request_id", how="left")
        .join(ready, on="dealership", how="left")
        .with_columns(
            pl.col("in_doubt").fill_null(False),
            pl.col("last_attempt_no").fill_null(0),
            (window_end <= pl.lit(now).dt.convert_time_zone("UTC")).fill_null(False).alias("window_passed"),
        )
    )


def _action() -> pl.Expr:
    return (
        pl.when(pl.col("status").is_in(FINAL))
        .then(pl.lit("none"))
        .when(pl.col("in_doubt") & pl.col("vin").is_not_null())
        .then(pl.lit("lookup"))
        .when(pl.col("in_doubt"))
        .then(pl.lit("unconfirm"))
        .when(pl.col("window_passed"))
        .then(pl.lit("window_passed"))
        .when(~pl.col("confirmed").fill_null(False))
        .then(pl.lit("hold"))
        .when(pl.col("send_opcode").is_null())
        .then(pl.lit("wait_opcode"))
        .otherwise(pl.lit("book"))
    )


def _reason() -> pl.Expr:
    unconfirmed = pl.format(
        "the answer to booking attempt {} ({}) was lost and without a VIN it cannot be looked up: confirm in "
        "Xtime whether an appointment labelled '{}' exists; it is never re-sent automatically",
        pl.col("last_attempt_no"),
        pl.coalesce(pl.col("doubt_slot"), pl.lit("slot unknown")),
        pl.col("request_id"),
    )
    window = pl.format(
        "the window ended at {} ({}) before the request could be booked",
        pl.col("latest"),
        pl.col("time_zone"),
    )
    return (
        pl.when(pl.col("action") == "unconfirm")
        .then(unconfirmed)
        .when(pl.col("action") == "window_passed")
        .then(window)
        .when(pl.col("action") == "hold")
        .then(pl.coalesce(pl.col("enrollment_detail"), pl.lit("dealership is not configured")))
        .when(pl.col("action") == "wait_opcode")
        .then(pl.col("opcode_problem"))
        .otherwise(pl.col("reason"))
    )


STATUS_OF_ACTION = {"unconfirm": "unconfirmed", "window_passed": "no_slot", "hold": "held_not_enrolled"}


def plan(
    requests: pl.DataFrame, attempts: pl.DataFrame, readiness: pl.DataFrame, now: datetime
) -> pl.DataFrame:
    """One row per request: `action`, the status and reason it has until the action's result is known, and the
    opcode value to send (or the one sent by the attempt to look up).

    `requests` has request_id, dealership, vin, status, reason, latest (local); `attempts` follows
    ATTEMPT_SCHEMA; `readiness` has one row per dealership (READINESS_SCHEMA).
    """
    status = (
        pl.when(pl.col("action") == "none")
        .then(pl.col("status"))
        .otherwise(pl.col("action").replace_strict(STATUS_OF_ACTION, default="pending"))
    )
    return (
        _facts(requests, attempts, readiness, now)
        .with_columns(_action().alias("action"))
        .with_columns(
            status.alias("status"),
            _reason().alias("reason"),
            (pl.col("last_attempt_no") + 1).alias("next_attempt_no"),
            pl.when(pl.col("action") == "lookup")
            .then(pl.col("doubt_opcode"))
            .otherwise(pl.col("send_opcode"))
            .alias("opcode"),
        )
        .select(list(PLAN_SCHEMA))
        .sort("request_id")
        .cast(PLAN_SCHEMA)
    )


def readiness(enrollment: pl.DataFrame, catalog: pl.DataFrame) -> pl.DataFrame:
    """Per dealership: confirmed or not, and the opcode value its setting means in the catalog last fetched."""
    opcodes = resolve_opcodes(enrollment, catalog).select(
        "dealership", "send_opcode", pl.col("problem").alias("opcode_problem")
    )
    return (
        enrollment.select("dealership", "time_zone", "confirmed", pl.col("detail").alias("enrollment_detail"))
        .join(opcodes, on="dealership", how="left")
        .select(list(READINESS_SCHEMA))
        .cast(READINESS_SCHEMA)
    )


def find_labelled(appointments: pl.DataFrame, request_id: str) -> pl.DataFrame:
    """The appointments Xtime holds under our label (the request id): at most one unless someone copied it."""
    return appointments.filter(pl.col("label") == request_id).sort("appointment_id")
