"""`dealer-assets`: catch up on the drop zone, or replay history, as Dagster runs in the instance at DAGSTER_HOME."""
from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from dealer_assets.config import PROJECT_ROOT, ConfigError, DealerPaths, parse_utc


def _instance():
    from dagster import DagsterInstance

    if not os.environ.get("DAGSTER_HOME"):
        home = PROJECT_ROOT / ".dagster_home"
        home.mkdir(exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return DagsterInstance.get()


def _range_tags(first: str, last: str, **extra: str) -> dict[str, str]:
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last, **extra}


def _print_run(label: str, result) -> None:  # noqa: ANN001
    status = "succeeded" if result.success else "FAILED"
    print(f"  {label}: run {result.run_id} {status}")
    shown_keys = set()
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key in shown_keys:
            continue
        shown_keys.add(mat.asset_key)
        meta = mat.metadata
        shown = {k: v.value for k, v in meta.items()
                 if k in ("feeds", "archived_files", "quarantined_files", "malformed_rows", "dagster/row_count",
                          "rejected_rows", "feeds_applied", "late_feeds", "created", "updated", "closed", "held",
                          "skipped", "active", "quarantined", "mode")}
        if shown:
            print(f"    {mat.asset_key.to_user_string()}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    for check in result.get_asset_check_evaluations():
        if not check.passed:
            print(f"    check {check.asset_check_key.name} failed: {check.description or ''}")


def catch_up(paths: DealerPaths) -> int:
    """Process every pending feed in the drop zone, per source in as-of order, through every DMS asset."""
    from dealer_assets.definitions import build_definitions
    from dealer_assets.defs.dms.assets import MODE_TAG
    from dealer_assets.defs.dms.jobs import MISDELIVERED_JOB, job_name
    from dealer_assets.dms.reconciliation import pending_partitions
    from dealer_assets.domain.deliveries import plan_deliveries
    from dealer_assets.feed_store import FeedStore
    from dealer_assets.settings import load_settings
    from dealer_assets.warehouse.store import engine_for

    settings = load_settings(paths.settings_file)
    defs = build_definitions(paths)
    instance = _instance()
    now = datetime.now(UTC)
    names = [p.name for p in FeedStore(paths).incoming()]
    plan = plan_deliveries(names, set(settings.sources), paths.history_start, now)
    print(f"drop zone {paths.incoming}: {len(names)} file(s); warehouse {_safe_url(paths.warehouse_url)}")
    ok = True
    if plan.misdelivered:
        result = defs.get_job_def(MISDELIVERED_JOB).execute_in_process(instance=instance, raise_on_error=False)
        _print_run(f"misdelivered ({len(plan.misdelivered)} file(s))", result)
        ok &= result.success
    engine = engine_for(paths.warehouse_url)
    for source in sorted(settings.sources):
        run = plan.runs.get(source)
        keys = pending_partitions(paths, source, engine)
        if run is not None:
            keys += [run.first_partition, run.last_partition]
        if not keys:
            print(f"  {source}: nothing pending")
            continue
        first, last = min(keys), max(keys)
        result = defs.get_job_def(job_name(source)).execute_in_process(
            instance=instance, raise_on_error=False, tags=_range_tags(first, last, **{MODE_TAG: "incremental"}))
        _print_run(f"{source} {first}...{last} ({len(run.files) if run else 0} new file(s))", result)
        ok &= result.success
    return 0 if ok else 1


def replay(paths: DealerPaths, from_as_of: datetime | None, sources: list[str] | None) -> int:
    """Rebuild the reconciled tables from the archive from an as-of on (CONTRACT section 6)."""
    from dealer_assets.definitions import build_definitions
    from dealer_assets.defs.dms.assets import MODE_TAG, REPLAY_FROM_TAG
    from dealer_assets.defs.dms.jobs import job_name
    from dealer_assets.domain.feed_names import partition_key_of
    from dealer_assets.feed_store import FeedStore
    from dealer_assets.settings import load_settings

    settings = load_settings(paths.settings_file)
    chosen = sources or sorted(settings.sources)
    unknown = [s for s in chosen if s not in settings.sources]
    if unknown:
        raise ConfigError(f"{paths.settings_file}: sources: {', '.join(unknown)} not configured")
    defs = build_definitions(paths)
    instance = _instance()
    ok = True
    for source in chosen:
        archived = FeedStore(paths).archived_feeds(source)
        cutoff = from_as_of or (archived[0].feed.as_of if archived else paths.history_start)
        cutoff = max(cutoff, paths.history_start)
        later = [a.feed.as_of for a in archived if a.feed.as_of >= cutoff]
        first = partition_key_of(cutoff)
        last = partition_key_of(max(later)) if later else first
        result = defs.get_job_def(job_name(source)).execute_in_process(
            instance=instance, raise_on_error=False,
            tags=_range_tags(first, last, **{MODE_TAG: "replay",
                                             REPLAY_FROM_TAG: cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")}))
        _print_run(f"{source} replay from {cutoff.isoformat()} ({len(later)} archived file(s), {first}...{last})", result)
        ok &= result.success
    return 0 if ok else 1


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dealer-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("catch-up", help="process every pending feed in the drop zone, in as-of order")
    rp = sub.add_parser("replay", help="rebuild the reconciled tables from the archive")
    rp.add_argument("--from", dest="from_as_of", help="ISO 8601 as-of, e.g. 2026-11-01T14:00:00Z (default: all)")
    rp.add_argument("--source", action="append", help="only this source (repeatable)")
    args = parser.parse_args(argv)
    try:
        paths = DealerPaths.from_env()
        if args.command == "catch-up":
            return catch_up(paths)
        start = parse_utc(args.from_as_of, key="--from", origin="command line") if args.from_as_of else None
        return replay(paths, start, args.source)
    except ConfigError as exc:
        print(f"dealer-assets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
