"""What-if (CONTRACT section 10): the difference between the service requests now and those that other
settings would have produced, per (source, VIN), and its summary per dealer. Pure polars."""

from __future__ import annotations

import polars as pl

COMPARED = (
    "dealer_id",
    "client",
    "stock_no",
    "vehicle_type",
    "service_request_type",
    "status",
    "created_at",
    "closed_at",
    "auto_close_at",
)
CHANGES = ("would_create", "would_not_exist", "would_close", "would_be_active", "would_change")
DIFF_SCHEMA = {
    "source": pl.String,
    "vin": pl.String,
    "dealer_id": pl.String,
    "change": pl.String,
    "fields": pl.String,
    "now": pl.String,
    "would_be": pl.String,
}
ISO = "%Y-%m-%dT%H:%M:%SZ"


def _latest(srs: pl.DataFrame, side: str) -> pl.LazyFrame:
    """Each (source, VIN)'s latest SR by `created_at`, its compared fields as text (timestamps in ISO 8601),
    named `<field>_<side>`."""
    return (
        srs.lazy()
        .sort("source", "vin", "created_at")
        .group_by("source", "vin", maintain_order=True)
        .last()
        .select(
            "source",
            "vin",
            pl.lit(True).alias(f"_has_{side}"),
            *[
                (
                    pl.col(c).dt.strftime(ISO) if srs.schema[c].is_temporal() else pl.col(c).cast(pl.String)
                ).alias(f"{c}_{side}")
                for c in COMPARED
            ],
        )
    )


def _as_json(side: str) -> pl.Expr:
    """The compared fields of one side as a JSON object; empty when that side has no SR."""
    fields = pl.struct(**{c: pl.col(f"{c}_{side}") for c in COMPARED})
    return pl.when(pl.col(f"_has_{side}")).then(fields.struct.json_encode()).otherwise(pl.lit(""))


def diff_service_requests(now: pl.DataFrame, would_be: pl.DataFrame) -> pl.DataFrame:
    """One row per (source, VIN) whose latest SR differs between `now` and `would_be` (both in the columns of
    the contract's `service_requests`), with the kind of change and the differing fields, sorted."""
    joined = (
        _latest(now, "now")
        .join(_latest(would_be, "would_be"), on=["source", "vin"], how="full", coalesce=True)
        .with_columns(pl.col("_has_now", "_has_would_be").fill_null(False))
    )
    differs = [pl.col(f"{c}_now").ne_missing(pl.col(f"{c}_would_be")) for c in COMPARED]
    fields = pl.concat_list(
        [
            pl.when(d).then(pl.lit(c)).otherwise(pl.lit(None, pl.String))
            for c, d in zip(COMPARED, differs, strict=True)
        ]
    ).list.drop_nulls()
    change = (
        pl.when(~pl.col("_has_now"))
        .then(pl.lit("would_create"))
        .when(~pl.col("_has_would_be"))
        .then(pl.lit("would_not_exist"))
        .when((pl.col("status_now") == "active") & (pl.col("status_would_be") == "closed"))
        .then(pl.lit("would_close"))
        .when((pl.col("status_now") == "closed") & (pl.col("status_would_be") == "active"))
        .then(pl.lit("would_be_active"))
        .otherwise(pl.lit("would_change"))
    )
    return (
        joined.with_columns(_fields=fields)
        .filter(pl.col("_fields").list.len() > 0)
        .select(
            "source",
            "vin",
            pl.coalesce("dealer_id_would_be", "dealer_id_now").alias("dealer_id"),
            change.alias("change"),
            pl.col("_fields").list.join(";").alias("fields"),
            _as_json("now").alias("now"),
            _as_json("would_be").alias("would_be"),
        )
        .sort("source", "vin")
        .collect()
        .cast(DIFF_SCHEMA)
    )


def summarize(now: pl.DataFrame, would_be: pl.DataFrame, diff: pl.DataFrame) -> pl.DataFrame:
    """Per (source, dealer) with a difference: active SRs now and under the other settings, and the count of
    each kind of change; sorted."""
    active = [
        frame.lazy().filter(pl.col("status") == "active").group_by("source", "dealer_id").len(name)
        for frame, name in ((now, "active_now"), (would_be, "active_would_be"))
    ]
    changes = (
        diff.lazy()
        .group_by("source", "dealer_id")
        .agg(*[(pl.col("change") == c).sum().cast(pl.UInt32).alias(c) for c in CHANGES])
    )
    return (
        changes.join(active[0], on=["source", "dealer_id"], how="left")
        .join(active[1], on=["source", "dealer_id"], how="left")
        .with_columns(pl.col("active_now", "active_would_be").fill_null(0))
        .select("source", "dealer_id", "active_now", "active_would_be", *CHANGES)
        .sort("source", "dealer_id")
        .collect()
    )
