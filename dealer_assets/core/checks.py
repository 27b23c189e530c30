"""One way to declare an asset check in every area: its name, description and severity make both its spec and
its result, and a `Verdict` (what was found, and the rows that show it) is what a check's evaluation returns."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import polars as pl

from dealer_assets.core.asset_metadata import markdown_table

WARN = dg.AssetCheckSeverity.WARN


@dataclass(frozen=True)
class Verdict:
    passed: bool
    description: str
    rows: pl.DataFrame


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
    blocking: bool = False

    def spec(self, asset: dg.AssetKey) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(self.name, asset=asset, description=self.description, blocking=self.blocking)

    def result(
        self,
        passed: bool,
        description: str | None,
        metadata: dict | None = None,
        severity: dg.AssetCheckSeverity | None = None,
    ) -> dg.AssetCheckResult:
        """`severity` overrides the check's own for this result (a finding that only warns until a deadline)."""
        return dg.AssetCheckResult(
            check_name=self.name,
            passed=passed,
            severity=severity or self.severity,
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
