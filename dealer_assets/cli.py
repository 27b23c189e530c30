"""`dealer-assets`: catch up on every integration, replay history, and each area's own commands.

Runs are real Dagster runs in the instance at DAGSTER_HOME, so they show in the UI. Exit codes: 0 success,
1 a run failed, 2 a configuration error (the message names the file or variable and the key).
"""

from __future__ import annotations

import argparse
import sys

from dealer_assets.core.commands import instance
from dealer_assets.core.env import DealerEnv
from dealer_assets.core.errors import ConfigError
from dealer_assets.dms import cli as dms_cli
from dealer_assets.protractor import cli as protractor_cli
from dealer_assets.xtime import cli as xtime_cli


def catch_up(args: argparse.Namespace, env: DealerEnv) -> int:
    ok = dms_cli.catch_up(env, instance())
    ok = protractor_cli.catch_up(env, instance()) and ok
    ok = xtime_cli.catch_up(env, instance()) and ok
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dealer-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("catch-up", help="process everything pending, in order").set_defaults(handler=catch_up)
    dms_cli.register(sub)
    protractor_cli.register(sub)
    xtime_cli.register(sub)
    args = parser.parse_args(argv)
    try:
        return args.handler(args, DealerEnv.load())
    except ConfigError as exc:
        print(f"dealer-assets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
