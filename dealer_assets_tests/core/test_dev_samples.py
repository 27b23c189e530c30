"""What `make dev` stages fits together across areas: the late DMS sample renumbers a vehicle that is on a work
order of a Protractor location that writes back, and that vehicle's service request is still tracked."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import yaml

from dealer_assets.cli import build_parser
from dealer_assets.dms.domain.feed_names import parse_feed_name
from dealer_assets.dms.fake.dealer_feeds import LATE_RENUMBERED, SAMPLES, late_feed
from dealer_assets.dms.settings import load_settings
from dealer_assets.protractor.fake import sample_vehicles
from dealer_assets_tests.support import PROJECT


def test_the_late_sample_renumbers_a_tracked_vehicle_on_a_north_work_order() -> None:
    settings_file = PROJECT / "data" / "config" / "dealer_feeds.yaml"
    locations = yaml.safe_load(settings_file.read_text())["protractor"]["locations"]
    assert list(locations)[0] == "north" and locations["north"]["write_back"] is True
    seeded = build_parser().parse_args(["protractor", "fake"]).work_orders  # the first location's share
    north_vins = {v["VIN"] for v in sample_vehicles()[:seeded]}
    name, text = late_feed()
    (row,) = [r for r in csv.DictReader(io.StringIO(text)) if r["StockNo"] == f"{LATE_RENUMBERED}-R"]
    assert row["VIN"] in north_vins
    first_listed = min(
        p.name for p in SAMPLES.glob("generic-*T*Z.csv") if f",{row['VIN']},".encode() in p.read_bytes()
    )
    tracking = load_settings(settings_file).sources["generic"].track_stock_no_and_client
    assert tracking.mode == "for_days"
    created, renumbered = parse_feed_name(first_listed).as_of, parse_feed_name(name).as_of
    assert timedelta(0) < renumbered - created <= timedelta(days=tracking.days)
