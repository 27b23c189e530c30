"""The DMS asset checks, each declared once (`core.checks.Check`)."""

from __future__ import annotations

from dealer_assets.core.checks import WARN, Check

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
