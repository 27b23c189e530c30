"""VIN normalization and the 49 CFR 565 check digit, as polars expressions."""

from __future__ import annotations

import numpy as np
import polars as pl

from dealer_assets.core.strings import string_buffers

VIN_PATTERN = r"^[A-HJ-NPR-Z0-9]{17}$"
WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
TRANSLITERATION = {
    **{str(d): d for d in range(10)},
    "A": 1,
    "B": 2,
    "C": 3,
    "D": 4,
    "E": 5,
    "F": 6,
    "G": 7,
    "H": 8,
    "J": 1,
    "K": 2,
    "L": 3,
    "M": 4,
    "N": 5,
    "P": 7,
    "R": 9,
    "S": 2,
    "T": 3,
    "U": 4,
    "V": 5,
    "W": 6,
    "X": 7,
    "Y": 8,
    "Z": 9,
}


def normalize_vin(raw: pl.Expr) -> pl.Expr:
    """Rule 1: trim, upper-case, drop inner spaces and dashes; empty becomes null."""
    return raw.str.replace_all(r"[\s\-]", "").str.to_uppercase().replace("", None)


def is_valid_vin(vin: pl.Expr) -> pl.Expr:
    return vin.str.contains(VIN_PATTERN).fill_null(False)


_VALUES = np.zeros(256, dtype=np.int32)
for _char, _value in TRANSLITERATION.items():
    _VALUES[ord(_char)] = _value
_WEIGHTS = np.array(WEIGHTS, dtype=np.int32)


def _vin_bytes(vins: pl.Series) -> np.ndarray:
    """An (n, 17) byte matrix of 17-byte strings, straight from the Arrow buffer."""
    offsets, data = string_buffers(vins)
    return data[offsets[0] :].reshape(-1, 17)


def _expected_codes(vins: pl.Series) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """(mask of 17-byte VINs, their bytes, the check character each should carry) for one batch."""
    mask = (vins.str.len_bytes() == 17).fill_null(False)
    if mask.all():
        chars = _vin_bytes(vins)
    elif mask.any():
        chars = _vin_bytes(vins.filter(mask))
    else:
        chars = np.zeros((0, 17), dtype=np.uint8)
    remainder = (_VALUES[chars] @ _WEIGHTS) % 11
    expected = np.where(remainder == 10, ord("X"), ord("0") + remainder).astype(np.uint8)
    return mask, chars, expected


def _scatter(mask: pl.Series, values: np.ndarray, dtype: pl.DataType, name: str) -> pl.Series:
    if len(values) == len(mask):
        return pl.Series(name, values, dtype=dtype)
    out = pl.Series(name, [None] * len(mask), dtype=dtype)
    if len(values):
        out = out.scatter(mask.arg_true(), pl.Series(values, dtype=dtype))
    return out


def expected_check_digit(vin: pl.Expr) -> pl.Expr:
    """The check character a 17-character VIN must carry in position 9 (`0`-`9` or `X`)."""

    def batch(vins: pl.Series) -> pl.Series:
        mask, _, expected = _expected_codes(vins)
        return _scatter(
            mask, np.char.decode(expected.view("S1")) if len(expected) else expected, pl.String, vins.name
        )

    return vin.map_batches(batch, return_dtype=pl.String)


def check_digit_ok(vin: pl.Expr) -> pl.Expr:
    """Whether position 9 holds the 49 CFR 565 check digit; null for values that are not 17 characters."""

    def batch(vins: pl.Series) -> pl.Series:
        mask, chars, expected = _expected_codes(vins)
        return _scatter(mask, chars[:, 8] == expected, pl.Boolean, vins.name)

    return vin.map_batches(batch, return_dtype=pl.Boolean)


_CODES = np.full(256, np.nan, dtype=np.float32)
for _char, _value in TRANSLITERATION.items():
    _CODES[ord(_char)] = _value
_SUM_WEIGHTS = np.array(WEIGHTS, dtype=np.float32)
_SUM_WEIGHTS[8] = 1 / 1024
"""Position 9 adds nothing to the check sum; its tiny weight only carries a NaN there into the sum (the
fraction stays exact in float32 and is floored away)."""
_CHECK_VALUES = np.full(256, -1, dtype=np.float32)
for _digit in range(10):
    _CHECK_VALUES[ord("0") + _digit] = _digit
_CHECK_VALUES[ord("X")] = 10
_BLOCK = 1 << 16
"""VINs whose codes are weighed at once: all of a million would take 68 MB of floats."""


def vin_flags(vins: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(valid, check digit ok) per value, as it stands: 17 characters of the VIN alphabet, and for those
    whether position 9 holds the 49 CFR 565 check digit.

    One table lookup serves both: any other byte has a NaN code, which makes the row's weighted sum NaN. The
    sum runs in numpy's own loop (einsum), not BLAS, whose threads keep spinning after the call and slow the
    polars work that follows.
    """
    mask = (vins.str.len_bytes() == 17).fill_null(False)
    valid = np.zeros(len(vins), dtype=bool)
    check_ok = np.zeros(len(vins), dtype=bool)
    if not mask.any():
        return valid, check_ok
    chars = _vin_bytes(vins if mask.all() else vins.filter(mask))
    sums = np.empty(len(chars), dtype=np.float32)
    for start in range(0, len(chars), _BLOCK):
        block = slice(start, start + _BLOCK)
        np.einsum("ij,j->i", _CODES.take(chars[block]), _SUM_WEIGHTS, out=sums[block])
    alphabet = ~np.isnan(sums)
    remainder = np.fmod(np.floor(sums), 11, where=alphabet, out=np.full_like(sums, np.nan))
    rows = mask.to_numpy()
    valid[rows] = alphabet
    check_ok[rows] = alphabet & (_CHECK_VALUES.take(chars[:, 8]) == remainder)
    return valid, check_ok


def with_check_digit(vin17: str) -> str:
    """A VIN with its check digit set; for generating test and benchmark data."""
    total = sum(TRANSLITERATION[c] * w for c, w in zip(vin17, WEIGHTS, strict=True))
    digit = "X" if total % 11 == 10 else str(total % 11)
    return vin17[:8] + digit + vin17[9:]
