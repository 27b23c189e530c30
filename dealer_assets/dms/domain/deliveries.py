"""Which runs the files in the drop zone call for: one run per source over the hours its files fall in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from dealer_assets.dms.domain.feed_names import FeedName, Misdelivery, classify


@dataclass
class SourceRun:
    source: str
    first_partition: str
    last_partition: str
    files: list[str] = field(default_factory=list)

    def run_key(self, checksums: dict[str, str]) -> str:
        digest = hashlib.sha256("\n".join(f"{f} {checksums.get(f, '')}" for f in sorted(self.files)).encode())
        return f"{self.source}:{self.first_partition}:{self.last_partition}:{digest.hexdigest()[:16]}"


@dataclass
class DeliveryPlan:
    runs: dict[str, SourceRun] = field(default_factory=dict)
    misdelivered: list[Misdelivery] = field(default_factory=list)


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
        run = plan.runs.get(verdict.source)
        key = verdict.partition_key
        if run is None:
            plan.runs[verdict.source] = SourceRun(verdict.source, key, key, [name])
        else:
            run.first_partition = min(run.first_partition, key)
            run.last_partition = max(run.last_partition, key)
            run.files.append(name)
    return plan
