"""Raw feed rows -> normalized vehicles and rejected rows (CONTRACT rule 1)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from dealer_assets.core.strings import string_buffers
from dealer_assets.core.vin import normalize_vin, vin_flags
from dealer_assets.dms.domain.parsing import LINE_NUMBER, MALFORMED_SCHEMA
from dealer_assets.dms.settings import CANONICAL_FIELDS, Layout

TS = pl.Datetime("us", "UTC")
TEXT_FIELDS = ("dealer_id", "stock_no", "system_code", "make", "model", "trim")

VEHICLE_SCHEMA = {
    "source": pl.String,
    "feed_as_of": TS,
    "feed_file": pl.String,
    "line_number": pl.UInt32,
    "dealer_id": pl.String,
    "vin": pl.String,
    "raw_vin": pl.String,
    "stock_no": pl.String,
    "system_code": pl.String,
    "year": pl.Int32,
    "make": pl.String,
    "model": pl.String,
    "trim": pl.String,
    "mileage": pl.Int64,
    "date_in_stock": pl.Date,
    "check_digit_ok": pl.Boolean,
}
REJECTED_SCHEMA = {
    "source": pl.String,
    "feed_file": pl.String,
    "feed_as_of": TS,
    "line_number": pl.UInt32,
    "raw_vin": pl.String,
    "dealer_id": pl.String,
    "reason": pl.String,
    "detail": pl.String,
}
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%Y%m%d", "%Y/%m/%d")


@dataclass(frozen=True)
class FeedRef:
    """One accepted feed: identified by its source and as-of (CONTRACT section 2)."""

    source: str
    as_of: datetime
    file_name: str


@dataclass(frozen=True)
class NormalizedFeed:
    vehicles: pl.DataFrame
    rejected: pl.DataFrame


def _clean(expr: pl.Expr) -> pl.Expr:
    """Without NUL characters: no text column of PostgreSQL can hold one, so no backend gets one."""
    return expr.cast(pl.String).str.replace_all("\x00", "", literal=True)


def _text(expr: pl.Expr) -> pl.Expr:
    """Cleaned and trimmed; blank becomes null."""
    return _clean(expr).str.strip_chars().replace("", None)


def _rows_to_clean(column: pl.Series) -> np.ndarray | None:
    """The rows whose value `_text` may change, or None for every row when some value holds a NUL.

    A superset, read from the Arrow buffers in a few vector passes: empty values, and values whose first or
    last byte may be whitespace (ASCII space or control, or any non-ASCII byte).
    """
    offsets, data = string_buffers(column)
    if np.count_nonzero(data[offsets[0] :]) < offsets[-1] - offsets[0]:
        return None
    if not len(data):
        return np.flatnonzero(column.is_not_null().to_numpy())
    starts, ends = offsets[:-1], offsets[1:]
    suspect = (
        (ends == starts)
        | ((data[np.minimum(starts, len(data) - 1)] - np.uint8(33)) >= 95)
        | ((data[np.maximum(ends - 1, 0)] - np.uint8(33)) >= 95)
    )
    if column.null_count():
        suspect &= column.is_not_null().to_numpy()
    return np.flatnonzero(suspect)


def _text_at(column: pl.Series, rows: np.ndarray | None) -> pl.Series | pl.Expr:
    """`_text` of the column, computed only at `rows` (None: every row, as an expression)."""
    if rows is None or len(rows) * 8 > len(column):
        return _text(pl.col(column.name))
    if not len(rows):
        return column
    cleaned = column.gather(rows).to_frame().select(_text(pl.col(column.name))).to_series()
    return column.clone().scatter(rows, cleaned)


def _canonical(raw: pl.LazyFrame, layout: Layout, header: set[str]) -> pl.LazyFrame:
    """One column per canonical field: from its header, its constant, or absent (null)."""
    exprs = []
    for field in CANONICAL_FIELDS:
        if field in layout.constants:
            exprs.append(pl.lit(layout.constants[field], pl.String).alias(field))
        elif layout.headers.get(field) in header:
            exprs.append(pl.col(layout.headers[field]).cast(pl.String).alias(field))
        else:
            exprs.append(pl.lit(None, pl.String).alias(field))
    return raw.select(pl.col(LINE_NUMBER).alias("line_number"), *exprs)


def _with_fallback(fast, slow, dtype: pl.DataType):
    """Convert a text column with `fast`; only the values it could not read go through `slow` (usually none)."""

    def batch(text: pl.Series) -> pl.Series:
        parsed = fast(text)
        failed = parsed.is_null() & text.is_not_null()
        if not failed.any():
            return parsed
        return parsed.scatter(failed.arg_true(), slow(text.filter(failed)))

    return lambda expr: expr.map_batches(batch, return_dtype=dtype)


_parse_date = _with_fallback(
    lambda t: t.str.to_date(DATE_FORMATS[0], strict=False),
    lambda t: (
        t.str.strip_chars()
        .to_frame("t")
        .select(pl.coalesce(*(pl.col("t").str.to_date(fmt, strict=False) for fmt in DATE_FORMATS)))
        .to_series()
    ),
    pl.Date,
)
"""ISO dates first, then the other formats."""

_parse_year = _with_fallback(
    lambda t: t.cast(pl.Int32, strict=False),
    lambda t: t.str.strip_chars().cast(pl.Int32, strict=False),
    pl.Int32,
)

_parse_mileage = _with_fallback(
    lambda t: t.cast(pl.Int64, strict=False),
    lambda t: (
        t.str.strip_chars()
        .str.replace_all(",", "", literal=True)
        .cast(pl.Float64, strict=False)
        .round(0)
        .cast(pl.Int64, strict=False)
    ),
    pl.Int64,
)
"""Whole miles; `12,345` and `12345.6` are read too."""


def _vin_columns(raw: pl.Series) -> tuple[np.ndarray, pl.Series, np.ndarray, np.ndarray]:
    """(valid as given, normalized VINs, valid, check digit ok): a value that is a valid VIN as it stands is
    its own normalization, so only the others are normalized and checked again."""
    given, check_ok = vin_flags(raw)
    others = np.flatnonzero(~given)
    if not len(others):
        return given, raw, given, check_ok
    fixed = raw.gather(others).to_frame().select(normalize_vin(pl.col(raw.name))).to_series()
    valid, check_ok = given.copy(), check_ok.copy()
    valid[others], check_ok[others] = vin_flags(fixed)
    return given, raw.clone().scatter(others, fixed), valid, check_ok


def _repeats(vins: pl.Series, competing: np.ndarray) -> np.ndarray:
    """True for a competing row whose VIN an earlier competing row already carries.

    Rows are first compared by a 64-bit hash (sorted, so equal hashes are neighbours); only the few sharing a
    hash are compared as text.
    """
    rows = np.flatnonzero(competing)
    hashes = (vins if len(rows) == len(vins) else vins.gather(rows)).hash().to_numpy()
    ordered = np.sort(hashes)
    shared = ordered[1:][ordered[1:] == ordered[:-1]]
    out = np.zeros(len(vins), dtype=bool)
    if len(shared):
        candidates = rows[np.isin(hashes, shared)]
        out[candidates] = ~vins.gather(candidates).is_first_distinct().to_numpy()
    return out


def normalize_feed(rows: pl.DataFrame, layout: Layout, feed: FeedRef) -> NormalizedFeed:
    """Trim, validate and de-duplicate one feed; every row ends up in exactly one of the two outputs."""
    ident = [
        pl.lit(feed.source).alias("source"),
        pl.lit(feed.as_of, TS).alias("feed_as_of"),
        pl.lit(feed.file_name).alias("feed_file"),
    ]
    canonical = _canonical(rows.lazy(), layout, set(rows.columns)).collect()
    raw = canonical.get_column("vin")
    with ThreadPoolExecutor(max_workers=1) as pool:
        vin_columns = pool.submit(_vin_columns, raw)
        cleaned = canonical.with_columns(
            *(
                _text_at(canonical.get_column(f), _rows_to_clean(canonical.get_column(f))).alias(f)
                for f in TEXT_FIELDS
            ),
            _parse_year(pl.col("year")).alias("year"),
            _parse_mileage(pl.col("mileage")).alias("mileage"),
            _parse_date(pl.col("date_in_stock")).alias("date_in_stock"),
        )
        given, vins, valid, check_ok = vin_columns.result()
    staged = cleaned.with_columns(_text_at(raw, np.flatnonzero(~given)).alias("raw_vin"), vins)
    competing = staged.get_column("dealer_id").is_not_null().to_numpy() & valid
    accepted = competing & ~_repeats(vins, competing)

    vehicles = (
        (staged if accepted.all() else staged.filter(pl.Series(accepted)))
        .with_columns(*ident, pl.Series("check_digit_ok", check_ok[accepted]))
        .select([pl.col(c).cast(t) for c, t in VEHICLE_SCHEMA.items()])
    )
    rejected = (
        staged.filter(pl.Series(~accepted))
        .with_columns(pl.Series("_competing", competing[~accepted]))
        .with_columns(
            pl.when(pl.col("dealer_id").is_null())
            .then(pl.lit("missing_dealer"))
            .when(~pl.col("_competing"))
            .then(pl.lit("invalid_vin"))
            .otherwise(pl.lit("duplicate_vin"))
            .alias("reason")
        )
    )
    first_lines = (
        vehicles.lazy()
        .select("vin", pl.col("line_number").alias("_first"))
        .join(rejected.lazy().filter(pl.col("reason") == "duplicate_vin").select("vin").unique(), on="vin")
    )
    rejected = (
        rejected.lazy()
        .join(first_lines, on="vin", how="left")
        .with_columns(
            *ident,
            pl.when(pl.col("reason") == "duplicate_vin")
            .then(pl.format("VIN {} first seen on line {}", pl.col("vin"), pl.col("_first")))
            .when(pl.col("reason") == "invalid_vin")
            .then(pl.lit("a VIN is 17 characters of A-H, J-N, P, R-Z, 0-9 after normalization"))
            .otherwise(pl.lit("the row names no dealer"))
            .alias("detail"),
        )
        .select([pl.col(c).cast(t) for c, t in REJECTED_SCHEMA.items()])
        .sort("line_number")
        .collect()
    )
    return NormalizedFeed(vehicles=vehicles, rejected=rejected)


def malformed_rejections(malformed: pl.DataFrame, feed: FeedRef) -> pl.DataFrame:
    """Rows with the wrong number of fields, as `rejected_rows` (`malformed_row`)."""
    return (
        malformed.cast(MALFORMED_SCHEMA)
        .with_columns(
            _clean(pl.col("raw_vin")).alias("raw_vin"),
            pl.lit(feed.source).alias("source"),
            pl.lit(feed.file_name).alias("feed_file"),
            pl.lit(feed.as_of, TS).alias("feed_as_of"),
            pl.lit(None, pl.String).alias("dealer_id"),
            pl.lit("malformed_row").alias("reason"),
            pl.format("{} fields where the header has {}", pl.col("fields"), pl.col("expected_fields")).alias(
                "detail"
            ),
        )
        .select([pl.col(c).cast(t) for c, t in REJECTED_SCHEMA.items()])
    )
