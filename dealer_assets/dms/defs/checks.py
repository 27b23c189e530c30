"""Each DMS asset check declared once: its name, description and severity make both its spec and its result."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from dealer_assets.core.metadata import markdown_table
from dealer_assets.dms.quality import Verdict


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
    blocking: bool = False

    def spec(self, asset: dg.AssetKey) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(self.name, asset=asset, description=self.description, blocking=self.blocking)

    def result(
        self, passed: bool, description: str | None, metadata: dict | None = None
    ) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            check_name=self.name,
            passed=passed,
            severity=self.severity,
            description=description,
            metadata=metadata or {},
        )

    def evaluation(self, asset: dg.AssetKey, verdict: Verdict) -> dg.AssetCheckEvaluation:
        """The same verdict reported outside a run (e.g. right after an operator's decision)."""
        return dg.AssetCheckEvaluation(
            asset_key=asset,
            check_name=self.name,
            passed=verdict.passed,
            severity=self.severity,
            description=verdict.description,
            metadata={"rows": verdict.rows.height, "detail": markdown_table(verdict.rows, 20)},
        )

    def verdict(self, verdict: Verdict) -> dg.AssetCheckResult:
        return self.result(
            verdict.passed,
            verdict.description,
            {"rows": verdict.rows.height, "detail": markdown_table(verdict.rows, 20)},
        )


WARN = dg.AssetCheckSeverity.WARN

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
