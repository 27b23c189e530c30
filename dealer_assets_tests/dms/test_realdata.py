"""Real public data through the project's parser, normalizer and reconciliation engine.

The data is read in place from SHARED / "realdata" (never copied into the project):
- car-inventory-scraper: 180 daily JSON snapshots of 11 Toyota dealers' web inventories;
- usa-cars: an auction listing (CRLF, VINs with leading spaces and in lower case).
Every expectation is computed independently from the source data in plain Python.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import polars as pl
import pytest

from dealer_assets.dms.domain.feed_names import parse_feed_name
from dealer_assets.dms.domain.parsing import parse_feed
from dealer_assets.dms.domain.rules import apply_feeds
from dealer_assets.dms.domain.state import HistoryOutcome, empty_state
from dealer_assets.dms.domain.vehicles import FeedRef, NormalizedFeed, normalize_feed
from dealer_assets.dms.settings import SourceSettings, parse_settings
from dealer_assets_tests.support import SHARED

REALDATA = SHARED / "realdata"
SNAPSHOTS = sorted((REALDATA / "car-inventory-scraper").glob("inventory_*.json.gz"))
USA_CARS = REALDATA / "usa-cars" / "USA_cars_datasets.csv"

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _real_data_present() -> None:
    """The real data lives beside the project (never copied into it); CI always has it, so there its absence
    is a failure, not a skip."""
    if SNAPSHOTS and USA_CARS.exists():
        return
    message = f"no real data under {REALDATA}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


VIN_RE = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
TRANSLIT = dict(
    zip(
        "ABCDEFGHJKLMNPRSTUVWXYZ",
        [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9],
        strict=True,
    )
)
WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]


def ref_normalize_vin(raw: str | None) -> str:
    return re.sub(r"[\s-]", "", (raw or "").strip().upper())


def ref_check_digit_ok(v: str) -> bool:
    total = sum((int(c) if c.isdigit() else TRANSLIT[c]) * w for c, w in zip(v, WEIGHTS, strict=True))
    return v[8] == ("X" if total % 11 == 10 else str(total % 11))


def text(value: object) -> str | None:
    s = "" if value is None else str(value).strip()
    return s or None


@dataclass
class Expected:
    kept: list[tuple]  # (line_number, dealer_id, vin, ...) in file order
    reasons: Counter
    check_digit_failures: int


def expected_rule1(records: list[tuple[str | None, str | None, tuple]]) -> Expected:
    """Rule 1 by hand: records are (dealer, raw VIN, other canonical values) in file order from line 2."""
    seen: set[str] = set()
    kept, reasons, failures = [], Counter(), 0
    for i, (dealer, raw_vin, rest) in enumerate(records):
        v = ref_normalize_vin(raw_vin)
        if text(dealer) is None:
            reasons["missing_dealer"] += 1
        elif not VIN_RE.fullmatch(v):
            reasons["invalid_vin"] += 1
        elif v in seen:
            reasons["duplicate_vin"] += 1
        else:
            seen.add(v)
            kept.append((i + 2, text(dealer), v, *rest))
            failures += not ref_check_digit_ok(v)
    return Expected(kept, reasons, failures)


# --- (a) the car-inventory snapshots as feed files of a YAML-declared layout -----------------------------------

SCRAPER_HEADER = ["Dealer Name", "Vehicle VIN", "Stock #", "Model Year", "Trim Level", "Availability"]
SCRAPER_LAYOUT = """{delimiter: ';', encoding: utf-8, quote: '"',
             columns: {dealer_id: 'Dealer Name', vin: 'Vehicle VIN', stock_no: 'Stock #', year: 'Model Year',
                       trim: 'Trim Level', make: {constant: Toyota}, system_code: {constant: N}}}"""


def scraper_settings(auto_close: str, track: str, dealers: list[str]) -> SourceSettings:
    mappings = (
        "".join(
            f"\n      - {{client: 'Client {i:02d}', dealer_id: '{d}', service_request_type: New Vehicle Prep}}"
            for i, d in enumerate(dealers)
        )
        or " []"
    )
    return parse_settings(
        f"""
sources:
  scraper:
    layout: {SCRAPER_LAYOUT}
    track_stock_no_and_client: {track}
    auto_close: {auto_close}
    vehicle_type_mappings:
      - {{system_code: N, vehicle_type: New, service_request_type: New Vehicle Prep}}
    client_dealer_mappings:{mappings}
""",
        "<realdata>",
    ).sources["scraper"]


@dataclass
class Snapshot:
    feed: FeedRef
    records: list[dict]
    parsed_rows: int
    malformed: int
    normalized: NormalizedFeed


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> list[Snapshot]:
    """Each JSON snapshot written as a `scraper-<date>T060000Z.csv` feed file, then parsed and normalized."""
    folder = tmp_path_factory.mktemp("scraper_feeds")
    settings = scraper_settings("{mode: never}", "{mode: never}", [])
    layout = settings.file_layout
    out = []
    for path in SNAPSHOTS:
        records = json.loads(gzip.decompress(path.read_bytes()))
        day = path.name.removeprefix("inventory_").removesuffix(".json.gz").replace("_", "")
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=";", quotechar='"', lineterminator="\n")
        writer.writerow(SCRAPER_HEADER)
        for r in records:
            writer.writerow(
                [
                    "" if r.get(k) is None else r[k]
                    for k in ("dealer_name", "vin", "stock_number", "year", "trim", "status")
                ]
            )
        feed_file = folder / f"scraper-{day}T060000Z.csv"
        feed_file.write_text(buf.getvalue(), encoding="utf-8")
        name = parse_feed_name(feed_file.name)
        assert name is not None and name.source == "scraper"
        ref = FeedRef(name.source, name.as_of, name.file_name)
        parsed = parse_feed(feed_file.read_bytes(), layout)
        out.append(
            Snapshot(
                ref,
                records,
                parsed.rows.height,
                parsed.malformed.height,
                normalize_feed(parsed.rows, layout, ref),
            )
        )
    return out


def scraper_expected(records: list[dict]) -> Expected:
    return expected_rule1(
        [
            (
                r.get("dealer_name"),
                r.get("vin"),
                (
                    text(r.get("stock_number")),
                    None if text(r.get("year")) is None else int(r["year"]),
                    text(r.get("trim")),
                ),
            )
            for r in records
        ]
    )


def test_scraper_snapshots_parse_and_normalize_like_the_json(snapshots: list[Snapshot]) -> None:
    assert len(snapshots) == 180
    totals: Counter = Counter()
    dealers: set[str] = set()
    for snap in snapshots:
        n = len(snap.records)
        assert (snap.parsed_rows, snap.malformed) == (n, 0), snap.feed.file_name
        exp = scraper_expected(snap.records)
        vehicles, rejected = snap.normalized.vehicles, snap.normalized.rejected
        # Every input row is in exactly one of the outputs.
        assert vehicles.height + rejected.height == n
        assert sorted(vehicles["line_number"].to_list() + rejected["line_number"].to_list()) == list(
            range(2, n + 2)
        )
        # The kept rows, field by field, are what rule 1 gives when applied by hand to the JSON.
        got = vehicles.select("line_number", "dealer_id", "vin", "stock_no", "year", "trim").rows()
        assert got == exp.kept, snap.feed.file_name
        assert set(vehicles["make"]) <= {"Toyota"} and set(vehicles["system_code"]) <= {"N"}
        assert Counter(dict(rejected.group_by("reason").len().rows())) == exp.reasons, snap.feed.file_name
        assert int((~vehicles["check_digit_ok"]).sum()) == exp.check_digit_failures
        # Per dealer: what the feed has for a dealer equals the JSON's count of kept rows for that dealer.
        per_dealer = dict(vehicles.group_by("dealer_id").len().rows())
        assert per_dealer == dict(Counter(k[1] for k in exp.kept))
        dealers |= set(per_dealer)
        totals.update(
            rows=n, vehicles=vehicles.height, check_digit_failures=exp.check_digit_failures, **exp.reasons
        )

    assert len(dealers) == 11
    share = totals["vehicles"] / totals["rows"]
    valid_share = (totals["rows"] - totals["invalid_vin"] - totals["missing_dealer"]) / totals["rows"]
    print(
        f"\n[realdata a] {len(snapshots)} snapshots, {totals['rows']} rows, {len(dealers)} dealers: "
        f"{totals['vehicles']} vehicles ({share:.2%}), invalid_vin {totals['invalid_vin']}, "
        f"duplicate_vin {totals['duplicate_vin']}, missing_dealer {totals['missing_dealer']}, "
        f"check-digit failures {totals['check_digit_failures']}, valid-VIN share {valid_share:.2%}"
    )
    assert (
        totals["rows"]
        == totals["vehicles"] + totals["invalid_vin"] + totals["duplicate_vin"] + totals["missing_dealer"]
    )
    # The sites publish placeholder VINs (with an `I`) for cars still in production: a few percent, not most.
    assert 0.9 < valid_share < 1.0
    assert totals["duplicate_vin"] > 0


def test_scraper_placeholder_vins_are_rejected_not_fixed(snapshots: list[Snapshot]) -> None:
    rejected = pl.concat([s.normalized.rejected for s in snapshots])
    invalid = rejected.filter(reason="invalid_vin")
    with_i = invalid.filter(pl.col("raw_vin").str.contains("I"))
    assert with_i.height > 0 and invalid.filter(pl.col("raw_vin").is_null()).height > 0
    # The raw VIN is kept as delivered (trimmed), for people to look at.
    assert with_i["raw_vin"].str.len_chars().max() == 17


# --- (b) the usa-cars auction listing ----------------------------------------------------------------------------

USA_SETTINGS = """
sources:
  auction:
    layout: {columns: {dealer_id: state, vin: vin, stock_no: lot, make: brand, model: model, year: year,
                       mileage: mileage, system_code: {constant: U}}}
    track_stock_no_and_client: {mode: never}
    auto_close: {mode: never}
"""


def test_usa_cars_normalization() -> None:
    layout = parse_settings(USA_SETTINGS, "<realdata>").sources["auction"].file_layout
    data = USA_CARS.read_bytes()
    assert b"\r\n" in data
    with open(USA_CARS, newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    feed = FeedRef(
        "auction", parse_feed_name("auction-20200101T000000Z.csv").as_of, "auction-20200101T000000Z.csv"
    )

    parsed = parse_feed(data, layout)
    assert parsed.rows.height == len(records) == 2499 and parsed.malformed.height == 0
    assert "price" in parsed.header and "condition" in parsed.header  # extra columns kept
    out = normalize_feed(parsed.rows, layout, feed)
    vehicles, rejected = out.vehicles, out.rejected

    exp = expected_rule1(
        [
            (r["state"], r["vin"], (text(r["lot"]), int(r["year"]), int(r["mileage"]), text(r["brand"])))
            for r in records
        ]
    )
    assert (
        vehicles.select("line_number", "dealer_id", "vin", "stock_no", "year", "mileage", "make").rows()
        == exp.kept
    )
    # Every VIN upper-cased and stripped; the raw VIN is the delivered one, trimmed.
    assert vehicles.filter(pl.col("vin") != pl.col("raw_vin").str.to_uppercase()).height == 0
    assert vehicles.filter(~pl.col("vin").str.contains(r"^[A-HJ-NPR-Z0-9]{17}$")).height == 0
    assert vehicles.filter(pl.col("raw_vin").str.contains(r"^\s|\s$")).height == 0
    assert vehicles.filter(pl.col("raw_vin") == pl.col("vin")).height == 0  # every one was lower case
    assert set(vehicles["system_code"]) == {"U"}

    reasons = dict(rejected.group_by("reason").len().rows())
    assert reasons == dict(exp.reasons)
    assert vehicles.height + sum(reasons.values()) == len(records)
    assert (
        vehicles.height,
        reasons.get("invalid_vin", 0),
        reasons.get("duplicate_vin", 0),
        reasons.get("missing_dealer", 0),
    ) == (2494, 1, 4, 0)
    failures = int((~vehicles["check_digit_ok"]).sum())
    assert failures == exp.check_digit_failures
    per_state = dict(vehicles.group_by("dealer_id").len().rows())
    assert per_state == dict(Counter(k[1] for k in exp.kept))
    print(
        f"\n[realdata b] usa-cars: {len(records)} rows -> {vehicles.height} vehicles, "
        f"invalid_vin {reasons.get('invalid_vin', 0)}, duplicate_vin {reasons.get('duplicate_vin', 0)}, "
        f"missing_dealer {reasons.get('missing_dealer', 0)}, check-digit failures {failures}, "
        f"{len(per_state)} states"
    )


# --- (c) replaying the snapshots through the reconciliation engine ----------------------------------------------

REPLAYS = {
    "close never, track for_days 2": ("{mode: never}", "{mode: for_days, days: 2}"),
    "close immediately, track never": ("{mode: immediately}", "{mode: never}"),
    "close after_days 3, track for_days 2": ("{mode: after_days, days: 3}", "{mode: for_days, days: 2}"),
    "close after_days 3, track never": ("{mode: after_days, days: 3}", "{mode: never}"),
}


@pytest.mark.parametrize("case", list(REPLAYS))
def test_replay_snapshots_invariants(snapshots: list[Snapshot], case: str) -> None:
    dealers = sorted({d for s in snapshots for d in s.normalized.vehicles["dealer_id"].unique()})
    assert len(dealers) == 11
    auto_close, track = REPLAYS[case]
    settings = scraper_settings(auto_close, track, dealers)
    feeds = [(s.feed, s.normalized.vehicles) for s in snapshots]
    history: HistoryOutcome = apply_feeds(empty_state(), feeds, settings)
    state, events = history.state, history.events
    seen = pl.concat([v.select("feed_as_of", "vin", "dealer_id") for _, v in feeds])

    # ids are unique and every event's SR exists.
    assert state["sr_id"].n_unique() == state.height
    assert events.join(state, on="sr_id", how="anti").height == 0
    assert set(events["event"]) <= {
        "created",
        "stock_no_updated",
        "client_updated",
        "auto_close_reset",
        "auto_closed",
        "close_held",
    }
    counts = dict(events.group_by("event").len().rows())
    assert counts.get("created", 0) == state.height
    assert counts.get("auto_closed", 0) == state.filter(status="closed").height
    assert history.skipped.filter(reason="unmapped_dealer").height == 0  # every dealer is mapped

    # Never two active SRs for one VIN: per VIN, each SR is closed no later than the next one is created.
    per_vin = state.sort("vin", "created_at").with_columns(
        pl.col("created_at").shift(-1).over("vin").alias("_next_created")
    )
    overlapping = per_vin.filter(
        pl.col("_next_created").is_not_null()
        & (pl.col("closed_at").is_null() | (pl.col("closed_at") > pl.col("_next_created")))
    )
    assert overlapping.height == 0
    assert state.filter(status="active")["vin"].is_duplicated().sum() == 0

    # No SR is closed by a feed that lists its VIN (under any dealer).
    closes = events.filter(event="auto_closed").select("feed_as_of", "vin")
    assert closes.join(seen, on=["feed_as_of", "vin"], how="semi").height == 0
    # Every SR was created from a feed that lists its VIN.
    created = events.filter(event="created").select("feed_as_of", "vin")
    assert created.join(seen, on=["feed_as_of", "vin"], how="anti").height == 0

    closed = state.filter(status="closed")
    assert closed.filter(pl.col("closed_at") < pl.col("created_at")).height == 0
    assert closed.filter(pl.col("close_reason") != "missing_from_feed").height == 0
    assert state.filter(status="active").filter(pl.col("closed_at").is_not_null()).height == 0
    assert state.filter(pl.col("client").is_null() | pl.col("dealer_id").is_null()).height == 0
    assert state.filter(pl.col("last_seen_at") < pl.col("created_at")).height == 0

    mode = settings.auto_close.mode
    if mode == "never":
        assert closed.height == 0
        # One SR per VIN ever seen.
        assert state.height == seen["vin"].n_unique()
    elif mode == "immediately":
        assert closed.height > 0
        last_as_of, last = feeds[-1][0].as_of, feeds[-1][1]
        covered_active = state.filter(
            pl.col("status") == "active", pl.col("dealer_id").is_in(last["dealer_id"].unique().to_list())
        )
        assert covered_active.join(last.select("vin"), on="vin", how="anti").height == 0, last_as_of
        assert state["auto_close_at"].null_count() == state.height
    else:
        days = timedelta(days=settings.auto_close.days)
        assert closed.height > 0
        assert closed.filter(pl.col("closed_at") <= pl.col("auto_close_at")).height == 0
        assert state.filter(pl.col("auto_close_at") < pl.col("created_at") + days).height == 0
        # Closed by a later feed than the last one that saw the VIN.
        assert closed.filter(pl.col("closed_at") <= pl.col("last_seen_at")).height == 0
        assert counts.get("auto_close_reset", 0) > 0

    updates = events.filter(pl.col("event").is_in(["stock_no_updated", "client_updated"]))
    if settings.track_stock_no_and_client.mode == "never":
        assert updates.height == 0
    else:
        window = timedelta(days=settings.track_stock_no_and_client.days)
        late = updates.join(state.select("sr_id", "created_at"), on="sr_id").filter(
            pl.col("feed_as_of") > pl.col("created_at") + window
        )
        assert late.height == 0
        assert counts.get("stock_no_updated", 0) > 0

    updated_srs = events.filter(
        pl.col("event").is_in(["stock_no_updated", "client_updated", "auto_close_reset"])
    )
    print(
        f"\n[realdata c] {case}: created {counts.get('created', 0)}, "
        f"updated {updated_srs['sr_id'].n_unique()} SRs (stock_no_updated {counts.get('stock_no_updated', 0)}, "
        f"client_updated {counts.get('client_updated', 0)}, auto_close_reset {counts.get('auto_close_reset', 0)}), "
        f"closed {counts.get('auto_closed', 0)}, active at end {state.filter(status='active').height}"
    )
