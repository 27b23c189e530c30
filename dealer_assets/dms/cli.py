"""`dealer-assets catch-up` (its DMS part), `dealer-assets replay` and `dealer-assets guard release|keep`."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from sqlalchemy.engine import Engine

from dealer_assets.core.commands import command_tags, instance, print_run, run_config, safe_url
from dealer_assets.core.defs import build_core_defs
from dealer_assets.core.env import DealerEnv
from dealer_assets.core.errors import ConfigError
from dealer_assets.core.lineage import service_requests_key
from dealer_assets.core.tags import MODE_TAG, REPLAY_FROM_TAG, range_tags
from dealer_assets.core.timeutil import iso_z, parse_utc
from dealer_assets.core.warehouse import engine_for
from dealer_assets.dms import guard, quality, quarantine
from dealer_assets.dms.archive import FeedArchive
from dealer_assets.dms.asset_specs import guard_decisions_key
from dealer_assets.dms.defs import build_defs
from dealer_assets.dms.defs.checks import AUTO_CLOSE_GUARD
from dealer_assets.dms.defs.jobs import MISDELIVERED_JOB, job_name
from dealer_assets.dms.domain.deliveries import SourceRun, plan_deliveries
from dealer_assets.dms.domain.feed_names import partition_key_of
from dealer_assets.dms.ledger import applied_through, pending_partitions
from dealer_assets.dms.settings import load_settings
from dealer_assets.dms.settings_preview import preview, summary_lines, write_preview

SETTLE_WAIT_FACTOR = 3
"""`catch-up` waits at most this many quiet periods for young files; one still growing is left for later."""


def _job(env: DealerEnv, name: str) -> dg.JobDefinition:
    return dg.Definitions.merge(build_core_defs(env), build_defs(env)).resolve_job_def(name)


def catch_up(env: DealerEnv, instance: dg.DagsterInstance) -> bool:
    """Process every pending feed in the drop zone, per source in as-of order, through every DMS asset."""
    paths = env.paths()
    settings = load_settings(paths.settings_file)
    store = FeedArchive(paths)
    if store.unsettled():
        print(f"waiting up to {SETTLE_WAIT_FACTOR * paths.settle_seconds:g} s for files still being written")
        for young in store.wait_until_settled(SETTLE_WAIT_FACTOR * paths.settle_seconds):
            print(f"  {young.name}: still being written; left for the next run")
    now = datetime.now(UTC)
    names = [p.name for p in store.incoming()]
    irregular = store.irregular()
    plan = plan_deliveries(names, set(settings.sources), paths.history_start, now)
    print(f"drop zone {paths.incoming}: {len(names)} file(s); warehouse {safe_url(paths.warehouse_url)}")
    ok = True
    engine = engine_for(paths.warehouse_url)
    with engine.connect() as conn:
        unrecorded = [q for q, _ in quarantine.unrecorded(conn, store)]
    if plan.misdelivered or irregular or any(map(quarantine.misdelivered, unrecorded)):
        result = _job(env, MISDELIVERED_JOB).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config(), tags=command_tags()
        )
        print_run(f"dms misdelivered ({len(plan.misdelivered) + len(irregular)} file(s))", result)
        ok &= result.success
    for name in plan.not_yet:
        print(f"  {name}: stamped in a UTC day that has not begun; taken once it begins")
    for source in sorted(settings.sources):
        run = plan.runs.get(source)
        keys = pending_partitions(paths, source, engine)
        keys += [n.partition_key for q in unrecorded if (n := quarantine.source_feed(q, source))]
        if run is not None:
            keys += [run.first_partition, run.last_partition]
        if not keys:
            print(f"  {source}: nothing pending")
            continue
        files = run.files if run else []
        widened = SourceRun(source, min(keys), max(keys), files).since(applied_through(engine, source))
        first, last = widened.first_partition, widened.last_partition
        result = _job(env, job_name(source)).execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config=run_config(),
            tags=command_tags(**range_tags(first, last, **{MODE_TAG: "incremental"})),
        )
        print_run(f"dms {source} {first}...{last} ({len(files)} new file(s))", result)
        ok &= result.success
    show_guard_verdicts(instance, engine, settings.sources)
    return ok


def show_guard_verdicts(instance: dg.DagsterInstance, engine: Engine, sources: Iterable[str]) -> None:
    """Report the guard's verdict from the warehouse wherever the instance does not show it: a run killed after
    its commit leaves there a verdict from before and a planned evaluation that never ends, and a hold then
    shows nowhere in the UI."""
    for source in sorted(sources):
        verdict = quality.guard_holds(engine, source)
        asset = service_requests_key(source)
        record = instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(asset, AUTO_CLOSE_GUARD.name)
        )
        shown = record.event.asset_check_evaluation if record and record.event else None
        if record is None and verdict.passed:
            continue
        if shown is None or (shown.passed, shown.description) != (verdict.passed, verdict.description):
            instance.report_runless_asset_event(AUTO_CLOSE_GUARD.evaluation(asset, verdict))


def replay(
    env: DealerEnv, instance: dg.DagsterInstance, from_as_of: datetime | None, sources: list[str] | None
) -> bool:
    """Rebuild the reconciled tables from the archive from an as-of on (CONTRACT section 6)."""
    paths = env.paths()
    settings = load_settings(paths.settings_file)
    chosen = sources or sorted(settings.sources)
    unknown = [s for s in chosen if s not in settings.sources]
    if unknown:
        raise ConfigError(f"{paths.settings_file}: sources: {', '.join(unknown)} not configured")
    ok = True
    for source in chosen:
        archived = FeedArchive(paths).archived_feeds(source)
        cutoff = from_as_of or (archived[0].feed.as_of if archived else paths.history_start)
        cutoff = max(cutoff, paths.history_start)
        later = [a.feed.as_of for a in archived if a.feed.as_of >= cutoff]
        first = partition_key_of(cutoff)
        last = partition_key_of(max(later)) if later else first
        result = _job(env, job_name(source)).execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config=run_config(),
            tags=command_tags(
                **range_tags(first, last, **{MODE_TAG: "replay", REPLAY_FROM_TAG: iso_z(cutoff)})
            ),
        )
        print_run(
            f"dms {source} replay from {cutoff.isoformat()} ({len(later)} archived file(s), {first}...{last})",
            result,
        )
        ok &= result.success
    show_guard_verdicts(instance, engine_for(paths.warehouse_url), chosen)
    return ok


def holds_awaiting_decision(env: DealerEnv) -> list[str]:
    """Every source's holds that await an operator (or a replay after a release), read from the warehouse."""
    paths = env.paths()
    engine = engine_for(paths.warehouse_url)
    out = []
    for source in sorted(load_settings(paths.settings_file).sources):
        state = guard.guard_state(engine, source)
        if not state.passed:
            out.append(f"{source}: {guard.describe(source, state)}")
    return out


def register(sub: argparse._SubParsersAction) -> None:
    rp = sub.add_parser("replay", help="rebuild the reconciled tables from the archive")
    rp.add_argument(
        "--from", dest="from_as_of", help="ISO 8601 as-of, e.g. 2026-11-01T14:00:00Z (default: all)"
    )
    rp.add_argument("--source", action="append", help="only this source (repeatable; default: every source)")
    rp.set_defaults(handler=_replay)
    wp = sub.add_parser(
        "what-if",
        help="what other settings would do to every service request (changes nothing)",
        description="Replay the archive under another settings file and compare with the service requests "
        "now (CONTRACT section 10). Writes service_requests.csv and service_requests_diff.csv, prints one "
        "line per dealer with a difference and a total; changes no table, file or Dagster run. "
        "Example: dealer-assets what-if --settings new.yaml --source generic --from 2026-11-20T00:00:00Z",
    )
    wp.add_argument("--settings", required=True, type=Path, help="the settings file to try")
    wp.add_argument("--source", action="append", help="only this source (repeatable; default: every source)")
    wp.add_argument("--from", dest="from_as_of", help="ISO 8601 as-of to replay from (default: all history)")
    wp.add_argument("--out", type=Path, help="output folder (default: <data root>/what_if/<UTC time>/)")
    wp.set_defaults(handler=_what_if, report_holds=False)
    gp = sub.add_parser(
        "guard",
        help="decide a hold of the auto-close guard (rule 8)",
        description="Record an operator's decision on the closes the auto-close guard held for one dealer on "
        "one feed. `release` applies the held closes as of that feed (it replays the source from there); "
        "`keep` confirms that those SRs stay active. The decision is recorded with who, when and why, is "
        "final, and every later replay honours it.",
    )
    gp.add_argument("decision", choices=guard.DECISIONS)
    gp.add_argument("--source", required=True)
    gp.add_argument("--dealer", required=True)
    gp.add_argument("--feed", required=True, help="the feed's as-of, e.g. 2026-11-18T04:00:00Z")
    gp.add_argument("--reason", required=True, help="why (recorded with the decision)")
    gp.add_argument("--by", dest="decided_by", help="who decides (default: the login name)")
    gp.set_defaults(handler=_guard)


def _replay(args: argparse.Namespace, env: DealerEnv) -> int:
    start = parse_utc(args.from_as_of, key="--from", origin="command line") if args.from_as_of else None
    return 0 if replay(env, instance(), start, args.source) else 1


def _what_if(args: argparse.Namespace, env: DealerEnv) -> int:
    paths = env.paths()
    start = parse_utc(args.from_as_of, key="--from", origin="command line") if args.from_as_of else None
    result = preview(paths, args.settings, engine_for(paths.warehouse_url), args.source, start)
    out = args.out or paths.data_dir / "what_if" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    diff, summary = write_preview(result, out)
    for line in summary_lines(result, diff, summary):
        print(line)
    print(f"written: {out / 'service_requests.csv'}, {out / 'service_requests_diff.csv'}")
    return 0


def _guard(args: argparse.Namespace, env: DealerEnv) -> int:
    paths = env.paths()
    settings = load_settings(paths.settings_file)
    if args.source not in settings.sources:
        raise ConfigError(f"{paths.settings_file}: sources: {args.source} not configured")
    as_of = parse_utc(args.feed, key="--feed", origin="command line")
    decided_by = args.decided_by or getpass.getuser()
    guard.record_decision(
        engine_for(paths.warehouse_url),
        args.source,
        args.dealer,
        as_of,
        args.decision,
        decided_by=decided_by,
        decided_at=datetime.now(UTC),
        reason=args.reason,
    )
    the_instance = instance()
    the_instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=guard_decisions_key(args.source),
            description=f"{args.decision} by {decided_by}: {args.reason}",
            metadata={
                "source": args.source,
                "dealer_id": args.dealer,
                "feed_as_of": iso_z(as_of),
                "decision": args.decision,
                "decided_by": decided_by,
                "reason": args.reason,
            },
        )
    )
    print(f"recorded: {args.decision} the hold of dealer {args.dealer} on {args.source} feed {iso_z(as_of)}")
    ok = args.decision == "keep" or replay(env, the_instance, as_of, [args.source])
    the_instance.report_runless_asset_event(
        AUTO_CLOSE_GUARD.evaluation(
            service_requests_key(args.source),
            quality.guard_holds(engine_for(paths.warehouse_url), args.source),
        )
    )
    return 0 if ok else 1
