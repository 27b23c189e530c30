"""One job per source (raw feeds to service requests), and the drop-zone triage job."""

from __future__ import annotations

import dagster as dg

from dealer_assets.core.tags import SOURCE_TAG

from .specs import MISDELIVERED_KEY, keys_for


def job_name(source: str) -> str:
    return f"dms_{source}_feeds"


MISDELIVERED_JOB = "dms_misdelivered_feeds"


def build_source_job(
    source: str, executor_def: dg.ExecutorDefinition | None = None
) -> dg.UnresolvedAssetJobDefinition:
    """Partitioned by the feed days, as its three steps are (Dagster infers it from the selection); the tables
    the steps write come along, reported once per run."""
    return dg.define_asset_job(
        name=job_name(source),
        selection=dg.AssetSelection.assets(*keys_for(source)),
        tags={SOURCE_TAG: source},
        executor_def=executor_def,
        description=f"Feeds of source `{source}` from the drop zone to reconciled service requests.",
    )


misdelivered_job = dg.define_asset_job(
    name=MISDELIVERED_JOB,
    selection=dg.AssetSelection.assets(MISDELIVERED_KEY),
    description="Quarantine drop-zone files that no source can take.",
)
