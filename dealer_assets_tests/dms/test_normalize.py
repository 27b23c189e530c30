"""Rule 1 (normalize) and the 49 CFR 565 VIN check digit."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from dealer_assets.core.strings import string_buffers
from dealer_assets.core.vin import (
    check_digit_ok,
    expected_check_digit,
    is_valid_vin,
    normalize_vin,
    vin_flags,
    with_check_digit,
)
from dealer_assets.dms.domain.parsing import parse_feed
from dealer_assets.dms.domain.vehicles import (
    REJECTED_SCHEMA,
    VEHICLE_SCHEMA,
    FeedRef,
    malformed_rejections,
    normalize_feed,
)
from dealer_assets.dms.settings import GENERIC_LAYOUT, parse_settings
from dealer_assets_tests.support import feed_body, vin

FEED = FeedRef("generic", datetime(2026, 11, 1, 12, tzinfo=UTC), "generic-20261101T120000Z.csv")
HEADER = "DealerID,VIN,StockNo,SystemCode,Year,Make,Model,Trim,Mileage,DateInStock\n"


def normalize(text: str, layout=GENERIC_LAYOUT):
    parsed = parse_feed(text.encode(), layout)
    return parsed, normalize_feed(parsed.rows, layout, FEED)


def by_line(frame: pl.DataFrame) -> dict[int, dict]:
    return {r["line_number"]: r for r in frame.iter_rows(named=True)}


# --- the check digit, against real VINs and an independent implementation ---------------------------------

TRANSLIT = dict(
    zip(
        "ABCDEFGHJKLMNPRSTUVWXYZ",
        [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9],
        strict=True,
    )
)
WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]


def reference_check_digit(v: str) -> str:
    total = sum((int(c) if c.isdigit() else TRANSLIT[c]) * w for c, w in zip(v, WEIGHTS, strict=True))
    return "X" if total % 11 == 10 else str(total % 11)


def check(vins: list[str]) -> list[bool]:
    return pl.DataFrame({"v": vins}).select(check_digit_ok(pl.col("v")))["v"].to_list()


def test_check_digit_of_known_real_vins() -> None:
    valid = [
        "1HGCM82633A004352",
        "11111111111111111",
        "1M8GDM9AXKP042788",
        "JTEZU11F88K007763",
        "2T16CRAV7TC06D725",
    ]
    assert [reference_check_digit(v) == v[8] for v in valid] == [True] * len(valid)
    assert check(valid) == [True] * len(valid)
    # One character changed anywhere that has weight breaks it.
    broken = ["1HGCM82634A004352", "1HGCM82633A004353", "21111111111111111", "1M8GDM9A0KP042788"]
    assert check(broken) == [False] * len(broken)


def test_check_digit_x() -> None:
    assert reference_check_digit("1M8GDM9AXKP042788") == "X"
    out = pl.DataFrame({"v": ["1M8GDM9AXKP042788"]}).select(expected_check_digit(pl.col("v")))
    assert out.item() == "X"


def test_check_digit_agrees_with_reference_on_generated_vins() -> None:
    vins = [vin(n) for n in range(0, 2000, 7)] + [vin(n, prefix="5YJ3E1EA") for n in range(0, 500, 3)]
    assert all(reference_check_digit(v) == v[8] for v in vins)
    assert all(check(vins))
    wrong = [v[:8] + ("0" if v[8] != "0" else "1") + v[9:] for v in vins]
    assert not any(check(wrong))
    assert with_check_digit("1HGCM82603A004352") == "1HGCM82633A004352"


def test_vin_flags_agree_with_the_expressions() -> None:
    values = [
        "1HGCM82633A004352",
        "1M8GDM9AXKP042788",
        "1HGCM82634A004352",
        "1hgcm82633a004352",
        "IHGCM82633A004352",
        "1HGCM82633A00435",
        "1HGCM82633A0043521",
        "1HGCM826\x003A004352",
        "1HGCM826I3A004352",
        "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9A",
        "",
        None,
    ] + [vin(n) for n in range(0, 300, 7)]
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    valid, check_ok = vin_flags(frame.get_column("v"))
    expected = frame.select(
        is_valid_vin(pl.col("v")).alias("valid"),
        (is_valid_vin(pl.col("v")) & check_digit_ok(pl.col("v"))).fill_null(False).alias("ok"),
    )
    assert valid.tolist() == expected.get_column("valid").to_list()
    assert check_ok.tolist() == expected.get_column("ok").to_list()


def test_vin_flags_agree_with_the_expressions_across_blocks_chunks_and_slices() -> None:
    """More VINs than one block weighs at once, from a column of several chunks, sliced off its start."""
    good = [vin(n) for n in range(50)]
    values = [good[n % 50] if n % 11 else good[n % 50][:9] + "Q" + good[n % 50][10:] for n in range(70_000)]
    column = pl.concat(
        [
            pl.Series("v", values[:40_000]),
            pl.Series("v", [None, "1HGCM82634A004352"]),
            pl.Series("v", values),
        ],
        rechunk=False,
    ).slice(3)
    assert column.n_chunks() > 1
    valid, check_ok = vin_flags(column)
    expected = column.to_frame().select(
        is_valid_vin(pl.col("v")).alias("valid"),
        (is_valid_vin(pl.col("v")) & check_digit_ok(pl.col("v"))).fill_null(False).alias("ok"),
    )
    assert valid.tolist() == expected.get_column("valid").to_list()
    assert check_ok.tolist() == expected.get_column("ok").to_list()
    assert 0 < check_ok.sum() < valid.sum() < len(column)


def test_string_buffers_read_every_value_in_place() -> None:
    column = pl.concat(
        [pl.Series("t", ["ab", None, ""]), pl.Series("t", ["c\x00d", "\u00e9", None, "xyz"])], rechunk=False
    ).slice(1)
    offsets, data = string_buffers(column)
    values = [bytes(data[offsets[i] : offsets[i + 1]]).decode() for i in range(len(column))]
    assert values == ["", "", "c\x00d", "\u00e9", "", "xyz"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1hgcm82633a004352", "1HGCM82633A004352"),
        ("  1HGCM82633A004352\t", "1HGCM82633A004352"),
        ("1HG-CM826 33-A004352", "1HGCM82633A004352"),
        ("1 H G C M 8 2 6 3 3 A 0 0 4 3 5 2", "1HGCM82633A004352"),
        ("", None),
        ("   ", None),
        (" - ", None),
        (None, None),
    ],
)
def test_normalize_vin(raw: str | None, expected: str | None) -> None:
    out = pl.DataFrame({"v": [raw]}, schema={"v": pl.String}).select(normalize_vin(pl.col("v"))).item()
    assert out == expected


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("1HGCM82633A004352", True),
        ("1HGCM82633A00435", False),  # 16
        ("1HGCM82633A0043521", False),  # 18
        ("IHGCM82633A004352", False),  # I
        ("1HGCM82633A0O4352", False),  # O
        ("1HGCM82633A00435Q", False),  # Q
        ("1HGCM82633A00435*", False),
        ("1hgcm82633a004352", False),  # only after normalization
        (None, False),
    ],
)
def test_is_valid_vin(value: str | None, valid: bool) -> None:
    out = pl.DataFrame({"v": [value]}, schema={"v": pl.String}).select(is_valid_vin(pl.col("v"))).item()
    assert out is valid


# --- rule 1 on whole feeds ---------------------------------------------------------------------------------


def test_vins_normalized_and_flags() -> None:
    good = "1HGCM82633A004352"
    bad_check = "1HGCM82634A004352"
    _, out = normalize(
        HEADER
        + f"D1, {good.lower()} ,S1,U,,,,,,\n"
        + "D1,1hg-cm826 33a004352,S2,U,,,,,,\n"
        + f"D2,{bad_check},S3,U,,,,,,\n"
        + "D2,1HGCM82633A00435,S4,U,,,,,,\n"
        + "D2,IHGCM82633A004352,S5,U,,,,,,\n"
        + "D2,1HGCM82633A0O4352,S5,U,,,,,,\n"
        + "D3,,S6,U,,,,,,\n"
        + f" ,{vin(1)},S7,U,,,,,,\n"
        + f",{vin(2)},S8,U,,,,,,\n"
    )
    vehicles = by_line(out.vehicles)
    rejected = by_line(out.rejected)
    assert set(vehicles) == {2, 4}
    assert (vehicles[2]["vin"], vehicles[2]["raw_vin"], vehicles[2]["check_digit_ok"]) == (
        good,
        good.lower(),
        True,
    )
    # A wrong check digit is flagged, not rejected.
    assert (vehicles[4]["vin"], vehicles[4]["check_digit_ok"]) == (bad_check, False)
    assert {n: r["reason"] for n, r in rejected.items()} == {
        3: "duplicate_vin",
        5: "invalid_vin",
        6: "invalid_vin",
        7: "invalid_vin",
        8: "invalid_vin",
        9: "missing_dealer",
        10: "missing_dealer",
    }
    assert rejected[3]["raw_vin"] == "1hg-cm826 33a004352"
    assert "line 2" in rejected[3]["detail"]
    assert rejected[8]["raw_vin"] is None and rejected[8]["dealer_id"] == "D3"
    assert rejected[9]["dealer_id"] is None and rejected[9]["raw_vin"] == vin(1)


def test_missing_dealer_wins_over_invalid_vin() -> None:
    _, out = normalize(HEADER + ",NOTAVIN,S1,U,,,,,,\n")
    assert out.rejected.select("line_number", "reason").rows() == [(2, "missing_dealer")]


def test_duplicate_keeps_first_valid_row_across_dealers() -> None:
    v = vin(5)
    _, out = normalize(
        HEADER
        + f",{v},S0,U,,,,,,\n"  # line 2: no dealer, not a valid row
        + f"D1,{v.lower()},S1,U,,,,,,\n"  # line 3: first valid row
        + f"D2,{v},S2,U,,,,,,\n"  # line 4: duplicate (other dealer)
        + f"D1,{v[:5]}-{v[5:]},S3,U,,,,,,\n"
    )  # line 5: duplicate after normalization
    assert out.vehicles.select("line_number", "dealer_id", "stock_no").rows() == [(3, "D1", "S1")]
    assert out.rejected.select("line_number", "reason").rows() == [
        (2, "missing_dealer"),
        (4, "duplicate_vin"),
        (5, "duplicate_vin"),
    ]
    assert all("first seen on line 3" in d for d in out.rejected.filter(reason="duplicate_vin")["detail"])


def test_a_column_of_only_empty_quoted_values_is_all_null() -> None:
    """A text column holding no byte at all (every value `""` or missing) still has its empty values nulled."""
    _, out = normalize(HEADER + f'D1,{vin(1)},"",U,,,,"",,\nD1,{vin(2)},"",U,,,,,,\n')
    assert out.vehicles.select("stock_no", "trim").rows() == [(None, None), (None, None)]


def test_every_text_field_trimmed_and_empty_is_null() -> None:
    _, out = normalize(
        HEADER
        + f"  D1  ,{vin(1)},  S 1  , U , 2022 , Ford , F-150 ,  XL , 12,  2026-10-01 \n".replace(
            " 12,", '"12,345",'
        )
        + f"D1,{vin(2)},   ,   ,   ,   ,\t,   ,   ,   \n"
        + f"D1,{vin(3)},\u00a0,U,abc,x,y,z,lots,someday\n"
    )
    rows = by_line(out.vehicles)
    assert {
        k: rows[2][k]
        for k in (
            "dealer_id",
            "stock_no",
            "system_code",
            "year",
            "make",
            "model",
            "trim",
            "mileage",
            "date_in_stock",
        )
    } == {
        "dealer_id": "D1",
        "stock_no": "S 1",
        "system_code": "U",
        "year": 2022,
        "make": "Ford",
        "model": "F-150",
        "trim": "XL",
        "mileage": 12345,
        "date_in_stock": date(2026, 10, 1),
    }
    for field in ("stock_no", "system_code", "year", "make", "model", "trim", "mileage", "date_in_stock"):
        assert rows[3][field] is None, field
    assert rows[4]["stock_no"] is None
    assert (rows[4]["year"], rows[4]["mileage"], rows[4]["date_in_stock"]) == (None, None, None)
    # No empty strings anywhere.
    for col, dtype in VEHICLE_SCHEMA.items():
        if dtype == pl.String:
            assert out.vehicles.filter(pl.col(col) == "").height == 0, col


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-01", date(2026, 10, 1)),
        ("10/01/2026", date(2026, 10, 1)),
        ("20261001", date(2026, 10, 1)),
        ("2026/10/01", date(2026, 10, 1)),
    ],
)
def test_date_in_stock_formats(text: str, expected: date) -> None:
    _, out = normalize(HEADER + f"D1,{vin(1)},S1,U,,,,,,{text}\n")
    assert out.vehicles["date_in_stock"].item() == expected


def test_every_row_ends_up_in_exactly_one_output() -> None:
    rows = []
    for n in range(200):
        dealer = "" if n % 17 == 0 else f"D{n % 3}"
        v = vin(n % 150)  # repeats -> duplicates
        if n % 11 == 0:
            v = v[:16]  # invalid
        if n % 13 == 0:
            v = v.lower().replace("1", "-1")  # messy but valid
        rows.append((dealer, v, f"S{n}", "U"))
    parsed, out = normalize(feed_body(rows))
    assert parsed.rows.height == 200
    assert out.vehicles.height + out.rejected.height == 200
    lines = out.vehicles["line_number"].to_list() + out.rejected["line_number"].to_list()
    assert sorted(lines) == list(range(2, 202))
    assert out.vehicles["vin"].n_unique() == out.vehicles.height
    assert out.vehicles.schema == pl.Schema(VEHICLE_SCHEMA)
    assert out.rejected.schema == pl.Schema(REJECTED_SCHEMA)
    assert set(out.rejected["reason"]) == {"missing_dealer", "invalid_vin", "duplicate_vin"}
    assert out.vehicles["feed_file"].unique().to_list() == [FEED.file_name]
    assert out.vehicles["feed_as_of"].unique().to_list() == [FEED.as_of]


def test_empty_feed_normalizes_to_nothing() -> None:
    parsed, out = normalize("")
    assert parsed.rows.height == 0
    assert out.vehicles.height == 0 and out.rejected.height == 0
    assert out.vehicles.schema == pl.Schema(VEHICLE_SCHEMA)


def test_inline_layout_with_constant_and_missing_optional_columns() -> None:
    layout = (
        parse_settings(
            """
sources:
  dms:
    layout: {delimiter: ';', columns: {dealer_id: Dealer, vin: Vin, stock_no: Stock, make: Make,
             system_code: {constant: N}}}
    track_stock_no_and_client: {mode: never}
    auto_close: {mode: never}
""",
            "<t>",
        )
        .sources["dms"]
        .file_layout
    )
    # `Make` is declared but absent from this file: the field is null, not an error.
    _, out = normalize(f"Dealer;Vin;Stock;Ignored\n D9 ;{vin(7).lower()}; 42 ;zzz\n", layout)
    row = out.vehicles.row(0, named=True)
    assert (row["dealer_id"], row["vin"], row["stock_no"], row["system_code"], row["make"]) == (
        "D9",
        vin(7),
        "42",
        "N",
        None,
    )


def test_malformed_rejections() -> None:
    parsed = parse_feed(f"{HEADER}D1,{vin(1)},S1\nD2,{vin(2)},S2,U,,,,,,\n".encode(), GENERIC_LAYOUT)
    rejected = malformed_rejections(parsed.malformed, FEED)
    assert rejected.schema == pl.Schema(REJECTED_SCHEMA)
    assert rejected.select("line_number", "raw_vin", "reason", "source", "feed_file").rows() == [
        (2, vin(1), "malformed_row", "generic", FEED.file_name)
    ]
    assert rejected["detail"].item() == "3 fields where the header has 10"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("88", 88),
        (" 88 ", 88),
        ('"1,234"', 1234),
        ("12345.6", 12346),
        ("-", None),
        ("1e400", None),
    ],
)
def test_mileage_reads_whole_miles_from_common_forms(text: str, expected: int | None) -> None:
    _, out = normalize(HEADER + f"D1,{vin(1)},S1,U,,,,,{text},\n")
    assert out.vehicles["mileage"].item() == expected
