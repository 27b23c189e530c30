"""Deterministic synthetic DMS data: vehicles with valid VINs, `generic` feed files, settings.

Everything is vectorized (numpy for VINs, polars for the rest) so that a 1M-row feed takes seconds.
VIN check digits follow 49 CFR 565 (the same table and weights as `dealer_assets.core.vin`).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from dealer_assets.core.vin import TRANSLITERATION, WEIGHTS
from dealer_assets.dms.settings import GENERIC_HEADERS

VIN_CHARS = np.frombuffer(b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ", dtype=np.uint8)
_TRANSLIT = np.zeros(256, dtype=np.int64)
for _char, _value in TRANSLITERATION.items():
    _TRANSLIT[ord(_char)] = _value
_WEIGHTS = np.array(WEIGHTS, dtype=np.int64)
# Model-year codes (position 10): 2001-2009 are digits, 2010-2030 letters without I, O, Q, U, Z.
_YEAR_CODES = {
    **{2001 + i: c for i, c in enumerate("123456789")},
    **{2010 + i: c for i, c in enumerate("ABCDEFGHJKLMNPRSTVWXY")},
}

# (make, world manufacturer identifier, model, trims), roughly by US dealer inventory share.
CATALOG = [
    ("FORD", "1FT", "F-150", ("XL", "XLT", "LARIAT")),
    ("FORD", "1FM", "EXPLORER", ("BASE", "XLT", "ST")),
    ("CHEVROLET", "1GC", "SILVERADO 1500", ("WT", "LT", "RST")),
    ("CHEVROLET", "3GN", "EQUINOX", ("LS", "LT")),
    ("TOYOTA", "4T1", "CAMRY", ("LE", "SE", "XSE")),
    ("TOYOTA", "2T3", "RAV4", ("LE", "XLE", "XLE Premium")),
    ("TOYOTA", "5TF", "TUNDRA", ("SR5", "LIMITED")),
    ("HONDA", "1HG", "ACCORD", ("LX", "EX", "SPORT")),
    ("HONDA", "5J6", "CR-V", ("EX", "EX-L")),
    ("NISSAN", "5N1", "ROGUE", ("S", "SV", "SL")),
    ("JEEP", "1C4", "GRAND CHEROKEE", ("LAREDO", "LIMITED")),
    ("RAM", "1C6", "1500", ("TRADESMAN", "BIG HORN")),
    ("HYUNDAI", "KM8", "TUCSON", ("SE", "SEL")),
    ("KIA", "5XY", "TELLURIDE", ("LX", "EX", "SX")),
    ("SUBARU", "4S4", "OUTBACK", ("PREMIUM", "LIMITED")),
    ("TESLA", "5YJ", "MODEL 3", ("RWD", "LONG RANGE")),
    ("BMW", "WBA", "330I", ("BASE", "XDRIVE")),
    ("VOLKSWAGEN", "3VW", "JETTA", ("S", "SE")),
]
_CATALOG_WEIGHTS = np.array([14, 6, 12, 6, 8, 9, 3, 6, 7, 6, 5, 7, 4, 3, 4, 2, 2, 3], dtype=np.float64)
_CATALOG_WEIGHTS /= _CATALOG_WEIGHTS.sum()


def vins_for(
    ids: np.ndarray, catalog_idx: np.ndarray, years: np.ndarray, rng: np.random.Generator
) -> pl.Series:
    """One VIN per id, unique for unique ids < 33M, with the right check digit in position 9."""
    n = len(ids)
    buf = np.empty((n, 17), dtype=np.uint8)
    wmi = np.frombuffer("".join(c[1] for c in CATALOG).encode(), dtype=np.uint8).reshape(-1, 3)
    buf[:, 0:3] = wmi[catalog_idx]
    buf[:, 3:8] = VIN_CHARS[rng.integers(0, len(VIN_CHARS), size=(n, 5))]
    codes = np.zeros(2031, dtype=np.uint8)
    for year, code in _YEAR_CODES.items():
        codes[year] = ord(code)
    buf[:, 9] = codes[np.clip(years, 2001, 2030)]
    scrambled = (
        ids.astype(np.int64) * 7_368_787 + 1_234_567
    ) % 33_000_000  # a bijection: unique stays unique
    buf[:, 10] = VIN_CHARS[scrambled // 1_000_000]  # plant code
    serial = scrambled % 1_000_000
    for k in range(6):
        buf[:, 16 - k] = ord("0") + (serial // 10**k) % 10
    buf[:, 8] = ord("0")
    remainder = (_TRANSLIT[buf] * _WEIGHTS).sum(axis=1) % 11
    buf[:, 8] = np.where(remainder == 10, ord("X"), ord("0") + remainder)
    return pl.Series("vin", np.ascontiguousarray(buf).view("S17").ravel()).cast(pl.String)


def dealer_ids(count: int, prefix: str = "D") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(1, count + 1)]


def vehicles(ids: np.ndarray, dealers: np.ndarray, as_of: datetime, seed: int) -> pl.DataFrame:
    """Canonical attributes of vehicles `ids` held by `dealers` (one dealer id per vehicle) at `as_of`."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    cat = rng.choice(len(CATALOG), size=n, p=_CATALOG_WEIGHTS)
    new = rng.random(n) < 0.4
    years = np.where(
        new, as_of.year + rng.integers(0, 2, n), as_of.year - 1 - rng.geometric(0.22, n).clip(1, 14) + 1
    )
    age = np.maximum(as_of.year - years, 0)
    miles = np.where(
        new, rng.integers(0, 60, n), (age * 11_500 * rng.lognormal(0, 0.35, n)).astype(np.int64) + 900
    )
    days_in = np.where(new, rng.exponential(45, n), rng.exponential(28, n)).astype(np.int64)
    trim_pick = rng.integers(0, 3, n)
    seq = rng.permutation(n) + 10_000
    frame = pl.DataFrame(
        {
            "dealer_id": dealers,
            "vin": vins_for(ids, cat, years, rng),
            "system_code": np.where(new, "N", "U"),
            "year": years.astype(np.int32),
            "mileage": miles,
            "date_in_stock": np.datetime64(as_of.date()) - days_in.astype("timedelta64[D]"),
            "_seq": seq,
        }
    )
    makes = pl.Series("make", [c[0] for c in CATALOG]).gather(cat)
    models = pl.Series("model", [c[2] for c in CATALOG]).gather(cat)
    trims = pl.Series("trim", [c[3][i % len(c[3])] for c in CATALOG for i in range(3)]).gather(
        cat * 3 + trim_pick
    )
    style = pl.col("dealer_id").str.slice(-1).cast(pl.Int32, strict=False).fill_null(0) % 3
    return frame.with_columns(
        makes,
        models,
        trims,
        stock_no=pl.when(style == 0)
        .then(pl.col("vin").str.slice(9, 8))  # many stores use the VIN's tail
        .when(style == 1)
        .then(pl.format("{}{}", pl.col("system_code"), pl.col("_seq")))
        .otherwise(pl.format("{}-{}", pl.col("dealer_id").str.slice(1), pl.col("_seq"))),
    ).select(
        "dealer_id",
        "vin",
        "stock_no",
        "system_code",
        "year",
        "make",
        "model",
        "trim",
        "mileage",
        "date_in_stock",
    )


def as_feed(frame: pl.DataFrame, dirt: float = 0.0, seed: int = 0) -> pl.DataFrame:
    """Canonical vehicles as the `generic` layout's text columns; `dirt` > 0 adds what real exports carry:
    lower-case and dashed VINs, padding, US dates, thousands separators, bad VINs, duplicates, no dealer."""
    text = frame.select(
        pl.col("dealer_id"),
        pl.col("vin"),
        pl.col("stock_no"),
        pl.col("system_code"),
        pl.col("year").cast(pl.String),
        pl.col("make"),
        pl.col("model"),
        pl.col("trim"),
        pl.col("mileage").cast(pl.String),
        pl.col("date_in_stock").dt.strftime("%Y-%m-%d"),
    )
    if dirt > 0:
        text = _dirty(text, dirt, seed)
    return text.rename(dict(zip(text.columns, GENERIC_HEADERS, strict=True)))


def _dirty(text: pl.DataFrame, dirt: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = text.height

    def pick(rate: float) -> pl.Series:
        return pl.Series(rng.random(n) < rate / 100 * dirt)  # rate: percent of rows at dirt 1.0

    us_date = pl.col("date_in_stock").str.to_date().dt.strftime("%m/%d/%Y")
    text = text.with_columns(
        vin=pl.when(pick(0.5))
        .then(pl.col("vin").str.to_lowercase())
        .when(pick(0.2))
        .then(pl.format("{}-{}", pl.col("vin").str.slice(0, 8), pl.col("vin").str.slice(8)))
        .when(pick(0.1))
        .then(pl.col("vin").str.slice(0, 16))  # invalid: 16 characters
        .when(pick(0.05))
        .then(pl.col("vin").str.slice(0, 8) + pl.lit("Z") + pl.col("vin").str.slice(9))  # bad check
        .otherwise(pl.col("vin")),
        dealer_id=pl.when(pick(0.05))
        .then(pl.lit(""))
        .when(pick(0.5))
        .then(pl.format(" {} ", pl.col("dealer_id")))
        .otherwise(pl.col("dealer_id")),
        mileage=pl.when(pick(1.0) & (pl.col("mileage").str.len_chars() > 3))
        .then(
            pl.format(
                "{},{}",
                pl.col("mileage").str.slice(0, pl.col("mileage").str.len_chars() - 3),
                pl.col("mileage").str.slice(-3),
            )
        )
        .otherwise(pl.col("mileage")),
        date_in_stock=pl.when(pick(2.0)).then(us_date).otherwise(pl.col("date_in_stock")),
    )
    dup_rows = (
        rng.choice(n, size=max(1, int(n * 0.001 * dirt)), replace=False) if n else np.zeros(0, np.int64)
    )  # 0.1%
    return pl.concat([text, text[dup_rows]])


def write_feed(feed: pl.DataFrame, path: Path, malformed: int = 0) -> Path:
    """Write a feed atomically; `malformed` extra lines with a wrong field count go at the end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    feed.write_csv(tmp)
    if malformed:
        with open(tmp, "a", encoding="utf-8") as handle:
            handle.writelines(
                f"D0001,1FTFW1E5XNFA{i:05d},EXTRA,U,2020,FORD,F-150,XL,1000,2026-01-01,oops\n"
                for i in range(malformed)
            )
    os.replace(tmp, path)
    return path


def feed_file_name(source: str, as_of: datetime) -> str:
    return f"{source}-{as_of.strftime('%Y%m%dT%H%M%SZ')}.csv"


def settings_yaml(
    dealers: list[str],
    *,
    tracking: str = "{mode: for_days, days: 3}",
    auto_close: str = "{mode: after_days, days: 3}",
    guard: str | None = None,
    source: str = "generic",
) -> str:
    """A settings file with one client per dealer (ten dealers share a client) and U/N type mappings."""
    lines = [
        "sources:",
        f"  {source}:",
        "    layout: generic",
        f"    track_stock_no_and_client: {tracking}",
        f"    auto_close: {auto_close}",
    ]
    if guard:
        lines.append(f"    auto_close_guard: {guard}")
    lines += [
        "    vehicle_type_mappings:",
        "      - {system_code: U, vehicle_type: Used, service_request_type: Used Recon}",
        "      - {system_code: N, vehicle_type: New, service_request_type: New Delivery Prep}",
        "    client_dealer_mappings:",
    ]
    lines += [
        f'      - {{client: "Client {i // 10:03d}", dealer_id: "{d}", service_request_type: Recon}}'
        for i, d in enumerate(dealers)
    ]
    return "\n".join(lines) + "\n"


def hours(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(hours=h) for h in range(count)]
