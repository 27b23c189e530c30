"""`dealer-assets`: catch up on every integration, replay history, and each area's own commands.

Runs are real Dagster runs in the instance at DAGSTER_HOME, so they show in the UI. Exit codes: 0 success,
1 a run failed, 2 a configuration error (the message names the file or variable and the key), 3 every run
succeeded but a hold of the auto-close guard awaits an operator's decision
(`dealer-assets guard release|keep --source S --dealer D --feed AS_OF`).
"""

from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa

from dealer_assets.core import commands
from dealer_assets.core.command_help import finish_help
from dealer_assets.core.commands import instance, safe_url
from dealer_assets.core.env import DealerEnv
from dealer_assets.core.errors import ConfigError
from dealer_assets.core.quiet import silence_chosen_warnings
from dealer_assets.dms import cli as dms_cli
from dealer_assets.protractor import cli as protractor_cli
from dealer_assets.xtime import cli as xtime_cli


def catch_up(args: argparse.Namespace, env: DealerEnv) -> int:
    protractor_cli.require_credentials(env)
    xtime_cli.require_credentials(env)
    opened = instance()
    ok = dms_cli.catch_up(env, opened)
    ok = protractor_cli.catch_up(env, opened) and ok
    ok = xtime_cli.catch_up(env, opened) and ok
    return 0 if ok else 1


EXIT_HOLD = 3


def unreachable_warehouse(env: DealerEnv, exc: sa.exc.DBAPIError) -> str:
    """The warehouse refused or dropped us: which URL (without its password), the driver's reason, what to check."""
    reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
    return (
        f"cannot use the warehouse {safe_url(env.paths().warehouse_url)}: {reason}; check that the server is "
        "running and accepts connections, and DEALER_WAREHOUSE_URL (host, port, database, user)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dealer-assets", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="the runs' full DEBUG event log")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("catch-up", help="process everything pending, in order").set_defaults(handler=catch_up)
    dms_cli.register(sub)
    protractor_cli.register(sub)
    xtime_cli.register(sub)
    finish_help(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    silence_chosen_warnings()
    commands.VERBOSE = args.verbose
    commands.COMMAND = " ".join(
        filter(
            None,
            [args.command, getattr(args, "protractor_command", None), getattr(args, "xtime_command", None)],
        )
    )
    try:
        env = DealerEnv.load()
        code = args.handler(args, env)
        report_holds = code == 0 and getattr(args, "report_holds", True)
        holds = dms_cli.holds_awaiting_decision(env) if report_holds else []
    except ConfigError as exc:
        print(f"dealer-assets: {exc}", file=sys.stderr)
        return 2
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        print(f"dealer-assets: {unreachable_warehouse(env, exc)}", file=sys.stderr)
        return 1
    if holds:
        print("auto-close guard holds awaiting a decision (exit 3):\n  " + "\n  ".join(holds))
        return EXIT_HOLD
    return code


if __name__ == "__main__":
    sys.exit(main())
