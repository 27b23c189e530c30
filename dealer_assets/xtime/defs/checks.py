"""The Xtime asset checks, each declared once (`core.checks.Check`) and computed from what the assets just
stored and the wall clock (enrollment is about the real world)."""

from __future__ import annotations

import dagster as dg
import polars as pl

from dealer_assets.core.asset_metadata import markdown_table
from dealer_assets.core.checks import WARN, Check
from dealer_assets.xtime.domain.opcodes import resolve_opcodes

OPCODE_IN_CATALOG = Check(
    "opcode_in_catalog",
    "Each dealership's opcode is published in the Xtime catalog fetched for it, as an opcode value or as the "
    "name of exactly one service, and every confirmed dealership's catalog has been fetched.",
)
REQUEST_LINES_VALID = Check(
    "request_lines_valid",
    "Every line of the request files is a valid request; invalid ones are listed.",
    WARN,
)
INVITATION_NOT_EXPIRED = Check(
    "invitation_not_expired",
    "No dealership's invitation expired (72 h) before the opt-in was completed: a late opt-in needs a new code.",
)
ENROLLMENT_CONFIRMED_WITHIN_24H = Check(
    "enrollment_confirmed_within_24h",
    "Every completed opt-in is confirmed by Xtime: warns while one awaits confirmation, fails after 24 hours.",
)
NO_UNCONFIRMED_BOOKINGS = Check(
    "no_unconfirmed_bookings",
    "No booking whose answer was lost without a VIN to look it up awaits a person's confirmation in Xtime.",
)
BOOKINGS_CHECKS = (INVITATION_NOT_EXPIRED, ENROLLMENT_CONFIRMED_WITHIN_24H, NO_UNCONFIRMED_BOOKINGS)


def opcode_check(enrollment: pl.DataFrame, services: pl.DataFrame) -> dg.AssetCheckResult:
    """The failure names each dealership whose opcode is missing, or the name of several services (naming
    them), and each confirmed dealership never fetched."""
    fetched = services.select("dealership").unique()
    missing = (
        resolve_opcodes(enrollment, services)
        .filter(pl.col("send_opcode").is_null())
        .join(fetched, on="dealership", how="semi")
        .sort("dealership")
    )
    never = (
        enrollment.filter(pl.col("confirmed")).join(fetched, on="dealership", how="anti").sort("dealership")
    )
    problems = [
        f"{r['dealership']}: opcode '{r['opcode']}' names {r['same_name']} services in its Xtime catalog: "
        f"{r['services']}"
        if r["same_name"] > 1
        else f"{r['dealership']}: opcode '{r['opcode']}' is not in its Xtime catalog"
        for r in missing.to_dicts()
    ]
    problems += [f"{d}: catalog never fetched" for d in never["dealership"]]
    return OPCODE_IN_CATALOG.result(
        not problems,
        "; ".join(problems) or "every dealership's opcode is published in its catalog",
        {
            "missing": markdown_table(missing.select("dealership", "opcode", "services"), 50),
            "dealerships_without_catalog": len(never),
        },
    )


def enrollment_checks(enrollment: pl.DataFrame) -> list[dg.AssetCheckResult]:
    """Expired invitations fail; completed but unconfirmed fails after 24 hours and warns before."""
    expired = enrollment.filter(pl.col("state") == "expired").sort("dealership")
    overdue = enrollment.filter(pl.col("state") == "confirmation_overdue").sort("dealership")
    waiting = enrollment.filter(pl.col("state") == "awaiting_confirmation").sort("dealership")
    pending = pl.concat([overdue, waiting])
    return [
        INVITATION_NOT_EXPIRED.result(
            expired.is_empty(),
            "; ".join(f"{r['dealership']}: {r['detail']}" for r in expired.to_dicts())
            or "no invitation has expired uncompleted",
            {"expired": markdown_table(expired.select("dealership", "invitation_code", "detail"), 50)},
        ),
        ENROLLMENT_CONFIRMED_WITHIN_24H.result(
            pending.is_empty(),
            "; ".join(f"{r['dealership']}: {r['detail']}" for r in pending.to_dicts())
            or "every completed opt-in is confirmed",
            {"overdue": len(overdue), "within_24h": len(waiting)},
            severity=None if not overdue.is_empty() else WARN,
        ),
    ]


def unconfirmed_check(requests: pl.DataFrame) -> dg.AssetCheckResult:
    """Lists the requests a person must confirm in Xtime by their label."""
    rows = requests.filter(pl.col("status") == "unconfirmed").sort("request_id")
    return NO_UNCONFIRMED_BOOKINGS.result(
        rows.is_empty(),
        f"{len(rows)} request(s) to confirm in Xtime by label: " + ", ".join(rows["request_id"].head(20))
        if len(rows)
        else "no booking awaits confirmation",
        {"unconfirmed": markdown_table(rows.select("request_id", "dealership", "reason"), 50)},
    )


def invalid_lines_check(requests: pl.DataFrame) -> dg.AssetCheckResult:
    """Counts the lines kept as invalid and lists them with their reasons."""
    rows = requests.filter(pl.col("status") == "invalid").sort("request_id")
    return REQUEST_LINES_VALID.result(
        rows.is_empty(),
        f"{len(rows)} request line(s) kept as invalid" if len(rows) else "every request line is valid",
        {"invalid": markdown_table(rows.select("request_id", "reason"), 50)},
    )
