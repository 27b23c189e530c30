"""Baseline (b) of benchmark 3: the reconciliation rules of one feed (CONTRACT section 4, rules 2-8) as DuckDB
SQL over the same parquet files, producing the same outputs as `apply_feed` (new state sorted by sr_id,
events with JSON details in event order, skipped vehicles, coverage), fetched into polars frames."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from bench.measure import stopwatch
from bench.reconcile import AS_OF, EVENTS, FILE_NAME

SR_COLUMNS = (
    "sr_id, source, vin, dealer_id, client, stock_no, vehicle_type, service_request_type, status, "
    "created_at, updated_at, closed_at, close_reason, last_seen_at, auto_close_at, missing_since"
)
ISO = "'%Y-%m-%dT%H:%M:%SZ'"


def _mapping_frames(settings) -> dict[str, pl.DataFrame]:
    """The engine's own mapping frames, as the tables the SQL reads."""
    from dealer_assets.dms.domain.eligibility import mappings

    m = mappings(settings)
    return {
        "clients": m.clients,
        "types_dealer": m.types_for_dealer,
        "types_all": m.types_for_all,
        "include_dealers": pl.DataFrame(
            {"dealer_id": m.include_only_dealers}, schema={"dealer_id": pl.String}
        ),
    }


def script(settings, state: str, vehicles: str, source: str = "generic") -> str:
    from dealer_assets.dms.domain.eligibility import mappings

    t = f"TIMESTAMPTZ '{AS_OF.strftime('%Y-%m-%d %H:%M:%S')}+00'"
    close_mode = settings.auto_close.mode
    after = f"INTERVAL {settings.auto_close.days or 0} DAY"
    tracking = settings.track_stock_no_and_client
    window = f"{t} <= a.created_at + INTERVAL {tracking.days} DAY" if tracking.mode == "for_days" else "false"
    due = {"immediately": "missing", "after_days": f"missing AND {t} > auto_close_at"}.get(
        close_mode, "false"
    )
    guard = settings.auto_close_guard
    held = (
        f"dealer_active >= {guard.min_active} AND dealer_due > {guard.max_fraction} * dealer_active"
        if guard
        else "false"
    )
    include_all = "true" if mappings(settings).include_only_everywhere else "false"
    stamp = AS_OF.strftime("%Y%m%dT%H%M%SZ")
    covered = "SELECT dealer_id, count(*)::UINTEGER AS vehicles FROM feed GROUP BY dealer_id"
    if settings.coverage == "all_mapped_dealers":
        covered = (
            f"SELECT dealer_id, coalesce(c.vehicles, 0)::UINTEGER AS vehicles FROM ({covered}) c "
            "FULL JOIN (SELECT dealer_id FROM clients) m USING (dealer_id)"
        )
    return f"""
SET TimeZone = 'UTC';
CREATE TEMP TABLE feed AS SELECT dealer_id, vin, stock_no, system_code FROM read_parquet('{vehicles}');
CREATE TEMP TABLE prior AS SELECT * FROM read_parquet('{state}');
CREATE TEMP TABLE covered AS {covered};
CREATE TEMP TABLE rows AS
SELECT f.dealer_id, f.vin, f.stock_no, f.system_code, c.client, c.ignore_existing, c.ignore_days,
       coalesce(td.vehicle_type, ta.vehicle_type) AS vehicle_type,
       coalesce(td.type_sr_type, ta.type_sr_type, c.client_sr_type) AS service_request_type,
       CASE WHEN c.client IS NULL THEN 'unmapped_dealer'
            WHEN ({include_all} OR f.dealer_id IN (SELECT dealer_id FROM include_dealers))
                 AND td.type_sr_type IS NULL AND ta.type_sr_type IS NULL THEN 'excluded_by_include_only'
       END AS skip_reason
FROM feed f LEFT JOIN clients c ON c.dealer_id = f.dealer_id
LEFT JOIN types_dealer td ON td.system_code = f.system_code AND td.dealer_id = f.dealer_id
LEFT JOIN types_all ta ON ta.system_code = f.system_code;
CREATE TEMP TABLE active AS SELECT * FROM prior WHERE status = 'active';
CREATE TEMP TABLE candidates AS
SELECT r.*, coalesce(r.ignore_existing AND lc.latest <= {t}
                     AND lc.latest >= {t} - to_days(r.ignore_days::INTEGER), false) AS recent
FROM (SELECT * FROM rows WHERE skip_reason IS NULL) r ANTI JOIN active a ON a.vin = r.vin
LEFT JOIN (SELECT vin, max(created_at) AS latest FROM prior GROUP BY vin) lc ON lc.vin = r.vin;
CREATE TEMP TABLE created AS
SELECT '{source}-' || vin || '-{stamp}' AS sr_id, '{source}' AS source, vin, dealer_id, client,
       stock_no, vehicle_type, service_request_type, 'active' AS status, {t} AS created_at, {t} AS updated_at,
       NULL::TIMESTAMPTZ AS closed_at, NULL::VARCHAR AS close_reason, {t} AS last_seen_at,
       {f"{t} + {after}" if close_mode == "after_days" else "NULL::TIMESTAMPTZ"} AS auto_close_at,
       NULL::TIMESTAMPTZ AS missing_since
FROM candidates WHERE NOT recent;
CREATE TEMP TABLE skipped AS
SELECT vin, dealer_id, skip_reason AS reason FROM rows WHERE skip_reason IS NOT NULL
UNION ALL SELECT vin, dealer_id, 'recent_sr_exists' FROM candidates WHERE recent;
CREATE TEMP TABLE tracked AS
SELECT r.vin,
       CASE WHEN r.stock_no IS NOT NULL AND r.stock_no IS DISTINCT FROM a.stock_no THEN r.stock_no END AS new_stock,
       CASE WHEN r.dealer_id <> a.dealer_id THEN r.dealer_id END AS new_dealer,
       CASE WHEN r.dealer_id <> a.dealer_id THEN r.client END AS new_client
FROM rows r JOIN active a ON a.vin = r.vin WHERE r.skip_reason IS NULL AND {window};
CREATE TEMP TABLE judged AS
WITH seen_active AS (
  SELECT a.*, s.vin IS NOT NULL AS seen, tr.new_stock, tr.new_dealer, tr.new_client,
         ({str(close_mode == "after_days").lower()} AND s.vin IS NOT NULL AND a.missing_since IS NOT NULL) AS reset
  FROM active a LEFT JOIN tracked tr ON tr.vin = a.vin LEFT JOIN (SELECT DISTINCT vin FROM feed) s ON s.vin = a.vin
), updated AS (
  SELECT sr_id, source, vin, coalesce(new_dealer, dealer_id) AS dealer_id,
         CASE WHEN new_dealer IS NOT NULL THEN new_client ELSE client END AS client,
         coalesce(new_stock, stock_no) AS stock_no, vehicle_type, service_request_type, status, created_at,
         CASE WHEN new_stock IS NOT NULL OR new_dealer IS NOT NULL OR reset THEN {t} ELSE updated_at END AS updated_at,
         closed_at, close_reason, CASE WHEN seen THEN {t} ELSE last_seen_at END AS last_seen_at,
         CASE WHEN reset THEN {t} + {after} ELSE auto_close_at END AS auto_close_at,
         CASE WHEN seen THEN NULL ELSE missing_since END AS missing_since,
         seen, new_stock IS NOT NULL AS stock_changed, new_dealer IS NOT NULL AS dealer_changed, reset,
         stock_no AS old_stock, dealer_id AS old_dealer, client AS old_client, auto_close_at AS old_auto_close_at,
         false AS is_new
  FROM seen_active
  UNION ALL
  SELECT *, true, false, false, false, NULL, NULL, NULL, NULL, true FROM created
), marked AS (
  SELECT u.*, (cov.dealer_id IS NOT NULL AND NOT u.seen) AS missing
  FROM updated u LEFT JOIN covered cov ON cov.dealer_id = u.dealer_id
), due AS (
  SELECT * REPLACE (CASE WHEN missing THEN coalesce(missing_since, {t}) ELSE missing_since END AS missing_since),
         coalesce({due}, false) AS due
  FROM marked
), counted AS (
  SELECT *, count(*) OVER (PARTITION BY dealer_id) AS dealer_active,
         sum(due::INTEGER) OVER (PARTITION BY dealer_id) AS dealer_due
  FROM due
)
SELECT *, due AND {held} AS held, due AND NOT ({held}) AS close FROM counted;
"""


def _outputs_sql(settings, source: str = "generic") -> dict[str, str]:
    t = f"TIMESTAMPTZ '{AS_OF.strftime('%Y-%m-%d %H:%M:%S')}+00'"
    ident = f"'{source}' AS source, {t} AS feed_as_of, '{FILE_NAME}' AS feed_file"
    fraction = settings.auto_close_guard.max_fraction if settings.auto_close_guard else "NULL"
    order = " ".join(f"WHEN '{e}' THEN {i}" for i, e in enumerate(EVENTS))
    closed = (
        "CASE WHEN close THEN 'closed' ELSE status END AS status, created_at, "
        f"CASE WHEN close THEN {t} ELSE updated_at END AS updated_at, "
        f"CASE WHEN close THEN {t} ELSE closed_at END AS closed_at, "
        "CASE WHEN close THEN 'missing_from_feed' ELSE close_reason END AS close_reason, "
        "last_seen_at, auto_close_at, missing_since"
    )
    base = "sr_id, source, vin, dealer_id, client, stock_no, vehicle_type, service_request_type"
    return {
        "state": f"SELECT {SR_COLUMNS} FROM prior WHERE status = 'closed' "
        f"UNION ALL SELECT {base}, {closed} FROM judged ORDER BY sr_id",
        "events": f"""SELECT sr_id, '{source}' AS source, vin, event, {t} AS feed_as_of,
                 '{FILE_NAME}' AS feed_file, details FROM (
  SELECT sr_id, vin, 'created' AS event, json_object('dealer_id', dealer_id, 'client', client, 'stock_no', stock_no,
         'service_request_type', service_request_type, 'vehicle_type', vehicle_type)::VARCHAR AS details
  FROM judged WHERE is_new
  UNION ALL SELECT sr_id, vin, 'stock_no_updated', json_object('from', old_stock, 'to', stock_no)::VARCHAR
  FROM judged WHERE stock_changed
  UNION ALL SELECT sr_id, vin, 'client_updated', json_object('dealer_id', json_object('from', old_dealer, 'to',
         dealer_id), 'client', json_object('from', old_client, 'to', client))::VARCHAR FROM judged WHERE dealer_changed
  UNION ALL SELECT sr_id, vin, 'auto_close_reset', json_object('from', strftime(old_auto_close_at, {ISO}),
         'to', strftime(auto_close_at, {ISO}))::VARCHAR FROM judged WHERE reset
  UNION ALL SELECT sr_id, vin, 'auto_closed', json_object('reason', 'missing_from_feed', 'missing_since',
         strftime(missing_since, {ISO}), 'auto_close_at', strftime(auto_close_at, {ISO}))::VARCHAR FROM judged WHERE close
  UNION ALL SELECT sr_id, vin, 'close_held', json_object('dealer_id', dealer_id, 'active', dealer_active,
         'to_close', dealer_due, 'max_fraction', {fraction})::VARCHAR FROM judged WHERE held
) ORDER BY CASE event {order} END, sr_id""",
        "skipped": f"SELECT {ident}, vin, dealer_id, reason FROM skipped ORDER BY vin",
        "coverage": f"SELECT '{source}' AS source, {t} AS feed_as_of, dealer_id, vehicles FROM covered "
        "ORDER BY dealer_id",
    }


def rules(state: str, vehicles: str, settings: str) -> dict:
    import duckdb

    from dealer_assets.dms.settings import parse_settings

    source = parse_settings(Path(settings).read_text()).sources["generic"]
    sql = script(source, state, vehicles)
    result: dict = {}
    with stopwatch(result):
        con = duckdb.connect()
        con.execute("SET produce_arrow_string_view = true")  # polars' own string layout: no copy into polars
        for name, frame in _mapping_frames(source).items():
            con.register(f"{name}_src", frame)
            con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {name}_src")
        con.execute(sql)
        frames = {name: con.sql(query).pl() for name, query in _outputs_sql(source).items()}
    events = dict(frames["events"].group_by("event").len().iter_rows())
    result.update(
        {e: events.get(e, 0) for e in EVENTS},
        state_rows=frames["state"].height,
        active=int((frames["state"]["status"] == "active").sum()),
        skipped=frames["skipped"].height,
    )
    con.close()
    return result
