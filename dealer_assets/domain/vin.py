"""VIN normalization and the 49 CFR 565 check digit, as polars expressions."""
from __future__ import annotations

import polars as pl

VIN_PATTERN = r"^[A-HJ-NPR-Z0-9]{17}$"
WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
TRANSLITERATION = {
    **{str(d): d for d in range(10)},
    "A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6, "G": 7, "H": 8,
    "J": 1, "K": 2, "L": 3, "M": 4, "N": 5, "P": 7, "R": 9,
    "S": 2, "T": 3, "U": 4, "V": 5, "W": 6, "X": 7, "Y": 8, "Z": 9,
}


def normalize_vin(raw: pl.Expr) -> pl.Expr:
    """Rule 1: trim, upper-case, drop inner spaces and dashes; empty becomes null."""
    cleaned = raw.str.strip_chars().str.to_uppercase().str.replace_all(r"[\s\-]", "")
    return pl.when(cleaned.str.len_chars() > 0).then(cleaned)


def is_valid_vin(vin: pl.Expr) -> pl.Expr:
    return vin.str.contains(VIN_PATTERN).fill_null(False)


def expected_check_digit(vin: pl.Expr) -> pl.Expr:
    """The check character a valid VIN must carry in position 9 (`0`-`9` or `X`)."""
    total = pl.sum_horizontal(
        vin.str.slice(i, 1).replace_strict(TRANSLITERATION, default=0, return_dtype=pl.Int32) * w
        for i, w in enumerate(WEIGHTS) if w
    )
    remainder = total % 11
    return pl.when(remainder == 10).then(pl.lit("X")).otherwise(remainder.cast(pl.String))


def check_digit_ok(vin: pl.Expr) -> pl.Expr:
    return vin.str.slice(8, 1) == expected_check_digit(vin)


def with_check_digit(vin17: str) -> str:
    """A VIN with its check digit set; for generating test and benchmark data."""
    total = sum(TRANSLITERATION[c] * w for c, w in zip(vin17, WEIGHTS, strict=True))
    digit = "X" if total % 11 == 10 else str(total % 11)
    return vin17[:8] + digit + vin17[9:]
