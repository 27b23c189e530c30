"""Appointment requests: JSON lines from files, and requests derived from DMS service requests.

A bad line is kept (status `invalid`, its reasons joined by "; ") under the key `<file>#<line>`, so it can
never collide with a real request id; the other lines go on.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import polars as pl

from dealer_assets.core.service_requests import LINKED_SCHEMA
from dealer_assets.xtime.domain.enrollment import enrollment_states
from dealer_assets.xtime.settings import XtimeSettings

FIELDS = (
    "request_id",
    "dealership",
    "first_name",
    "last_name",
    "email",
    "phone",
    "vin",
    "earliest",
    "latest",
    "comment",
)
OPTIONAL = ("vin", "latest", "comment")
LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"
DEFAULT_WINDOW = timedelta(days=7)
VIN_RE = r"^[A-HJ-NPR-Z0-9]{17}$"
EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE_RE = r"^\+?[0-9() .\-]{7,25}$"
LOCAL_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$"

REQUEST_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "origin": pl.String(),
    "dealership": pl.String(),
    "vin": pl.String(),
    "first_name": pl.String(),
    "last_name": pl.String(),
    "email": pl.String(),
    "phone": pl.String(),
    "earliest": pl.String(),
    "latest": pl.String(),
    "comment": pl.String(),
    "sr_id": pl.String(),
    "source_file": pl.String(),
    "line_number": pl.Int64(),
    "status": pl.String(),
    "reason": pl.String(),
}
LINES_SCHEMA = {"source_file": pl.String(), "line_number": pl.Int64(), "line": pl.String()}
EXISTING_SCHEMA = {"request_id": pl.String(), "source_file": pl.String(), "line_number": pl.Int64()}


def _decode(line: str | None) -> dict[str, str | None]:
    """The one per-line step: JSON itself (polars' decoder fails a whole column on one bad line).

    A line that is not UTF-8 arrives as None (never silently repaired)."""
    out: dict[str, str | None] = dict.fromkeys(FIELDS)
    if line is None:
        return out | {"_structure": "not UTF-8 text", "_fatal": True}
    try:
        obj = json.loads(line)
    except ValueError as exc:
        return out | {"_structure": f"not valid JSON ({exc.msg})", "_fatal": True}
    if not isinstance(obj, dict):
        return out | {"_structure": "not a JSON object", "_fatal": True}
    problems = [f"unknown key {k!r}" for k in obj if k not in FIELDS]
    problems += [
        f"{k} must be a string" for k in FIELDS if obj.get(k) is not None and not isinstance(obj[k], str)
    ]
    strings = {k: v for k, v in obj.items() if k in FIELDS and isinstance(v, str)}
    return out | strings | {"_structure": "; ".join(problems) or None, "_fatal": False}


def _local(col: str) -> pl.Expr:
    text = pl.col(col).str.replace(" ", "T")
    padded = pl.when(text.str.len_chars() == 16).then(text + ":00").otherwise(text)
    return pl.when(text.str.contains(LOCAL_RE)).then(padded.str.to_datetime(LOCAL_FORMAT, strict=False))


def _decoded(lines: pl.DataFrame, existing: pl.DataFrame) -> pl.DataFrame:
    """One row per non-blank line not stored yet: its fields trimmed (blank is null), and its structure."""
    lines = lines.filter(pl.col("line").is_null() | (pl.col("line").str.strip_chars() != ""))
    decoded = pl.DataFrame(
        [_decode(t) for t in lines["line"]],
        schema={**dict.fromkeys(FIELDS, pl.String()), "_structure": pl.String(), "_fatal": pl.Boolean()},
    )
    frame = pl.concat([lines.select("source_file", "line_number"), decoded], how="horizontal").with_columns(
        [pl.col(f).str.strip_chars().replace("", None) for f in FIELDS]
    )
    return frame.join(existing, on=["source_file", "line_number"], how="anti")


def _vin() -> pl.Expr:
    return pl.col("vin").str.to_uppercase().str.replace_all(r"[\s\-]", "")


def _latest_or_default() -> pl.Expr:
    return pl.coalesce(_local("latest"), _local("earliest") + DEFAULT_WINDOW)


def _problems(settings: XtimeSettings, existing: pl.DataFrame) -> list[pl.Expr]:
    """One expression per rule, each null or the reason the line breaks it."""
    earliest, latest, vin = _local("earliest"), _local("latest"), _vin()
    first_in_batch = pl.int_range(pl.len()).over("request_id") == 0
    local_format = "must be a local time without offset, YYYY-MM-DDTHH:MM[:SS]"
    return [
        pl.col("_structure"),
        *(_missing(f) for f in ("request_id", "dealership", "first_name", "last_name", "email", "phone")),
        _missing("earliest"),
        _when(pl.col("request_id").str.starts_with("sr-"), "request ids starting with 'sr-' are reserved"),
        _when(
            pl.col("request_id").is_in(existing["request_id"].implode()),
            pl.format("duplicate request_id '{}' (already received)", pl.col("request_id")),
        ),
        _when(
            pl.col("request_id").is_not_null() & ~first_in_batch,
            pl.format("duplicate request_id '{}' (earlier in this batch)", pl.col("request_id")),
        ),
        _when(
            pl.col("dealership").is_not_null() & ~pl.col("dealership").is_in(list(settings.dealerships)),
            pl.format("dealership '{}' is not configured", pl.col("dealership")),
        ),
        _when(
            pl.col("email").is_not_null() & ~pl.col("email").str.contains(EMAIL_RE), "email is not an address"
        ),
        _when(
            pl.col("phone").is_not_null() & ~pl.col("phone").str.contains(PHONE_RE), "phone is not a number"
        ),
        _when(vin.is_not_null() & ~vin.str.contains(VIN_RE), "vin is not 17 characters of A-H J-N P R-Z 0-9"),
        _when(pl.col("earliest").is_not_null() & earliest.is_null(), f"earliest {local_format}"),
        _when(pl.col("latest").is_not_null() & latest.is_null(), f"latest {local_format}"),
        _when(earliest.is_not_null() & (_latest_or_default() <= earliest), "latest is not after earliest"),
    ]


def parse_request_lines(lines: pl.DataFrame, settings: XtimeSettings, existing: pl.DataFrame) -> pl.DataFrame:
    """Validated requests from raw lines; `existing` (request_id, source_file, line_number) is what is stored.

    A line already stored from the same file and line is dropped (a re-read after a kill); a request id stored
    from elsewhere, or repeated in this batch, makes the later line invalid.
    """
    reason = (
        pl.when(pl.col("_fatal"))
        .then(pl.col("_structure"))
        .otherwise(
            pl.concat_str(_problems(settings, existing), separator="; ", ignore_nulls=True).replace("", None)
        )
    )
    valid = pl.col("reason").is_null()
    return (
        _decoded(lines, existing)
        .sort("source_file", "line_number")
        .with_columns(reason.alias("reason"))
        .select(
            pl.when(valid)
            .then(pl.col("request_id"))
            .otherwise(pl.format("{}#{}", pl.col("source_file"), pl.col("line_number")))
            .alias("request_id"),
            pl.lit("file").alias("origin"),
            "dealership",
            _vin().alias("vin"),
            "first_name",
            "last_name",
            "email",
            "phone",
            _local("earliest").dt.strftime(LOCAL_FORMAT).alias("earliest"),
            _latest_or_default().dt.strftime(LOCAL_FORMAT).alias("latest"),
            "comment",
            pl.lit(None, pl.String()).alias("sr_id"),
            "source_file",
            "line_number",
            pl.when(valid).then(pl.lit("pending")).otherwise(pl.lit("invalid")).alias("status"),
            "reason",
        )
        .cast(REQUEST_SCHEMA)
    )


def _missing(field: str) -> pl.Expr:
    return _when(pl.col(field).is_null(), f"{field} is required")


def _when(cond: pl.Expr, message: str | pl.Expr) -> pl.Expr:
    return pl.when(cond).then(pl.lit(message) if isinstance(message, str) else message)


SERVICE_REQUEST_SCHEMA = LINKED_SCHEMA
"""The columns of the DMS `service_requests` that requests are made from, in the table's order."""


def requests_from_service_requests(srs: pl.DataFrame, settings: XtimeSettings, now: datetime) -> pl.DataFrame:
    """Active SRs of a bookable type at an enrolled (confirmed, in time) dealership linked by `dms_dealer_id`
    become requests `sr-<sr_id>`; at a dealership not confirmed yet they wait, so their window starts when it is.

    The window starts at the later of the SR's creation and `now`, in the dealership's local time, and runs
    7 days; a stored request is never re-derived (the caller inserts only new ids), so this is fixed once.
    """
    confirmed = set(enrollment_states(settings, now).filter(pl.col("confirmed"))["dealership"])
    links = pl.DataFrame(
        [
            {"dealer_id": d.dms_dealer_id, "dealership": k, "time_zone": d.time_zone}
            for k, d in settings.dealerships.items()
            if d.dms_dealer_id is not None and k in confirmed
        ],
        schema={"dealer_id": pl.String(), "dealership": pl.String(), "time_zone": pl.String()},
    )
    eligible = srs.filter(
        (pl.col("status") == "active")
        & pl.col("service_request_type").is_in(list(settings.book_service_request_types))
    ).join(links, on="dealer_id", how="inner")
    start = pl.max_horizontal(pl.col("created_at"), pl.lit(now).dt.convert_time_zone("UTC"))
    parts = [
        eligible.filter(pl.col("time_zone") == zone).with_columns(
            start.dt.convert_time_zone(zone).dt.replace_time_zone(None).dt.truncate("1m").alias("_start")
        )
        for zone in links["time_zone"].unique().sort()
    ]
    frame = (
        pl.concat(parts) if parts else eligible.with_columns(pl.lit(None, pl.Datetime("us")).alias("_start"))
    )
    return (
        frame.sort("sr_id")
        .select(
            pl.format("sr-{}", pl.col("sr_id")).alias("request_id"),
            pl.lit("service_request").alias("origin"),
            "dealership",
            "vin",
            pl.lit("Service").alias("first_name"),
            pl.coalesce(pl.col("client"), pl.lit("Request")).alias("last_name"),
            pl.lit(None, pl.String()).alias("email"),
            pl.lit(None, pl.String()).alias("phone"),
            pl.col("_start").dt.strftime(LOCAL_FORMAT).alias("earliest"),
            (pl.col("_start") + DEFAULT_WINDOW).dt.strftime(LOCAL_FORMAT).alias("latest"),
            pl.format(
                "{} for stock {} (service request {})",
                pl.col("service_request_type"),
                pl.coalesce(pl.col("stock_no"), pl.lit("-")),
                pl.col("sr_id"),
            ).alias("comment"),
            "sr_id",
            pl.lit(None, pl.String()).alias("source_file"),
            pl.lit(None, pl.Int64()).alias("line_number"),
            pl.lit("pending").alias("status"),
            pl.lit(None, pl.String()).alias("reason"),
        )
        .cast(REQUEST_SCHEMA)
    )
