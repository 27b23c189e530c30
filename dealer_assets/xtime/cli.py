"""`dealer-assets xtime fake|status` and the Xtime part of `dealer-assets catch-up`."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from dealer_assets.core.commands import command_tags, print_run, run_config
from dealer_assets.core.defs import build_core_defs
from dealer_assets.core.env import DealerEnv
from dealer_assets.core.errors import ConfigError
from dealer_assets.core.warehouse import engine_for
from dealer_assets.xtime import store
from dealer_assets.xtime.domain.enrollment import enrollment_states
from dealer_assets.xtime.settings import XtimeSettings, load_xtime_settings

CATALOG_MAX_AGE = timedelta(hours=24)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("xtime", help="Xtime service appointments")
    xsub = parser.add_subparsers(dest="xtime_command", required=True)
    fake = xsub.add_parser("fake", help="serve the fake Xtime on loopback (development and tests)")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8720)
    fake.set_defaults(handler=run_fake)
    status = xsub.add_parser("status", help="enrollment per dealership, requests per status, latest bookings")
    status.set_defaults(handler=show_status)


def _settings(env: DealerEnv) -> XtimeSettings:
    settings = load_xtime_settings(env.paths().settings_file)
    if settings is None:
        raise ConfigError(f"invalid settings:\n  {env.paths().settings_file}: xtime: not configured")
    return settings


LATEST_BOOKINGS = 10


def run_fake(args: argparse.Namespace, env: DealerEnv) -> int:
    from dealer_assets.xtime.fake import serve

    print(f"fake Xtime on http://{args.host}:{args.port} (token at /token); stop with Ctrl-C")
    serve(args.port, _settings(env), dict(os.environ), host=args.host)
    return 0


def show_status(args: argparse.Namespace, env: DealerEnv) -> int:
    """Where each dealership's enrollment stands, the requests per status and the newest bookings, every text
    in full (an expired invitation's detail says what to do)."""
    settings = _settings(env)
    engine = engine_for(env.paths().warehouse_url)
    now = datetime.now(UTC)
    print(f"enrollment as of {now:%Y-%m-%dT%H:%M:%SZ}")
    print(text_table(enrollment_states(settings, now).select("dealership", "state", "detail")))
    counts = store.read_requests(engine).group_by("status").len().sort("status")
    print("requests: " + (", ".join(f"{status} {n}" for status, n in counts.iter_rows()) or "none"))
    bookings = store.read_bookings(engine).sort("booked_at").tail(LATEST_BOOKINGS)
    print(f"latest bookings (at most {LATEST_BOOKINGS}): " + ("" if bookings.height else "none"))
    if bookings.height:
        columns = ("request_id", "dealership", "appointment_id", "appointment_local", "opcode", "booked_at")
        print(text_table(bookings.select(columns)))
    return 0


def text_table(frame: pl.DataFrame) -> str:
    """A header and one line per row, columns padded to their widest text, the last one never cut."""
    text = frame.select(pl.all().cast(pl.String).fill_null("-"))
    widths = {c: max(len(c), text[c].str.len_chars().max() or 0) for c in text.columns}
    last = text.columns[-1]
    cells = [pl.col(c) if c == last else pl.col(c).str.pad_end(widths[c]) for c in text.columns]
    lines = text.select(pl.concat_str(cells, separator="  ").alias("line"))["line"]
    header = "  ".join(c if c == last else c.ljust(widths[c]) for c in text.columns)
    return "\n".join(["  " + header, *("  " + line for line in lines)])


def require_credentials(env: DealerEnv) -> None:
    """With Xtime configured, its credentials must be set: a ConfigError naming the variable and its settings
    key otherwise, before `catch-up` processes anything."""
    from dealer_assets.xtime.defs.resources import XtimeResource

    settings = load_xtime_settings(env.paths().settings_file)
    if settings is not None:
        XtimeResource.from_environment(settings)


def catch_up(env: DealerEnv, instance: dg.DagsterInstance) -> bool:
    """Refreshes a stale catalog, then takes in every pending request and books what can be booked."""
    from dealer_assets.xtime.defs import build_defs
    from dealer_assets.xtime.defs.jobs import BOOKINGS_JOB, CATALOG_JOB

    paths = env.paths()
    settings = load_xtime_settings(paths.settings_file)
    if settings is None:
        return True
    defs = dg.Definitions.merge(build_core_defs(env), build_defs(env))
    services = store.read_services(engine_for(paths.warehouse_url))
    fetched = services.group_by("dealership").agg(pl.col("fetched_at").min())
    stale = set(settings.dealerships) - set(
        fetched.filter(pl.col("fetched_at") > datetime.now(UTC) - CATALOG_MAX_AGE)["dealership"]
    )
    ok = True
    if stale:
        result = defs.resolve_job_def(CATALOG_JOB).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config(), tags=command_tags()
        )
        print_run(f"xtime catalog ({len(stale)} dealership(s) stale)", result)
        ok &= result.success
    result = defs.resolve_job_def(BOOKINGS_JOB).execute_in_process(
        instance=instance, raise_on_error=False, run_config=run_config(), tags=command_tags()
    )
    print_run("xtime requests and bookings", result)
    return ok and result.success
