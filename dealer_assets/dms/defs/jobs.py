"""One job per source (raw feeds to service requests), and the drop-zone triage job."""

from pathlib import Path

import dagster as dg

from dealer_assets.core.asset_metadata import markdown_table
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.tags import SOURCE_TAG, area_tags
from dealer_assets.core.timeutil import parse_utc
from dealer_assets.dms.asset_specs import MISDELIVERED_KEY, keys_for
from dealer_assets.dms.settings_preview import preview, summary_lines, write_preview


def job_name(source: str) -> str:
    return f"dms_{source}_feeds_job"


MISDELIVERED_JOB = "dms_misdelivered_feeds_job"


def build_source_job(source: str, executor_def: dg.ExecutorDefinition | None = None):
    """Partitioned by the feed days, as its three steps are (Dagster infers it from the selection); the tables
    the steps write come along, reported once per run."""
    return dg.define_asset_job(
        name=job_name(source),
        selection=dg.AssetSelection.assets(*keys_for(source)),
        tags=area_tags("dms", **{SOURCE_TAG: source}),
        executor_def=executor_def,
        description=f"Feeds of source `{source}` from the drop zone to reconciled service requests.",
    )


misdelivered_job = dg.define_asset_job(
    name=MISDELIVERED_JOB,
    selection=dg.AssetSelection.assets(MISDELIVERED_KEY),
    tags=area_tags("dms"),
    description="Quarantine drop-zone files that no source can take.",
)


WHAT_IF_JOB = "dms_what_if_job"


@dg.op(
    config_schema={
        "settings_file": dg.Field(str, description="the settings file to try (a path on the code server)"),
        "sources": dg.Field([str], is_required=False, default_value=[], description="default: every source"),
        "from": dg.Field(str, is_required=False, description="ISO 8601 as-of to replay from (default: all)"),
    },
    out=dg.Out(dg.Nothing),
)
def what_if(context: dg.OpExecutionContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource):
    """Replay the archive under another settings file and compare with the service requests now (CONTRACT
    section 10): the CSVs go to `<data root>/what_if/<run id>/`; nothing else is written."""
    config = context.op_config
    paths = dealer_env.paths()
    start = parse_utc(config["from"], key="from", origin="run config") if config.get("from") else None
    result = preview(
        paths, Path(config["settings_file"]), warehouse.engine(), config["sources"] or None, start
    )
    out = paths.data_dir / "what_if" / context.run_id
    diff, summary = write_preview(result, out)
    for line in summary_lines(result, diff, summary):
        context.log.info(line)
    yield dg.Output(
        None,
        metadata={
            "summary": markdown_table(summary, 50),
            "diff": markdown_table(diff, 20),
            "changes": len(diff),
            "lines": dg.MetadataValue.md(
                "\n".join(f"- {line}" for line in summary_lines(result, diff, summary))
            ),
            "folder": dg.MetadataValue.path(str(out)),
        },
    )


@dg.job(name=WHAT_IF_JOB, tags=area_tags("dms"))
def dms_what_if_job():
    """What other settings would do to every service request, from the archive; changes nothing. Launch it
    from the Launchpad with `settings_file` (and `sources`, `from`)."""
    what_if()
