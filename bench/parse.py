"""Benchmarks 1 and 2: generate a big `generic` feed; parse + normalize it vs a bare `polars.read_csv`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.measure import Context, Figure, interleaved, median, peak, run_child, stopwatch

AS_OF = datetime(2026, 10, 15, 12, tzinfo=UTC)
SEED = 20261015


# --- measured steps (run in bench.child) -------------------------------------------------------------------


def generate(path: str, rows: int) -> dict:
    from bench import synthetic

    result: dict = {}
    with stopwatch(result):
        rng = np.random.default_rng(SEED)
        dealers = np.array(synthetic.dealer_ids(max(4, rows // 1000)))
        frame = synthetic.vehicles(np.arange(rows), dealers[rng.integers(0, len(dealers), rows)], AS_OF, SEED)
        feed = synthetic.as_feed(frame, dirt=1.0, seed=SEED)
        synthetic.write_feed(feed, Path(path), malformed=max(1, rows // 100_000))
    result.update(rows=feed.height, bytes=Path(path).stat().st_size)
    return result


def pipeline(path: str) -> dict:
    import time

    from dealer_assets.dms.domain.parsing import parse_feed
    from dealer_assets.dms.domain.vehicles import FeedRef, normalize_feed
    from dealer_assets.dms.settings import GENERIC_LAYOUT

    result: dict = {}
    with stopwatch(result):
        parsed = parse_feed(Path(path), GENERIC_LAYOUT)
        parsed_at = time.perf_counter()
        normalized = normalize_feed(parsed.rows, GENERIC_LAYOUT, FeedRef("generic", AS_OF, Path(path).name))
        normalize_s = time.perf_counter() - parsed_at
    result.update(parse_s=result["seconds"] - normalize_s, normalize_s=normalize_s)
    result.update(
        rows=parsed.rows.height,
        malformed=parsed.malformed.height,
        vehicles=normalized.vehicles.height,
        rejected=normalized.rejected.height,
    )
    return result


def bare_read(path: str) -> dict:
    import polars as pl

    result: dict = {}
    with stopwatch(result):
        # every column as text, as the pipeline takes it; the feed ends with a few malformed rows
        frame = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True)
    result.update(rows=frame.height)
    return result


# --- orchestration (parent) --------------------------------------------------------------------------------


def feed_path(ctx: Context) -> Path:
    return ctx.dir("parse") / f"generic-{AS_OF.strftime('%Y%m%dT%H%M%SZ')}.csv"


def ensure_feed(ctx: Context) -> Path:
    path = feed_path(ctx)
    if "feed" not in ctx.cache:
        run_child("parse:generate", {"path": str(path), "rows": ctx.rows})
        ctx.cache["feed"] = path
    return path


def run_synthetic(ctx: Context) -> list[Figure]:
    path = feed_path(ctx)
    runs = [run_child("parse:generate", {"path": str(path), "rows": ctx.rows}) for _ in range(ctx.repeat)]
    ctx.cache["feed"] = path
    info = runs[0].info
    return [
        Figure(
            "synthetic.generate",
            f"generate + write a {ctx.rows:,}-row generic feed "
            f"({info['bytes'] / 2**20:.0f} MiB, valid VIN check digits, 1% dirt)",
            median(runs),
            "s",
            peak_mib=peak(runs),
            info=info,
        )
    ]


def run(ctx: Context) -> list[Figure]:
    path = ensure_feed(ctx)
    runs = interleaved(
        ctx,
        {
            "pipeline": ("parse:pipeline", {"path": str(path)}),
            "bare": ("parse:bare_read", {"path": str(path)}),
        },
    )
    info = runs["pipeline"][0].info
    return [
        Figure(
            "parse.vs_read_csv",
            f"parse_feed + normalize_feed, {info['rows']:,} rows "
            f"({info['vehicles']:,} vehicles, {info['rejected'] + info['malformed']:,} rejected)",
            median(runs["pipeline"]),
            "s",
            baseline=median(runs["bare"]),
            baseline_label="polars.read_csv, all text",
            target="<= 2",
            peak_mib=peak(runs["pipeline"]),
            baseline_peak_mib=peak(runs["bare"]),
            info=info,
        )
    ]
