"""The DMS asset checks, each declared once (`core.checks.Check`)."""

from __future__ import annotations

import dagster as dg
from sqlalchemy.engine import Engine

from dealer_assets.core.asset_metadata import markdown_table
from dealer_assets.core.checks import WARN, Check
from dealer_assets.dms import quality
from dealer_assets.dms.apply_feeds import ReconcileReport
from dealer_assets.dms.figures import left_table, quarantined_table
from dealer_assets.dms.ingest import RawFeedsReport
from dealer_assets.dms.normalize_feeds import NormalizedReport

NO_QUARANTINED_FILES = Check(
    "no_quarantined_files",
    "No file of this run was newly quarantined, and none was left in the drop zone unreadable or unsettled.",
    WARN,
)
REJECTED_ROW_SHARE = Check("rejected_row_share", "At most 5% of a run's rows are rejected.", WARN)
CHECK_DIGITS_VALID = Check(
    "check_digits_valid", "VIN check digits (49 CFR 565) hold; a failure flags, never rejects.", WARN
)
AUTO_CLOSE_GUARD = Check(
    "auto_close_guard",
    "Rule 8: fails while the auto-close guard holds a dealer's closes on that dealer's newest feed and no "
    "operator has decided the hold, naming dealer, feed and numbers. Computed from the warehouse, so it "
    "stays red until `dealer-assets guard release|keep --source S --dealer D --feed AS_OF` decides (or a later "
    "feed that does not trip the guard resolves it). The run itself succeeds: the data is applied.",
)
ONE_ACTIVE_SR_PER_VIN = Check("one_active_sr_per_vin", "A source has at most one active SR per VIN.")
EVENTS_REFER_TO_EXISTING_SRS = Check("events_refer_to_existing_srs", "Every event refers to an existing SR.")
DEALERS_COVERED = Check(
    "dealers_covered_within_3_days",
    "Rule 2: every dealer with active SRs was covered by a feed in the last 3 days (as-of time).",
    WARN,
)
NO_LATE_FEEDS = Check("no_late_feeds", "Rule 10: no feed arrived at or before the last as-of applied.")

SERVICE_REQUEST_CHECKS = (
    AUTO_CLOSE_GUARD,
    ONE_ACTIVE_SR_PER_VIN,
    EVENTS_REFER_TO_EXISTING_SRS,
    DEALERS_COVERED,
    NO_LATE_FEEDS,
)


def quarantine_result(report: RawFeedsReport) -> dg.AssetCheckResult:
    problems = [f"{q.file_name}: {q.reason}" for q in report.quarantined] + [
        f"{item.file_name}: left in the drop zone ({item.detail})" for item in report.left
    ]
    return NO_QUARANTINED_FILES.result(
        not problems,
        "; ".join(problems) or "every file of this run was taken; none was quarantined or left behind",
        {
            "quarantined": len(report.quarantined),
            "files": markdown_table(quarantined_table(report.quarantined), 20),
            "left_in_drop_zone": len(report.left),
            "left": markdown_table(left_table(report.left), 20),
        },
    )


def normalized_results(report: NormalizedReport) -> list[dg.AssetCheckResult]:
    total = report.vehicles + report.rejected
    share = report.rejected / total if total else 0.0
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(report.rejected_by_reason.items()))
    return [
        REJECTED_ROW_SHARE.result(
            share <= 0.05,
            f"{report.rejected} of {total} rows rejected ({share:.1%})" + (f": {reasons}" if reasons else ""),
            {"share": float(share), "rejected": report.rejected, "rows": total, **report.rejected_by_reason},
        ),
        CHECK_DIGITS_VALID.result(
            report.check_digit_failures == 0,
            f"{report.check_digit_failures} VIN(s) with a wrong check digit "
            "(flagged in normalized_vehicles.check_digit_ok, not rejected)",
            {"failures": report.check_digit_failures},
        ),
    ]


def service_request_results(
    engine: Engine, source: str, report: ReconcileReport
) -> list[dg.AssetCheckResult]:
    """The invariants after the run, read from the warehouse (only what this run wrote, where that suffices)."""
    written_since = report.replay_from or min(report.applied_as_of, default=None)
    verdicts = [
        quality.guard_holds(engine, source),
        quality.duplicate_active(engine, source, written_since),
        quality.orphan_events(engine, source, written_since),
        quality.uncovered_dealers(engine, source, report.head, report.per_dealer),
        quality.late_feeds(engine, source),
    ]
    return [c.verdict(v) for c, v in zip(SERVICE_REQUEST_CHECKS, verdicts, strict=True)]
