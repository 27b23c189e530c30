"""The code location: the shared core merged with one `build_defs()` per integration area."""

from __future__ import annotations

import dagster as dg

from dealer_assets.core.defs import build_core_defs
from dealer_assets.core.env import DealerEnv
from dealer_assets.core.quiet import silence_chosen_warnings
from dealer_assets.dms.defs import build_defs as build_dms_defs
from dealer_assets.protractor.defs import build_defs as build_protractor_defs
from dealer_assets.xtime.defs import build_defs as build_xtime_defs


def build_definitions(env: DealerEnv | None = None) -> dg.Definitions:
    silence_chosen_warnings()
    env = env or DealerEnv.load()
    return dg.Definitions.merge(
        build_core_defs(env), build_dms_defs(env), build_protractor_defs(env), build_xtime_defs(env)
    )


defs = build_definitions()
