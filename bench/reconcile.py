"""Benchmark 3: one N-row feed against N active SRs through `apply_feed`, vs bare polars anti-joins and vs
the same rules as DuckDB SQL. Every contender reads the same two parquet files inside its timed step.

Scenario (N = --rows): SRs 0..N/2 are in the feed, N/2..N are not (created 10 days ago, so they close under
`after_days: 3`); N/2 new VINs arrive (2% at unmapped dealers: skipped). Of the SRs in the feed, N/10 carry
a new stock number and N/100 a new dealer within `for_days: 3`, and N/20 were missed by the previous feed
(`auto_close_reset`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench.measure import Context, Figure, interleaved, median, peak, stopwatch

AS_OF = datetime(2026, 10, 15, 12, tzinfo=UTC)
SEED = 565
FILE_NAME = f"generic-{AS_OF.strftime('%Y%m%dT%H%M%SZ')}.csv"
GUARD = "{max_fraction: 0.6, min_active: 10}"
EVENTS = ("created", "stock_no_updated", "client_updated", "auto_close_reset", "auto_closed", "close_held")


# --- measured steps (run in bench.child) -------------------------------------------------------------------


def engine(state: str, vehicles: str, settings: str) -> dict:
    from dealer_assets.dms.domain.rules import apply_feed
    from dealer_assets.dms.domain.vehicles import FeedRef
    from dealer_assets.dms.settings import parse_settings

    source = parse_settings(Path(settings).read_text()).sources["generic"]
    result: dict = {}
    with stopwatch(result):
        outcome = apply_feed(
            pl.read_parquet(state), pl.read_parquet(vehicles), source, FeedRef("generic", AS_OF, FILE_NAME)
        )
    events = dict(outcome.events.group_by("event").len().iter_rows())
    result.update(
        {e: events.get(e, 0) for e in EVENTS},
        state_rows=outcome.state.height,
        active=int((outcome.state["status"] == "active").sum()),
        skipped=outcome.skipped.height,
    )
    return result


def polars_baseline(state: str, vehicles: str, settings: str) -> dict:
    """The least work that finds the creates, closes and stock changes: a read and three joins."""
    result: dict = {}
    with stopwatch(result):
        active = (
            pl.read_parquet(state)
            .lazy()
            .filter(pl.col("status") == "active")
            .select("sr_id", "vin", "dealer_id", "stock_no", "created_at")
        )
        feed = pl.read_parquet(vehicles).lazy().select("vin", "dealer_id", "stock_no")
        creates = feed.join(active, on="vin", how="anti")
        covered = feed.select("dealer_id").unique()
        closes = active.join(covered, on="dealer_id", how="semi").join(feed, on="vin", how="anti")
        stock = feed.join(
            active.select("vin", pl.col("stock_no").alias("_old"), "created_at"), on="vin"
        ).filter(
            pl.col("stock_no").ne_missing(pl.col("_old"))
            & (pl.lit(AS_OF) <= pl.col("created_at") + timedelta(days=3))
        )
        found = pl.collect_all([creates, closes, stock])
    result.update(creates=found[0].height, closes=found[1].height, stock_changes=found[2].height)
    return result


# --- scenario (parent) -------------------------------------------------------------------------------------


def scenario(ctx: Context) -> dict[str, str]:
    """Write state.parquet, vehicles.parquet and settings.yaml for N = ctx.rows (once per invocation)."""
    if "reconcile" in ctx.cache:
        return ctx.cache["reconcile"]
    from bench import synthetic
    from dealer_assets.dms.domain.state import SR_SCHEMA
    from dealer_assets.dms.domain.vehicles import FeedRef, normalize_feed
    from dealer_assets.dms.settings import GENERIC_LAYOUT

    n, half = ctx.rows, ctx.rows // 2
    out = ctx.dir("reconcile")
    rng = np.random.default_rng(SEED)
    n_dealers = max(4, n // 1000)
    mapped = np.array(synthetic.dealer_ids(n_dealers))
    dealer_idx = rng.integers(0, n_dealers, n + half)
    dealers = mapped[dealer_idx]
    unmapped = rng.random(n + half) < 0.02
    unmapped[:n] = False
    dealers[unmapped] = np.array(synthetic.dealer_ids(max(1, n_dealers // 50), prefix="X"))[
        rng.integers(0, max(1, n_dealers // 50), int(unmapped.sum()))
    ]
    pool = synthetic.vehicles(np.arange(n + half), dealers, AS_OF, SEED)

    ids = np.arange(n)
    recent = ids < n // 4
    changed = ids < n // 10
    moved = (ids >= n // 10) & (ids < n // 10 + n // 100)
    reset_lo = n // 10 + n // 100
    missed = (ids >= reset_lo) & (ids < reset_lo + n // 20)
    t = pl.lit(AS_OF, pl.Datetime("us", "UTC"))
    clients = pl.Series([f"Client {i // 10:03d}" for i in range(n_dealers)]).gather(dealer_idx[:n])
    state = (
        pool.head(n)
        .with_columns(
            created_at=pl.when(pl.Series(recent))
            .then(t - timedelta(days=1))
            .otherwise(t - timedelta(days=10)),
            _changed=pl.Series(changed),
            _missed=pl.Series(missed),
            client=clients,
        )
        .select(
            pl.format("generic-{}-{}", "vin", pl.col("created_at").dt.strftime("%Y%m%dT%H%M%SZ")).alias(
                "sr_id"
            ),
            pl.lit("generic").alias("source"),
            "vin",
            "dealer_id",
            "client",
            pl.when("_changed").then(pl.format("OLD-{}", "stock_no")).otherwise("stock_no").alias("stock_no"),
            pl.when(pl.col("system_code") == "U")
            .then(pl.lit("Used"))
            .otherwise(pl.lit("New"))
            .alias("vehicle_type"),
            pl.when(pl.col("system_code") == "U")
            .then(pl.lit("Used Recon"))
            .otherwise(pl.lit("New Delivery Prep"))
            .alias("service_request_type"),
            pl.lit("active").alias("status"),
            "created_at",
            pl.col("created_at").alias("updated_at"),
            pl.lit(None, pl.Datetime("us", "UTC")).alias("closed_at"),
            pl.lit(None, pl.String).alias("close_reason"),
            pl.when("_missed")
            .then(t - timedelta(hours=2))
            .otherwise(t - timedelta(hours=1))
            .alias("last_seen_at"),
            (pl.col("created_at") + timedelta(days=3)).alias("auto_close_at"),
            pl.when("_missed").then(t - timedelta(hours=1)).alias("missing_since"),
        )
        .cast(SR_SCHEMA)
        .sort("sr_id")
    )

    in_feed = np.concatenate([np.arange(half), np.arange(n, n + half)])
    feed = pool[in_feed].with_columns(
        dealer_id=pl.when(pl.Series(np.isin(in_feed, ids[moved])))
        .then(pl.Series(mapped[(dealer_idx[in_feed] + 1) % n_dealers]))
        .otherwise("dealer_id")
    )
    feed = feed[rng.permutation(feed.height)]
    vehicles = normalize_feed(
        synthetic.as_feed(feed)
        .with_row_index("_line_number", offset=2)
        .with_columns(pl.col("_line_number").cast(pl.UInt32)),
        GENERIC_LAYOUT,
        FeedRef("generic", AS_OF, FILE_NAME),
    ).vehicles
    paths = {
        "state": str(out / "state.parquet"),
        "vehicles": str(out / "vehicles.parquet"),
        "settings": str(out / "settings.yaml"),
    }
    state.write_parquet(paths["state"])
    vehicles.write_parquet(paths["vehicles"])
    Path(paths["settings"]).write_text(
        synthetic.settings_yaml(
            list(mapped),
            tracking="{mode: for_days, days: 3}",
            auto_close="{mode: after_days, days: 3}",
            guard=GUARD,
        )
    )
    ctx.cache["reconcile"] = paths
    ctx.cache["reconcile_expected"] = {
        "created": half - int(unmapped.sum()),
        "stock_no_updated": n // 10,
        "client_updated": n // 100,
        "auto_close_reset": n // 20,
        "auto_closed": n - half,
        "close_held": 0,
    }
    return paths


def run(ctx: Context) -> list[Figure]:
    paths = scenario(ctx)
    runs = interleaved(
        ctx,
        {
            "engine": ("reconcile:engine", paths),
            "polars": ("reconcile:polars_baseline", paths),
            "duckdb": ("duck:rules", paths),
        },
    )
    eng, duck = runs["engine"][0].info, runs["duckdb"][0].info
    expected = ctx.cache["reconcile_expected"]
    mismatch = {e: (eng[e], duck[e], expected[e]) for e in EVENTS if not eng[e] == duck[e] == expected[e]}
    if eng["state_rows"] != duck["state_rows"] or eng["active"] != duck["active"]:
        mismatch["state"] = (eng["state_rows"], eng["active"], duck["state_rows"], duck["active"])
    error = f"engine/duckdb/expected disagree: {mismatch}" if mismatch else ""
    label = (
        f"apply_feed: {ctx.rows:,} feed rows vs {ctx.rows:,} active SRs "
        f"({eng['created']:,} created, {eng['auto_closed']:,} closed, {eng['stock_no_updated']:,} stock changes)"
    )
    common = dict(
        value=median(runs["engine"]), unit="s", peak_mib=peak(runs["engine"]), info=eng, error=error
    )
    return [
        Figure(
            "reconcile.vs_polars",
            label,
            baseline=median(runs["polars"]),
            target="<= 3",
            baseline_label="polars read + anti-joins",
            baseline_peak_mib=peak(runs["polars"]),
            **common,
        ),
        Figure(
            "reconcile.vs_duckdb",
            "the same, vs the rules as DuckDB SQL (same outputs)",
            baseline=median(runs["duckdb"]),
            target="< 1",
            baseline_label="DuckDB SQL",
            baseline_peak_mib=peak(runs["duckdb"]),
            **common,
        ),
    ]
