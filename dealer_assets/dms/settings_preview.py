"""What-if (CONTRACT section 10): what other settings would do to every service request, computed by the
engine that reconciles (a replay under those settings, from the archive) and compared with the warehouse,
changing nothing: no warehouse row, archive or checkpoint file, or Dagster event.

It takes no reconciliation lock: it reads the ledger, decisions and service requests of a source in one
transaction, and says so when a catch-up applied feeds while it worked (the comparison is then stale).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dealer_assets.core.env import DealerPaths
from dealer_assets.core.errors import ConfigError
from dealer_assets.core.files import write_durably
from dealer_assets.core.timeutil import iso_z
from dealer_assets.core.warehouse import read_frame
from dealer_assets.dms import guard
from dealer_assets.dms.apply_feeds import replay_streamed
from dealer_assets.dms.archive import FeedArchive
from dealer_assets.dms.checkpoints import ledger_digest
from dealer_assets.dms.domain.state import CONTRACT_SR_COLUMNS, SR_SCHEMA
from dealer_assets.dms.domain.what_if import CHANGES, DIFF_SCHEMA, diff_service_requests, summarize
from dealer_assets.dms.ledger import contract_rows, read_applied
from dealer_assets.dms.settings import DealerSettings, load_settings

TRIP_SCHEMA = {
    "source": pl.String,
    "dealer_id": pl.String,
    "feed_as_of": SR_SCHEMA["created_at"],
    "active": pl.Int64,
    "to_close": pl.Int64,
}


@dataclass
class Preview:
    settings_file: Path
    service_requests: list[pl.DataFrame] = field(default_factory=list)
    now: list[pl.DataFrame] = field(default_factory=list)
    trips: list[pl.DataFrame] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    """Sources whose applied feeds changed while the preview worked."""

    def would_be(self) -> pl.DataFrame:
        return _stack(self.service_requests, {c: SR_SCHEMA[c] for c in CONTRACT_SR_COLUMNS})

    def current(self) -> pl.DataFrame:
        return _stack(self.now, {c: SR_SCHEMA[c] for c in CONTRACT_SR_COLUMNS})

    def diff(self) -> pl.DataFrame:
        return diff_service_requests(self.current(), self.would_be())

    def undecided_trips(self) -> pl.DataFrame:
        return _stack(self.trips, TRIP_SCHEMA)


def _stack(frames: list[pl.DataFrame], schema: dict) -> pl.DataFrame:
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


def preview(
    paths: DealerPaths,
    settings_file: Path,
    engine: Engine,
    sources: list[str] | None = None,
    from_as_of: datetime | None = None,
) -> Preview:
    """Every selected source replayed under `settings_file` from `from_as_of` (default: all history);
    a settings error in the file raises ConfigError naming the file and the key."""
    settings = load_settings(settings_file)
    store = FeedArchive(paths)
    chosen = sources or [s for s in sorted(settings.sources) if store.archived_feeds(s)]
    unknown = [s for s in chosen if s not in settings.sources]
    if unknown:
        raise ConfigError(f"{settings_file}: sources: {', '.join(unknown)} not configured")
    result = Preview(settings_file)
    for source in chosen:
        _preview_source(paths, settings, engine, source, from_as_of, result)
    return result


def _preview_source(
    paths: DealerPaths,
    settings: DealerSettings,
    engine: Engine,
    source: str,
    from_as_of: datetime | None,
    result: Preview,
) -> None:
    archived = FeedArchive(paths).archived_feeds(source)
    cutoff = from_as_of or (archived[0].feed.as_of if archived else paths.history_start)
    cutoff = max(cutoff, paths.history_start)
    with engine.connect() as conn, conn.begin():
        applied = read_applied(conn, source)
        released = guard.released(conn, source)
        decided = _decided(conn, source)
        result.now.append(contract_rows(conn, source))
    source_settings = settings.sources[source]
    outcome = replay_streamed(paths, source, source_settings, engine, applied, released, cutoff)
    result.service_requests.append(outcome.state.select(CONTRACT_SR_COLUMNS))
    trips = outcome.guard.filter(pl.col("held")).join(decided, on=["feed_as_of", "dealer_id"], how="anti")
    result.trips.append(trips.select(list(TRIP_SCHEMA)).cast(TRIP_SCHEMA))
    with engine.connect() as conn:
        if ledger_digest(read_applied(conn, source)) != ledger_digest(applied):
            result.stale.append(source)


def _decided(conn: sa.Connection, source: str) -> pl.DataFrame:
    return read_frame(
        conn,
        "SELECT feed_as_of, dealer_id FROM guard_decisions WHERE source = :s",
        {"feed_as_of": SR_SCHEMA["created_at"], "dealer_id": pl.String},
        {"s": source},
    )


def write_preview(result: Preview, out: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`service_requests.csv` and `service_requests_diff.csv` in `out` (each written whole or not at all);
    returns the diff and the per-dealer summary."""
    out.mkdir(parents=True, exist_ok=True)
    would_be = result.would_be().sort("source", "sr_id")
    diff = result.diff()
    write_durably(out / "service_requests.csv", _csv(would_be))
    write_durably(out / "service_requests_diff.csv", _csv(diff.cast(DIFF_SCHEMA)))
    return diff, summarize(result.current(), result.would_be(), diff)


def _csv(frame: pl.DataFrame) -> str:
    """ISO 8601 UTC timestamps, NULL as an empty field."""
    return frame.with_columns(pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(null_value="")


def summary_lines(result: Preview, diff: pl.DataFrame, summary: pl.DataFrame) -> list[str]:
    """One line per (source, dealer) with a difference, the guard trips nobody decided, then a total line."""
    lines = [
        f"{r['source']} {r['dealer_id']}: active {r['active_now']} now, {r['active_would_be']} under "
        f"{result.settings_file.name}; " + ", ".join(f"{c} {r[c]}" for c in CHANGES if r[c])
        for r in summary.iter_rows(named=True)
    ]
    for trip in result.undecided_trips().iter_rows(named=True):
        lines.append(
            f"{trip['source']}: would trip the guard at dealer {trip['dealer_id']} on feed "
            f"{iso_z(trip['feed_as_of'])}: {trip['to_close']} of {trip['active']} would close"
        )
    current, would_be = result.current(), result.would_be()
    counts = {c: int((diff["change"] == c).sum()) for c in CHANGES}
    lines.append(
        f"total: active {int((current['status'] == 'active').sum())} now, "
        f"{int((would_be['status'] == 'active').sum())} under {result.settings_file.name}; "
        + ", ".join(f"{c} {n}" for c, n in counts.items())
    )
    lines += [
        f"{source}: feeds were applied while this ran; the comparison may be stale (run it again)"
        for source in result.stale
    ]
    return lines
