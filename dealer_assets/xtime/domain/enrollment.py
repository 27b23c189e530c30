"""Enrollment by invitation code, judged against the wall clock passed in as `now` (it is about the real world).

An invitation not completed within 72 hours of `issued_at` has expired (a new code must be issued), and so has
one completed later than that, even if someone recorded a confirmation: a late opt-in used a dead code. A
completed one that Xtime has not confirmed within 24 hours is overdue. Only a confirmed dealership gets bookings.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from dealer_assets.xtime.settings import XtimeSettings

INVITATION_TTL = timedelta(hours=72)
CONFIRMATION_WINDOW = timedelta(hours=24)
UTC_TS = pl.Datetime("us", "UTC")
ENROLLMENT_SCHEMA: dict[str, pl.DataType] = {
    "dealership": pl.String(),
    "dealer_code": pl.String(),
    "opcode": pl.String(),
    "time_zone": pl.String(),
    "invitation_code": pl.String(),
    "issued_at": UTC_TS,
    "completed_at": UTC_TS,
    "confirmed_at": UTC_TS,
    "state": pl.String(),
    "confirmed": pl.Boolean(),
    "detail": pl.String(),
}


def dealerships_frame(settings: XtimeSettings) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "dealership": k,
                "dealer_code": d.dealer_code,
                "opcode": d.opcode,
                "time_zone": d.time_zone,
                "invitation_code": d.invitation.code,
                "issued_at": d.invitation.issued_at,
                "completed_at": d.invitation.completed_at,
                "confirmed_at": d.invitation.confirmed_at,
            }
            for k, d in sorted(settings.dealerships.items())
        ],
        schema={k: v for k, v in ENROLLMENT_SCHEMA.items() if k not in ("state", "confirmed", "detail")},
    )


def enrollment_states(settings: XtimeSettings, now: datetime) -> pl.DataFrame:
    """One row per dealership: `confirmed`, `awaiting_confirmation`, `confirmation_overdue`, `invited`, `expired`."""
    now_lit = pl.lit(now).dt.convert_time_zone("UTC")
    expires = pl.col("issued_at") + INVITATION_TTL
    due = pl.col("completed_at") + CONFIRMATION_WINDOW
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    late = pl.col("completed_at") > expires
    state = (
        pl.when(late)
        .then(pl.lit("expired"))
        .when(pl.col("confirmed_at").is_not_null())
        .then(pl.lit("confirmed"))
        .when(pl.col("completed_at").is_not_null() & (now_lit > due))
        .then(pl.lit("confirmation_overdue"))
        .when(pl.col("completed_at").is_not_null())
        .then(pl.lit("awaiting_confirmation"))
        .when(now_lit > expires)
        .then(pl.lit("expired"))
        .otherwise(pl.lit("invited"))
    )
    detail = (
        pl.when(pl.col("state") == "confirmed")
        .then(pl.format("confirmed at {}", pl.col("confirmed_at").dt.strftime(fmt)))
        .when(pl.col("state") == "confirmation_overdue")
        .then(
            pl.format(
                "opt-in completed at {} but Xtime has not confirmed it within 24 hours (due {})",
                pl.col("completed_at").dt.strftime(fmt),
                due.dt.strftime(fmt),
            )
        )
        .when(pl.col("state") == "awaiting_confirmation")
        .then(
            pl.format(
                "opt-in completed at {}; Xtime may take until {} to confirm",
                pl.col("completed_at").dt.strftime(fmt),
                due.dt.strftime(fmt),
            )
        )
        .when(late)
        .then(
            pl.format(
                "invitation {} issued at {} expired at {}; the opt-in completed at {} came too late: a new "
                "invitation code is needed",
                pl.col("invitation_code"),
                pl.col("issued_at").dt.strftime(fmt),
                expires.dt.strftime(fmt),
                pl.col("completed_at").dt.strftime(fmt),
            )
        )
        .when(pl.col("state") == "expired")
        .then(
            pl.format(
                "invitation {} issued at {} expired at {} without being completed: a new invitation code is needed",
                pl.col("invitation_code"),
                pl.col("issued_at").dt.strftime(fmt),
                expires.dt.strftime(fmt),
            )
        )
        .otherwise(
            pl.format(
                "invitation {} issued at {} is not completed yet (expires {})",
                pl.col("invitation_code"),
                pl.col("issued_at").dt.strftime(fmt),
                expires.dt.strftime(fmt),
            )
        )
    )
    return (
        dealerships_frame(settings)
        .with_columns(state.alias("state"))
        .with_columns((pl.col("state") == "confirmed").alias("confirmed"), detail.alias("detail"))
        .select(list(ENROLLMENT_SCHEMA))
        .cast(ENROLLMENT_SCHEMA)
    )
