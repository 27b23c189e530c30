"""Each reconciliation rule of CONTRACT section 4 on the pure engine (no Dagster, no warehouse)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from dealer_assets.dms.domain.parsing import parse_feed
from dealer_assets.dms.domain.rules import apply_feeds
from dealer_assets.dms.domain.state import HistoryOutcome, empty_state
from dealer_assets.dms.domain.vehicles import FeedRef, normalize_feed
from dealer_assets.dms.settings import GENERIC_LAYOUT, parse_settings
from dealer_assets_tests.support import at, feed_body, vin

BASE = """
sources:
  s:
    layout: generic
    track_stock_no_and_client: {track}
    auto_close: {close}
    {guard}
    {coverage}
    vehicle_type_mappings: {types}
    client_dealer_mappings:
      - {{client: Client One, dealer_id: D1, service_request_type: Recon}}
      - {{client: Client Two, dealer_id: D2, service_request_type: Recon {ignore}}}
"""


def settings(track="{mode: never}", close="{mode: never}", guard="", coverage="", types="[]", ignore=""):
    text = BASE.format(track=track, close=close, guard=guard, coverage=coverage, types=types, ignore=ignore)
    return parse_settings(text).sources["s"]


def vehicles(rows, day, hour=12):
    ref = FeedRef("s", at(day, hour), f"s-{at(day, hour):%Y%m%dT%H%M%SZ}.csv")
    return ref, normalize_feed(
        parse_feed(feed_body(rows).encode(), GENERIC_LAYOUT).rows, GENERIC_LAYOUT, ref
    ).vehicles


def run(cfg, history) -> HistoryOutcome:
    return apply_feeds(empty_state(), [vehicles(rows, day) for day, rows in history], cfg)


def sr(out: HistoryOutcome, n: int) -> dict:
    rows = out.state.filter(pl.col("vin") == vin(n)).sort("created_at")
    assert rows.height >= 1, f"no SR for VIN {n}"
    return rows.row(-1, named=True)


def events(out: HistoryOutcome, kind: str) -> pl.DataFrame:
    return out.events.filter(pl.col("event") == kind)


def test_sr_id_is_derived_from_source_vin_and_created_at():
    out = run(settings(), [(0, [("D1", vin(1), "S1", "U")])])
    assert sr(out, 1)["sr_id"] == f"s-{vin(1)}-20261101T120000Z"
    again = run(settings(), [(0, [("D1", vin(1), "S1", "U")])])
    assert again.state.sort("sr_id").equals(out.state.sort("sr_id"))
    assert again.events.sort("sr_id", "event").equals(out.events.sort("sr_id", "event"))


def test_rule2_dealers_not_in_feed_are_untouched():
    out = run(
        settings(close="{mode: immediately}"),
        [(0, [("D1", vin(1), "S1", "U"), ("D2", vin(2), "S2", "U")]), (1, [("D1", vin(1), "S1", "U")])],
    )
    assert sr(out, 2)["status"] == "active"


def test_rule2_all_mapped_dealers_covers_every_mapped_dealer():
    out = run(
        settings(close="{mode: immediately}", coverage="coverage: all_mapped_dealers"),
        [(0, [("D1", vin(1), "S1", "U"), ("D2", vin(2), "S2", "U")]), (1, [("D1", vin(1), "S1", "U")])],
    )
    assert sr(out, 2)["status"] == "closed"
    assert out.coverage.filter(pl.col("feed_as_of") == at(1))["dealer_id"].to_list() == ["D1", "D2"]


def test_rule3_unmapped_dealer_is_skipped_and_type_mapping_alone_never_creates():
    out = run(
        settings(types="[{system_code: U, vehicle_type: Used, service_request_type: UR, dealer_id: D7}]"),
        [(0, [("D7", vin(1), "S1", "U")])],
    )
    assert out.state.is_empty()
    assert out.skipped.select("vin", "dealer_id", "reason").rows() == [(vin(1), "D7", "unmapped_dealer")]


def test_rule3_type_mapping_for_dealer_wins_over_general_and_client_type_is_fallback():
    types = (
        "[{system_code: U, vehicle_type: Used, service_request_type: Used Recon},"
        " {system_code: U, vehicle_type: Used D2, service_request_type: D2 Recon, dealer_id: D2}]"
    )
    out = run(
        settings(types=types),
        [
            (
                0,
                [
                    ("D1", vin(1), "", "U"),
                    ("D2", vin(2), "", "U"),
                    ("D1", vin(3), "", "N"),
                    ("D1", vin(4), "", ""),
                ],
            )
        ],
    )
    assert (sr(out, 1)["vehicle_type"], sr(out, 1)["service_request_type"]) == ("Used", "Used Recon")
    assert (sr(out, 2)["vehicle_type"], sr(out, 2)["service_request_type"]) == ("Used D2", "D2 Recon")
    assert (sr(out, 3)["vehicle_type"], sr(out, 3)["service_request_type"]) == (None, "Recon")
    assert (sr(out, 4)["vehicle_type"], sr(out, 4)["service_request_type"]) == (None, "Recon")
    assert sr(out, 1)["stock_no"] is None


def test_rule3_include_only_excludes_rows_matching_no_applicable_mapping():
    types = (
        "[{system_code: C, vehicle_type: CPO, service_request_type: CPO, dealer_id: D1, include_only: true}]"
    )
    out = run(
        settings(types=types),
        [(0, [("D1", vin(1), "S", "C"), ("D1", vin(2), "S", "U"), ("D2", vin(3), "S", "U")])],
    )
    assert sorted(out.state["vin"].to_list()) == sorted([vin(1), vin(3)])
    assert out.skipped.select("vin", "reason").rows() == [(vin(2), "excluded_by_include_only")]


def test_rule3_types_are_fixed_at_creation():
    types = "[{system_code: U, vehicle_type: Used, service_request_type: UR}]"
    out = run(
        settings(types=types, track="{mode: for_days, days: 9}"),
        [(0, [("D1", vin(1), "S", "U")]), (1, [("D1", vin(1), "S", "N")])],
    )
    assert (sr(out, 1)["vehicle_type"], sr(out, 1)["service_request_type"]) == ("Used", "UR")


def test_rule4_ignore_if_recent_sr_exists_within_ignore_days():
    ignore = ", ignore_if_sr_with_vin_exists: true, ignore_days: 5"
    history = [
        (0, [("D2", vin(1), "S", "U")]),
        (1, [("D2", vin(9), "S", "U")]),
        (5, [("D2", vin(1), "S", "U")]),
        (6, [("D2", vin(9), "S", "U")]),
        (7, [("D2", vin(1), "S", "U")]),
    ]
    out = run(settings(close="{mode: immediately}", ignore=ignore), history)
    srs = out.state.filter(pl.col("vin") == vin(1)).sort("created_at")
    assert srs["created_at"].to_list() == [at(0), at(7)]
    assert out.skipped.filter(pl.col("vin") == vin(1))["reason"].to_list() == ["recent_sr_exists"]
    assert out.skipped.filter(pl.col("vin") == vin(1))["feed_as_of"].to_list() == [at(5)]


def test_seed_rule5_for_days_3_day2_updates_day4_does_not():
    out = run(
        settings(track="{mode: for_days, days: 3}"),
        [
            (0, [("D1", vin(1), "S1", "U")]),
            (2, [("D1", vin(1), "S2", "U")]),
            (4, [("D1", vin(1), "S3", "U")]),
        ],
    )
    assert sr(out, 1)["stock_no"] == "S2"
    assert events(out, "stock_no_updated")["details"].to_list() == ['{"from":"S1","to":"S2"}']
    assert sr(out, 1)["updated_at"] == at(2)


def test_rule5_empty_stock_is_no_change_and_never_mode_never_updates():
    out = run(
        settings(track="{mode: for_days, days: 3}"),
        [(0, [("D1", vin(1), "S1", "U")]), (1, [("D1", vin(1), "", "U")])],
    )
    assert sr(out, 1)["stock_no"] == "S1" and events(out, "stock_no_updated").is_empty()
    out = run(settings(), [(0, [("D1", vin(1), "S1", "U")]), (1, [("D1", vin(1), "S2", "D2")])])
    assert sr(out, 1)["stock_no"] == "S1"


def test_rule5_changed_dealer_updates_client_with_event():
    out = run(
        settings(track="{mode: for_days, days: 3}"),
        [(0, [("D1", vin(1), "S1", "U")]), (1, [("D2", vin(1), "S1", "U")])],
    )
    row = sr(out, 1)
    assert (row["dealer_id"], row["client"]) == ("D2", "Client Two")
    assert events(out, "client_updated")["details"].to_list() == [
        '{"dealer_id":{"from":"D1","to":"D2"},"client":{"from":"Client One","to":"Client Two"}}'
    ]


def test_seed_rule6_after_days_3_closes_created_4_days_ago_not_2():
    out = run(
        settings(close="{mode: after_days, days: 3}"),
        [
            (0, [("D1", vin(1), "S", "U"), ("D1", vin(9), "S", "U")]),
            (2, [("D1", vin(2), "S", "U"), ("D1", vin(9), "S", "U")]),
            (4, [("D1", vin(9), "S", "U")]),
        ],
    )
    assert (sr(out, 1)["status"], sr(out, 1)["closed_at"], sr(out, 1)["close_reason"]) == (
        "closed",
        at(4),
        "missing_from_feed",
    )
    assert sr(out, 2)["status"] == "active" and sr(out, 2)["auto_close_at"] == at(5)


def test_rule6_never_and_immediately():
    history = [(0, [("D1", vin(1), "S", "U"), ("D1", vin(2), "S", "U")]), (1, [("D1", vin(2), "S", "U")])]
    assert sr(run(settings(), history), 1)["status"] == "active"
    assert sr(run(settings(), history), 1)["auto_close_at"] is None
    closed = sr(run(settings(close="{mode: immediately}"), history), 1)
    assert (closed["status"], closed["closed_at"]) == ("closed", at(1))


def test_rule6_a_vin_seen_under_another_dealer_is_not_missing():
    out = run(
        settings(close="{mode: immediately}"),
        [
            (0, [("D1", vin(1), "S", "U"), ("D1", vin(2), "S", "U")]),
            (1, [("D1", vin(2), "S", "U"), ("D2", vin(1), "S", "U")]),
        ],
    )
    assert sr(out, 1)["status"] == "active" and sr(out, 1)["last_seen_at"] == at(1)


def test_seed_rule7_reset_example():
    """Created day 0, missing day 1, back day 2, missing day 4: still active; missing day 6: closed."""
    keep = ("D1", vin(9), "S", "U")
    out = run(
        settings(close="{mode: after_days, days: 3}"),
        [
            (0, [("D1", vin(1), "S", "U"), keep]),
            (1, [keep]),
            (2, [("D1", vin(1), "S", "U"), keep]),
            (4, [keep]),
        ],
    )
    assert sr(out, 1)["status"] == "active" and sr(out, 1)["auto_close_at"] == at(5)
    assert events(out, "auto_close_reset")["feed_as_of"].to_list() == [at(2)]
    out = run(
        settings(close="{mode: after_days, days: 3}"),
        [
            (0, [("D1", vin(1), "S", "U"), keep]),
            (1, [keep]),
            (2, [("D1", vin(1), "S", "U"), keep]),
            (4, [keep]),
            (6, [keep]),
        ],
    )
    assert (sr(out, 1)["status"], sr(out, 1)["closed_at"], sr(out, 1)["last_seen_at"]) == (
        "closed",
        at(6),
        at(2),
    )


def test_rule7_last_seen_counts_ineligible_rows():
    types = (
        "[{system_code: C, vehicle_type: CPO, service_request_type: CPO, dealer_id: D1, include_only: true}]"
    )
    out = run(
        settings(close="{mode: immediately}", types=types),
        [(0, [("D1", vin(1), "S", "C")]), (1, [("D1", vin(1), "S", "U")])],
    )
    assert sr(out, 1)["status"] == "active" and sr(out, 1)["last_seen_at"] == at(1)


@pytest.mark.parametrize(("kept", "held"), [(3, True), (6, False)])
def test_rule8_guard_holds_a_dealers_closes(kept, held):
    cfg = settings(close="{mode: immediately}", guard="auto_close_guard: {max_fraction: 0.5, min_active: 10}")
    day0 = [("D1", vin(i), "S", "U") for i in range(10)]
    out = run(cfg, [(0, day0), (1, day0[:kept])])
    closed = out.state.filter(pl.col("status") == "closed").height
    assert closed == (0 if held else 10 - kept)
    assert events(out, "close_held").height == (10 - kept if held else 0)
    assert out.guard.select("dealer_id", "active", "to_close", "held").rows() == [("D1", 10, 10 - kept, held)]
    if held:
        assert sr(out, 9)["updated_at"] == at(0)


def test_rule8_guard_needs_min_active():
    cfg = settings(close="{mode: immediately}", guard="auto_close_guard: {max_fraction: 0.1, min_active: 10}")
    out = run(cfg, [(0, [("D1", vin(i), "S", "U") for i in range(5)]), (1, [("D1", vin(0), "S", "U")])])
    assert out.state.filter(pl.col("status") == "closed").height == 4


def test_rule9_closed_is_final_and_a_later_sighting_creates_a_new_sr():
    out = run(
        settings(close="{mode: immediately}", track="{mode: for_days, days: 9}"),
        [
            (0, [("D1", vin(1), "S1", "U"), ("D1", vin(2), "S", "U")]),
            (1, [("D1", vin(2), "S", "U")]),
            (2, [("D1", vin(1), "S9", "U"), ("D1", vin(2), "S", "U")]),
        ],
    )
    srs = out.state.filter(pl.col("vin") == vin(1)).sort("created_at")
    assert srs.select("status", "stock_no", "created_at").rows() == [
        ("closed", "S1", at(0)),
        ("active", "S9", at(2)),
    ]


def test_feeds_must_come_in_as_of_order():
    cfg = settings()
    with pytest.raises(ValueError, match="as-of order"):
        apply_feeds(empty_state(), [vehicles([], 2), vehicles([], 1)], cfg)


def test_days_are_exact_24_hour_periods():
    out = run(
        settings(close="{mode: after_days, days: 1}"),
        [(0, [("D1", vin(1), "S", "U"), ("D1", vin(2), "S", "U")]), (1, [("D1", vin(2), "S", "U")])],
    )
    assert sr(out, 1)["status"] == "active"
    ref, v = vehicles([("D1", vin(2), "S", "U")], 1, 13)
    later = apply_feeds(out.state, [(ref, v)], settings(close="{mode: after_days, days: 1}"))
    assert sr(later, 1)["status"] == "closed"
    assert sr(later, 1)["closed_at"] - sr(later, 1)["created_at"] == timedelta(hours=25)


def test_the_new_state_keeps_the_old_rows_in_place_then_adds_the_created():
    """`write_outcome` compares rows in place, so the engine must keep the prior state's order, closed rows
    interleaved with active ones (as a checkpoint restores them), whatever joins it runs."""
    cfg = settings(close="{mode: immediately}", track="{mode: for_days, days: 9}")
    out = run(
        cfg,
        [
            (0, [("D1", vin(n), f"S{n}", "U") for n in range(1, 9)]),
            (1, [("D1", vin(n), "S", "U") for n in range(1, 9, 2)]),
        ],
    )
    shuffled = out.state.sample(fraction=1.0, shuffle=True, seed=7)
    assert shuffled["status"].to_list() != sorted(shuffled["status"].to_list())
    ref, later = vehicles([("D1", vin(n), "T", "U") for n in (1, 2, 3, 9)], 2)
    after = apply_feeds(shuffled, [(ref, later)], cfg).state
    assert after["sr_id"].head(shuffled.height).to_list() == shuffled["sr_id"].to_list()
    assert sorted(after.slice(shuffled.height).select("vin", "status").rows()) == [
        (vin(2), "active"),
        (vin(9), "active"),
    ]
