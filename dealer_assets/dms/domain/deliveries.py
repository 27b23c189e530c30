"""Which runs the files in the drop zone call for: one run per source over the days its files fall in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from dealer_assets.dms.domain.feed_names import (
    FeedName,
    Misdelivery,
    classify,
    day_has_begun,
    next_partition_key,
    partition_key_of,
)


@dataclass
class SourceRun:
    source: str
    first_partition: str
    last_partition: str
    files: list[str] = field(default_factory=list)

    def run_key(self, checksums: dict[str, str]) -> str:
        digest = hashlib.sha256("\n".join(f"{f} {checksums.get(f, '')}" for f in sorted(self.files)).encode())
        return f"{self.source}:{self.first_partition}:{self.last_partition}:{digest.hexdigest()[:16]}"

    def since(self, applied_through: datetime | None) -> SourceRun:
        """The run widened back to the day after the last applied feed's, so that the days between the two
        feeds are materialized as days without a feed instead of staying missing."""
        if applied_through is None:
            return self
        first = min(self.first_partition, next_partition_key(partition_key_of(applied_through)))
        return SourceRun(self.source, min(first, self.last_partition), self.last_partition, self.files)


@dataclass
class DeliveryPlan:
    runs: dict[str, SourceRun] = field(default_factory=dict)
    misdelivered: list[Misdelivery] = field(default_factory=list)
    not_yet: list[str] = field(default_factory=list)
    """Feeds stamped (within the hour allowed) into a UTC day that has not begun: taken once it begins."""


def plan_deliveries(
    file_names: list[str], sources: set[str], history_start: datetime, received_at: datetime
) -> DeliveryPlan:
    plan = DeliveryPlan()
    for name in sorted(file_names):
        verdict = classify(name, sources, history_start, received_at)
        if isinstance(verdict, Misdelivery):
            plan.misdelivered.append(verdict)
            continue
        assert isinstance(verdict, FeedName)
        if not day_has_begun(verdict.as_of, received_at):
            plan.not_yet.append(name)
            continue
        run = plan.runs.get(verdict.source)
        key = verdict.partition_key
        if run is None:
            plan.runs[verdict.source] = SourceRun(verdict.source, key, key, [name])
        else:
            run.first_partition = min(run.first_partition, key)
            run.last_partition = max(run.last_partition, key)
            run.files.append(name)
    return plan
