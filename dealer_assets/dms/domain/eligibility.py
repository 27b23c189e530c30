"""Rule 3: which feed vehicles may have an SR, with which client, vehicle type and SR type."""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from dealer_assets.dms.settings import SourceSettings

FEED_COLUMNS = ("dealer_id", "vin", "stock_no", "system_code")
"""The columns of a feed's normalized vehicles that reconciliation reads."""


class Mappings(NamedTuple):
    """A source's mappings as frames: clients by dealer, vehicle types for one dealer and for all."""

    clients: pl.DataFrame
    types_for_dealer: pl.DataFrame
    types_for_all: pl.DataFrame
    include_only_everywhere: bool
    include_only_dealers: list[str]


CLIENT_SCHEMA = {
    "dealer_id": pl.String,
    "client": pl.String,
    "client_sr_type": pl.String,
    "ignore_existing": pl.Boolean,
    "ignore_days": pl.Int64,
}
TYPE_SCHEMA = {
    "system_code": pl.String,
    "dealer_id": pl.String,
    "vehicle_type": pl.String,
    "type_sr_type": pl.String,
    "include_only": pl.Boolean,
}


_last: tuple[SourceSettings, Mappings] | None = None


def mappings(settings: SourceSettings) -> Mappings:
    """The settings' mappings as frames; the last settings' are kept, since a run applies many feeds under one."""
    global _last
    last = _last
    if last is not None and last[0] is settings:
        return last[1]
    built = _build_mappings(settings)
    _last = (settings, built)
    return built


def _build_mappings(settings: SourceSettings) -> Mappings:
    clients = pl.DataFrame(
        [
            (
                m.dealer_id,
                m.client,
                m.service_request_type,
                m.ignore_if_sr_with_vin_exists,
                m.ignore_days or 0,
            )
            for m in settings.client_dealer_mappings
        ],
        schema=CLIENT_SCHEMA,
        orient="row",
    )
    types = pl.DataFrame(
        [
            (m.system_code, m.dealer_id, m.vehicle_type, m.service_request_type, m.include_only)
            for m in settings.vehicle_type_mappings
        ],
        schema=TYPE_SCHEMA,
        orient="row",
    )
    for_dealer = types.filter(pl.col("dealer_id").is_not_null())
    for_all = types.filter(pl.col("dealer_id").is_null()).drop("dealer_id")
    return Mappings(
        clients,
        for_dealer,
        for_all,
        bool(for_all["include_only"].any()),
        for_dealer.filter(pl.col("include_only"))["dealer_id"].unique().to_list(),
    )


def feed_rows(vehicles: pl.DataFrame, settings: SourceSettings) -> pl.LazyFrame:
    """Rule 3: each feed vehicle with its client, vehicle type and SR type, or the reason it is skipped."""
    clients, types_for_dealer, types_for_all, include_all, include_dealers = mappings(settings)
    rows = vehicles.lazy().select(FEED_COLUMNS).join(clients.lazy(), on="dealer_id", how="left")
    if types_for_dealer.is_empty():
        rows = rows.with_columns(
            pl.lit(None, pl.String).alias("_vt_dealer"), pl.lit(None, pl.String).alias("_st_dealer")
        )
    else:
        rows = rows.join(
            types_for_dealer.lazy().select(
                "system_code",
                "dealer_id",
                pl.col("vehicle_type").alias("_vt_dealer"),
                pl.col("type_sr_type").alias("_st_dealer"),
            ),
            on=["system_code", "dealer_id"],
            how="left",
        )
    return (
        rows.join(
            types_for_all.lazy().select(
                "system_code",
                pl.col("vehicle_type").alias("_vt_all"),
                pl.col("type_sr_type").alias("_st_all"),
            ),
            on="system_code",
            how="left",
        )
        .with_columns(
            pl.coalesce("_vt_dealer", "_vt_all").alias("vehicle_type"),
            pl.coalesce("_st_dealer", "_st_all", "client_sr_type").alias("service_request_type"),
            (pl.col("_st_dealer").is_not_null() | pl.col("_st_all").is_not_null()).alias("_has_type"),
            (pl.lit(include_all) | pl.col("dealer_id").is_in(include_dealers)).alias("_include_only"),
        )
        .with_columns(
            pl.when(pl.col("client").is_null())
            .then(pl.lit("unmapped_dealer"))
            .when(pl.col("_include_only") & ~pl.col("_has_type"))
            .then(pl.lit("excluded_by_include_only"))
            .alias("skip_reason")
        )
    )
