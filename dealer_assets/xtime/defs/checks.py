"""The Xtime checks, computed from what the assets just stored and the wall clock (enrollment is real-world)."""

from __future__ import annotations

import dagster as dg
import polars as pl

from dealer_assets.core.asset_metadata import markdown_table

OPCODE_CHECK = "opcode_in_catalog"
EXPIRED_CHECK = "invitation_not_expired"
CONFIRMED_CHECK = "enrollment_confirmed_within_24h"
UNCONFIRMED_CHECK = "no_unconfirmed_bookings"
INVALID_CHECK = "request_lines_valid"


def opcode_check(enrollment: pl.DataFrame, services: pl.DataFrame) -> dg.AssetCheckResult:
    """Each dealership's opcode must be in the catalog fetched for it; the failure names both."""
    fetched = services.select("dealership").unique()
    published = services.select("dealership", "opcode").unique()
    missing = (
        enrollment.select("dealership", "opcode", "confirmed")
        .join(fetched, on="dealership", how="semi")
        .join(published, on=["dealership", "opcode"], how="anti")
        .sort("dealership")
    )
    never = (
        enrollment.filter(pl.col("confirmed")).join(fetched, on="dealership", how="anti").sort("dealership")
    )
    problems = [
        f"{r['dealership']}: opcode '{r['opcode']}' is not in its Xtime catalog" for r in missing.to_dicts()
    ]
    problems += [f"{d}: catalog never fetched" for d in never["dealership"]]
    return dg.AssetCheckResult(
        check_name=OPCODE_CHECK,
        passed=not problems,
        description="; ".join(problems) or "every dealership's opcode is published in its catalog",
        metadata={"missing": markdown_table(missing, 50), "dealerships_without_catalog": len(never)},
    )


def enrollment_checks(enrollment: pl.DataFrame) -> list[dg.AssetCheckResult]:
    """Expired invitations fail; completed but unconfirmed fails after 24 hours and warns before."""
    expired = enrollment.filter(pl.col("state") == "expired").sort("dealership")
    overdue = enrollment.filter(pl.col("state") == "confirmation_overdue").sort("dealership")
    waiting = enrollment.filter(pl.col("state") == "awaiting_confirmation").sort("dealership")
    pending = pl.concat([overdue, waiting])
    lines = [f"{r['dealership']}: {r['detail']}" for r in pending.to_dicts()]
    return [
        dg.AssetCheckResult(
            check_name=EXPIRED_CHECK,
            passed=expired.is_empty(),
            description="; ".join(f"{r['dealership']}: {r['detail']}" for r in expired.to_dicts())
            or "no invitation has expired uncompleted",
            metadata={
                "expired": markdown_table(expired.select("dealership", "invitation_code", "detail"), 50)
            },
        ),
        dg.AssetCheckResult(
            check_name=CONFIRMED_CHECK,
            passed=pending.is_empty(),
            severity=dg.AssetCheckSeverity.ERROR if not overdue.is_empty() else dg.AssetCheckSeverity.WARN,
            description="; ".join(lines) or "every completed opt-in is confirmed",
            metadata={"overdue": len(overdue), "within_24h": len(waiting)},
        ),
    ]


def unconfirmed_check(requests: pl.DataFrame) -> dg.AssetCheckResult:
    """Requests whose booking answer was lost without a VIN to look them up: a person must confirm them."""
    rows = requests.filter(pl.col("status") == "unconfirmed").sort("request_id")
    return dg.AssetCheckResult(
        check_name=UNCONFIRMED_CHECK,
        passed=rows.is_empty(),
        description=(
            f"{len(rows)} request(s) to confirm in Xtime by label: " + ", ".join(rows["request_id"].head(20))
            if len(rows)
            else "no booking awaits confirmation"
        ),
        metadata={"unconfirmed": markdown_table(rows.select("request_id", "dealership", "reason"), 50)},
    )


def invalid_lines_check(requests: pl.DataFrame) -> dg.AssetCheckResult:
    rows = requests.filter(pl.col("status") == "invalid").sort("request_id")
    return dg.AssetCheckResult(
        check_name=INVALID_CHECK,
        passed=rows.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(rows)} request line(s) kept as invalid"
        if len(rows)
        else "every request line is valid",
        metadata={"invalid": markdown_table(rows.select("request_id", "reason"), 50)},
    )
