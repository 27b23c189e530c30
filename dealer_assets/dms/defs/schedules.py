"""The safety net: every 1 or 2 hours, a run per source for files that waited in the drop zone too long
(a sensor that was off, a run that failed), or else for archived feeds no run applied (a run killed between
archiving and reconciling, whose files have left the drop zone). Cron from `DEALER_SAFETY_NET_CRON`."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.run_status import IN_FLIGHT
from dealer_assets.core.tags import MODE_TAG, PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG, SOURCE_TAG
from dealer_assets.dms.archive import FeedArchive
from dealer_assets.dms.domain.deliveries import plan_deliveries
from dealer_assets.dms.ledger import applied_through, pending_partitions
from dealer_assets.dms.settings import load_settings

from .jobs import MISDELIVERED_JOB, job_name
from .sensors import run_requests

STUCK_AFTER = timedelta(minutes=10)


def _stuck_files(dealer_env: DealerEnvironment, now: datetime) -> list[str]:
    cutoff = (now - STUCK_AFTER).timestamp()
    store = FeedArchive(dealer_env.paths())
    stuck = [p.name for p in store.incoming() if _mtime(p) < cutoff]
    return stuck + [p.name for p in store.irregular()]


def _mtime(path: Path) -> float:
    try:
        return os.lstat(path).st_mtime
    except FileNotFoundError:
        return float("inf")


def left_behind(
    context: dg.ScheduleEvaluationContext, dealer_env: DealerEnvironment, engine: sa.Engine, source: str
) -> list[dg.RunRequest]:
    """One run over the days of archived feeds after the last applied one, unless a run of the source is in
    flight (it applies them); keyed by those days and the last applied feed, so a feed that fails again is
    not asked for again until something changes."""
    days = pending_partitions(dealer_env.paths(), source, engine)
    in_flight = dg.RunsFilter(tags={SOURCE_TAG: source}, statuses=IN_FLIGHT)
    if not days or context.instance.get_run_records(in_flight, limit=1):
        return []
    head = applied_through(engine, source)
    key = f"left-behind:{source}:{days[0]}...{days[-1]}:after:{head.isoformat() if head else 'none'}"
    tags = {PARTITION_RANGE_START_TAG: days[0], PARTITION_RANGE_END_TAG: days[-1], MODE_TAG: "incremental"}
    return [dg.RunRequest(job_name=job_name(source), run_key=key, tags=tags)]


def build_safety_net_schedule(source: str, cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"dms_{source}_safety_net_schedule",
        cron_schedule=cron,
        job_name=job_name(source),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            f"Processes `{source}` files left in the drop zone for more than 10 minutes, or else archived "
            "feeds that no run applied."
        ),
    )
    def _schedule(
        context: dg.ScheduleEvaluationContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ):
        now = datetime.now(UTC)
        settings = load_settings(dealer_env.settings_file)
        plan = plan_deliveries(
            _stuck_files(dealer_env, now), set(settings.sources), dealer_env.paths().history_start, now
        )
        plan.misdelivered = []
        plan.runs = {s: r for s, r in plan.runs.items() if s == source}
        heads = {s: applied_through(warehouse.engine(), s) for s in plan.runs}
        requests = run_requests(plan, {}, heads) or left_behind(
            context, dealer_env, warehouse.engine(), source
        )
        return requests or dg.SkipReason(
            f"no {source} file waited in the drop zone, no archived feed unapplied"
        )

    return _schedule


def build_misdelivered_schedule(cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="dms_misdelivered_safety_net_schedule",
        cron_schedule=cron,
        job_name=MISDELIVERED_JOB,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def _schedule(
        context: dg.ScheduleEvaluationContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ):
        now = datetime.now(UTC)
        plan = plan_deliveries(
            _stuck_files(dealer_env, now),
            set(load_settings(dealer_env.settings_file).sources),
            dealer_env.paths().history_start,
            now,
        )
        return [dg.RunRequest()] if plan.misdelivered else dg.SkipReason("no misdelivered file waiting")

    return _schedule
