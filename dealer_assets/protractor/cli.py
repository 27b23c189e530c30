"""`dealer-assets protractor serve|fake|resync` and the Protractor part of `dealer-assets catch-up`."""

from __future__ import annotations

import argparse
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from dealer_assets.core.env import DealerEnv, DealerPaths
from dealer_assets.core.errors import ConfigError
from dealer_assets.core.settings_file import read_document
from dealer_assets.core.timeutil import parse_utc

if TYPE_CHECKING:
    import dagster as dg

    from dealer_assets.protractor.defs.resources import ProtractorResource
    from dealer_assets.protractor.receiver import Credential
    from dealer_assets.protractor.settings import ProtractorSettings

RECEIVER_PORT = 8711
FAKE_PORT = 8710
SEEDED_DAYS = timedelta(days=3)
"""The fake's work orders are created over the days before it starts, three hours apart: the history that the
first sweep lists, like the sample feeds staged to end yesterday."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("protractor", help="Protractor work orders: receiver, fake, resync")
    psub = p.add_subparsers(dest="protractor_command", required=True)
    serve = psub.add_parser(
        "serve", help="serve the callback receiver (GET/POST /integrations/protractor/events)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=RECEIVER_PORT)
    serve.set_defaults(handler=serve_command)
    fake = psub.add_parser(
        "fake", help="serve a fake Protractor for development (dev-only keys from the settings' env vars)"
    )
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=FAKE_PORT)
    fake.add_argument(
        "--receiver-url", default=f"http://127.0.0.1:{RECEIVER_PORT}/integrations/protractor/events"
    )
    fake.add_argument("--work-orders", type=int, default=24, help="seeded work orders per location")
    fake.add_argument(
        "--churn-seconds", type=float, default=0.0, help="change a work order this often (0: never)"
    )
    fake.set_defaults(handler=fake_command)
    resync = psub.add_parser(
        "resync", help="list work orders changed since the last sweep and fetch those that differ"
    )
    resync.add_argument("--location", action="append", help="only this location (repeatable)")
    resync.add_argument(
        "--since", help="ISO 8601 UTC, e.g. 2026-11-01T00:00:00Z (default: the last sweep, with overlap)"
    )
    resync.set_defaults(handler=resync_command)


def _settings(paths: DealerPaths) -> ProtractorSettings:
    from dealer_assets.protractor.settings import required_protractor

    return required_protractor(read_document(paths.settings_file), paths.settings_file)


def _api(settings: ProtractorSettings) -> ProtractorResource:
    """The API resource with keys read now: a missing one is a ConfigError naming the variable and its key."""
    from dealer_assets.protractor.defs.resources import ProtractorResource

    return ProtractorResource.from_environment(settings)


def credentials(settings: ProtractorSettings) -> list[Credential]:
    from dealer_assets.protractor.receiver import Credential

    locations = _api(settings).locations
    return [Credential(loc, c.connection_id, c.api_key) for loc, c in locations.items()]


def serve_command(args: argparse.Namespace, env: DealerEnv) -> int:
    import uvicorn

    from dealer_assets.protractor.journal import journal_dir
    from dealer_assets.protractor.receiver import create_app

    paths = env.paths()
    settings = _settings(paths)
    app = create_app(credentials(settings), journal_dir(paths.data_dir))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    print(
        f"protractor receiver: http://{args.host}:{args.port}/integrations/protractor/events "
        f"({', '.join(settings.locations)}); journal {journal_dir(paths.data_dir)}"
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def fake_command(args: argparse.Namespace, env: DealerEnv) -> int:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import uvicorn

    from dealer_assets.protractor.fake import Account, Shop, create_fake_app, sample_vehicles

    paths = env.paths()
    settings = _settings(paths)
    vehicles = sample_vehicles()
    accounts = []
    for i, cred in enumerate(credentials(settings)):
        zone = settings.locations[cred.location_id].time_zone
        users = "objects" if i % 2 else "header"
        account = Account(cred.location_id, cred.connection_id, cred.api_key, zone, Shop(users=users))
        local_now = datetime.now(ZoneInfo(zone)).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        account.shop.seed(
            vehicles[i * args.work_orders :] + vehicles,
            local_now - SEEDED_DAYS,
            args.work_orders,
            seed=i + 1,
        )
        accounts.append(account)
    app, _, _ = create_fake_app(accounts, args.receiver_url, churn_seconds=args.churn_seconds)
    print(
        f"fake protractor: http://{args.host}:{args.port} ({len(accounts)} locations, "
        f"{args.work_orders} work orders each; users as text under Header at every other location, as "
        f"objects at the others) -> callbacks to {args.receiver_url}"
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _run(
    env: DealerEnv, instance: dg.DagsterInstance, job_name: str, label: str, config: dict | None = None
) -> bool:
    """Run one of the area's named jobs in the instance, quietly, and print its one line."""
    import dagster as dg

    from dealer_assets.core.commands import command_tags, print_run, run_config
    from dealer_assets.core.defs import build_core_defs
    from dealer_assets.protractor.defs import build_defs

    area = build_defs(env)
    if not area.assets:
        return True
    defs = dg.Definitions.merge(build_core_defs(env), area)
    _api(_settings(env.paths()))
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        run_config={**run_config(), **(config or {})},
        raise_on_error=False,
        tags=command_tags(),
    )
    print_run(label, result)
    return result.success


def resync_command(args: argparse.Namespace, env: DealerEnv) -> int:
    from dealer_assets.core.commands import instance
    from dealer_assets.protractor.defs.assets import WORK_ORDERS_OP
    from dealer_assets.protractor.defs.jobs import RESYNC_JOB

    paths = env.paths()
    settings = _settings(paths)
    unknown = [loc for loc in args.location or [] if loc not in settings.locations]
    if unknown:
        raise ConfigError(
            f"command line: --location: {', '.join(unknown)} is not a location of {paths.settings_file}"
        )
    since = parse_utc(args.since, key="--since", origin="command line").isoformat() if args.since else None
    config = {"mode": "sweep", "locations": args.location or [], **({"since": since} if since else {})}
    label = f"protractor resync ({', '.join(args.location) if args.location else 'every location'})"
    job_config = {"ops": {WORK_ORDERS_OP: {"config": config}}}
    return 0 if _run(env, instance(), RESYNC_JOB, label, job_config) else 1


def require_credentials(env: DealerEnv) -> None:
    """With Protractor configured, every location's keys must be set: a ConfigError naming the variable and
    its settings key otherwise, before `catch-up` processes anything."""
    if "protractor" in read_document(env.paths().settings_file):
        _api(_settings(env.paths()))


def catch_up(env: DealerEnv, instance: dg.DagsterInstance) -> bool:
    """Process every pending notification (and whatever the receiver journaled) in one run."""
    if "protractor" not in read_document(env.paths().settings_file):
        return True
    from dealer_assets.protractor.defs.jobs import EVENTS_JOB

    return _run(env, instance, EVENTS_JOB, "protractor pending notifications")
