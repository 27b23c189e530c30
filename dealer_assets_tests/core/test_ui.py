"""What a data engineer sees: each partition's own figures read back from the instance, every table
the project writes as an asset of its step, the drop zone upstream, descriptions, freshness, a quiet load, and
the README's backfill command pasted from the project root."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import dagster as dg
import pytest

from dealer_assets.definitions import build_definitions
from dealer_assets.dms.asset_specs import DROP_ZONE_KEY, guard_decisions_key
from dealer_assets.dms.figures import NO_FEED
from dealer_assets_tests.support import PROJECT, DataRoot, at, range_tags, vin

BIN = Path(sys.executable).parent
WRITTEN_TABLES = {
    "raw_dms_feeds": {"feed_files", "quarantined_files"},
    "normalized_vehicles": {"rejected_rows"},
    "service_requests": {
        "service_request_events",
        "skipped_vehicles",
        "applied_feeds",
        "late_feeds",
        "close_guard",
        "dealer_coverage",
    },
}


def _observations(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> list[dict]:
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=10
    ).records
    return [{k: v.value for k, v in r.asset_observation.metadata.items()} for r in records]


def _observation_values(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> dict:
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return {k: v.value for k, v in records[0].asset_observation.metadata.items()}


@pytest.mark.slow
def test_each_partition_of_a_range_run_carries_its_own_figures(data_root: DataRoot, tmp_path: Path):
    """Two feeds on day 0, one on day 2, none in between; one range run."""
    data_root.drop_feed("generic", at(0), [("D1", vin(1), "S", "U"), ("D1", vin(2), "S", "U")])
    data_root.drop_feed(
        "generic", at(0).replace(minute=30), [("D1", vin(1), "S", "U"), ("D2", vin(3), "S", "U")]
    )
    data_root.drop_feed("generic", at(2), [("D1", vin(1), "S", "U"), ("D1", "BAD", "S", "U")])
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    defs = build_definitions(data_root.dealer_env())
    result = defs.resolve_job_def("dms_generic_feeds_job").execute_in_process(
        instance=instance, tags=range_tags("2026-11-01", "2026-11-03")
    )
    assert result.success
    raw, normalized, srs = (
        dg.AssetKey(["dms", "generic", n])
        for n in ("raw_dms_feeds", "normalized_vehicles", "service_requests")
    )

    (day0,) = _observations(instance, srs, "2026-11-01")
    assert day0["feeds"] == 2 and day0["created"] == 3 and day0["closed"] == 0 and day0["vehicles"] == 4
    assert day0["feed_files"] == "generic-20261101T120000Z.csv, generic-20261101T123000Z.csv"
    (day2,) = _observations(instance, srs, "2026-11-03")
    assert day2["feeds"] == 1 and day2["created"] == 0 and day2["vehicles"] == 1
    (empty,) = _observations(instance, srs, "2026-11-02")
    assert empty == {"feeds": 0, "note": NO_FEED}
    assert _observations(instance, raw, "2026-11-01")[0]["dagster/row_count"] == 4
    (norm2,) = _observations(instance, normalized, "2026-11-03")
    assert norm2["dagster/row_count"] == 1 and norm2["rejected_rows"] == 1
    for key in (raw, normalized, srs):
        assert len(instance.fetch_observations(key, limit=100).records) == 3
    # Each feed's own (hourly) figures, in the day's table.
    per_feed = [r.data for r in _observation_values(instance, srs, "2026-11-01")["per_feed"].records]
    assert [(f["feed_as_of"], f["feed_file"], f["created"]) for f in per_feed] == [
        ("2026-11-01T12:00:00Z", "generic-20261101T120000Z.csv", 2),
        ("2026-11-01T12:30:00Z", "generic-20261101T123000Z.csv", 1),
    ]

    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=srs, asset_partitions=["2026-11-02"]), limit=1
    ).records[0]
    metadata = latest.asset_materialization.metadata
    per_day = {"created", "feeds_applied", "dagster/row_count", "closed", "held", "active"}
    assert not per_day & set(metadata), "run totals never pose as a day's figures"
    assert metadata["run/created"].value == 3 and metadata["run/partitions"].value == 3
    dealers = [r.data for r in metadata["run/per_dealer"].value.records]
    assert [d["dealer_id"] for d in dealers] == ["D1", "D2"] and dealers[0]["active"] == 2
    assert {c.name for c in metadata["run/per_dealer"].value.schema.columns} >= {
        "dealer_id",
        "active",
        "created",
    }


def test_every_written_table_is_an_asset_of_its_step_with_schema_owner_kinds_and_description(
    data_root: DataRoot,
):
    defs = build_definitions(data_root.dealer_env())
    graph = defs.resolve_asset_graph()
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    for step, tables in WRITTEN_TABLES.items():
        main = dg.AssetKey(["dms", "generic", step])
        assets_def = graph.get(main).assets_def
        assert {k.path[-1] for k in assets_def.keys} == {step}
        for table in tables:
            key = dg.AssetKey(["dms", "generic", table])
            spec = specs[key]
            assert [d.asset_key for d in spec.deps] == [main], "in the lineage right below its step"
            assert spec.partitions_def is None and not graph.get(key).is_materializable
            assert spec.metadata["dagster/table_name"] == table
            assert spec.metadata["dagster/column_schema"].columns
            assert spec.owners == ["team:dealer-data"] and spec.kinds and spec.description
    service_requests = specs[dg.AssetKey(["dms", "generic", "service_requests"])]
    assert service_requests.metadata["dagster/table_name"] == "service_requests"
    assert service_requests.freshness_policy is not None
    for step in ("raw_dms_feeds", "normalized_vehicles", "service_requests"):
        description = specs[dg.AssetKey(["dms", "generic", step])].description
        assert "**Materialize**" in description and "**Backfill**" in description
        assert "CONTRACT" not in description
    assert (
        "replays from the start of the first selected day to the newest feed" in service_requests.description
    )
    drop_zone = specs[DROP_ZONE_KEY]
    assert not graph.get(DROP_ZONE_KEY).is_materializable, "the drop zone is external"
    assert DROP_ZONE_KEY in {
        d.asset_key for d in specs[dg.AssetKey(["dms", "generic", "raw_dms_feeds"])].deps
    }
    assert drop_zone.metadata["path"].path == str(data_root.paths.incoming)
    assert guard_decisions_key("generic") in {d.asset_key for d in service_requests.deps}
    assert specs[guard_decisions_key("generic")].metadata["dagster/table_name"] == "guard_decisions"


def test_definitions_load_without_warnings_from_our_own_code(data_root: DataRoot):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_definitions(data_root.dealer_env())
        defs.resolve_job_def("dms_generic_feeds_job")
        defs.resolve_asset_graph()
    ours = [w for w in caught if "dealer_assets" in w.filename]
    assert ours == [], [f"{w.filename}:{w.lineno}: {w.message}" for w in ours]


@pytest.mark.e2e
def test_readme_backfill_command_works_from_the_project_root_and_shows_in_the_instance(
    data_root: DataRoot, tmp_path: Path
):
    readme = (PROJECT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "dg launch" in line)
    assert command.startswith("DAGSTER_HOME=$PWD/.dagster_home .venv/bin/dg launch --assets '")
    data_root.drop_feed("generic", at(0), [("D1", vin(1), "S", "U")])
    data_root.drop_feed("generic", at(0, 13), [("D1", vin(1), "S", "U"), ("D1", vin(2), "S", "U")])
    selection = command.split("--assets ")[1].split(" ")[0].strip("'")
    home = tmp_path / "home"
    home.mkdir()
    out = subprocess.run(
        [
            str(BIN / "dg"),
            "launch",
            "--assets",
            selection,
            "--partition-range",
            "2026-11-01...2026-11-01",
        ],
        cwd=PROJECT,
        env={**os.environ, **data_root.env(), "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "Warning" not in out.stderr
    instance = dg.DagsterInstance.from_config(str(home))
    (run,) = instance.get_run_records()
    assert run.dagster_run.is_success
    srs = dg.AssetKey(["dms", "generic", "service_requests"])
    assert instance.get_materialized_partitions(srs) == {"2026-11-01"}
    assert _observations(instance, srs, "2026-11-01")[0]["created"] == 2
