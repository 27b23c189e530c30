"""The booking state machine: what to do next with each request, so that none is ever booked twice.

Every send is preceded by a stored attempt whose `outcome` stays NULL until Xtime's answer is recorded. An
attempt still NULL at the start of a run means its answer was lost (a timeout, a kill): the request is looked up
by VIN and label before anything is sent again, and without a VIN it becomes `unconfirmed` for a person.
"""

from __future__ import annotations

import polars as pl

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
    "confirmed": pl.Boolean(),
    "enrollment_detail": pl.String(),
    "opcode": pl.String(),
    "opcode_published": pl.Boolean(),
}
PLAN_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "dealership": pl.String(),
    "action": pl.String(),
    "status": pl.String(),
    "reason": pl.String(),
    "next_attempt_no": pl.Int64(),
}
ACTIONS = ("none", "lookup", "unconfirm", "hold", "wait_opcode", "book")


def plan(requests: pl.DataFrame, attempts: pl.DataFrame, readiness: pl.DataFrame) -> pl.DataFrame:
    """One row per request: `action` and the status and reason it has until the action's result is known.

    `requests` has request_id, dealership, vin, status; `attempts` follows ATTEMPT_SCHEMA; `readiness` has one
    row per dealership (READINESS_SCHEMA).
    """
    per_request = (
        attempts.cast(ATTEMPT_SCHEMA)
        .group_by("request_id")
        .agg(
            pl.col("outcome").is_null().any().alias("in_doubt"),
            pl.col("attempt_no").max().alias("last_attempt_no"),
            pl.col("appointment_local").filter(pl.col("outcome").is_null()).first().alias("doubt_slot"),
        )
    )
    frame = (
        requests.select("request_id", "dealership", "vin", "status", "reason")
        .join(per_request, on="request_id", how="left")
        .join(readiness.cast(READINESS_SCHEMA), on="dealership", how="left")
        .with_columns(pl.col("in_doubt").fill_null(False), pl.col("last_attempt_no").fill_null(0))
    )
    action = (
        pl.when(pl.col("status").is_in(FINAL))
        .then(pl.lit("none"))
        .when(pl.col("in_doubt") & pl.col("vin").is_not_null())
        .then(pl.lit("lookup"))
        .when(pl.col("in_doubt"))
        .then(pl.lit("unconfirm"))
        .when(~pl.col("confirmed").fill_null(False))
        .then(pl.lit("hold"))
        .when(~pl.col("opcode_published").fill_null(False))
        .then(pl.lit("wait_opcode"))
        .otherwise(pl.lit("book"))
    )
    unconfirmed = pl.format(
        "the answer to booking attempt {} ({}) was lost and without a VIN it cannot be looked up: confirm in "
        "Xtime whether an appointment labelled '{}' exists; it is never re-sent automatically",
        pl.col("last_attempt_no"),
        pl.coalesce(pl.col("doubt_slot"), pl.lit("slot unknown")),
        pl.col("request_id"),
    )
    reason = (
        pl.when(pl.col("action") == "none")
        .then(pl.col("reason"))
        .when(pl.col("action") == "unconfirm")
        .then(unconfirmed)
        .when(pl.col("action") == "hold")
        .then(pl.coalesce(pl.col("enrollment_detail"), pl.lit("dealership is not configured")))
        .when(pl.col("action") == "wait_opcode")
        .then(
            pl.format(
                "opcode '{}' is not in the catalog of dealership {}", pl.col("opcode"), pl.col("dealership")
            )
        )
        .otherwise(pl.col("reason"))
    )
    status = (
        pl.when(pl.col("action") == "none")
        .then(pl.col("status"))
        .when(pl.col("action") == "unconfirm")
        .then(pl.lit("unconfirmed"))
        .when(pl.col("action") == "hold")
        .then(pl.lit("held_not_enrolled"))
        .otherwise(pl.lit("pending"))
    )
    return (
        frame.with_columns(action.alias("action"))
        .with_columns(
            status.alias("status"),
            reason.alias("reason"),
            (pl.col("last_attempt_no") + 1).alias("next_attempt_no"),
        )
        .select(list(PLAN_SCHEMA))
        .sort("request_id")
        .cast(PLAN_SCHEMA)
    )


def readiness(enrollment: pl.DataFrame, catalog: pl.DataFrame) -> pl.DataFrame:
    """Per dealership: confirmed or not, and whether its opcode is published in the catalog last fetched."""
    published = (
        catalog.select("dealership", "opcode").unique().with_columns(pl.lit(True).alias("opcode_published"))
    )
    return (
        enrollment.select("dealership", "confirmed", pl.col("detail").alias("enrollment_detail"), "opcode")
        .join(published, on=["dealership", "opcode"], how="left")
        .with_columns(pl.col("opcode_published").fill_null(False))
        .cast(READINESS_SCHEMA)
    )


def find_labelled(appointments: pl.DataFrame, request_id: str) -> pl.DataFrame:
    """The appointments Xtime holds under our label (the request id): at most one unless someone copied it."""
    return appointments.filter(pl.col("label") == request_id).sort("appointment_id")
