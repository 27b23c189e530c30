"""What-if (CONTRACT section 10): other settings replayed from the archive and compared with the service
requests now, each kind of change, `--from` and `--source`, a broken file, a catch-up meanwhile, the UI job,
and nothing changed by any of it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dealer_assets import cli
from dealer_assets.core.warehouse import engine_for, exclusive_lock
from dealer_assets.definitions import build_definitions
from dealer_assets.dms import cli as dms_cli
from dealer_assets.dms import settings_preview
from dealer_assets.dms.domain.what_if import diff_service_requests
from dealer_assets_tests.support import BASIC_SETTINGS, DataRoot, at, make_root, snapshot, use_root, vin

OTHER = """
  other:
    layout: generic
    track_stock_no_and_client: {mode: never}
    auto_close: {mode: immediately}
    client_dealer_mappings:
      - {client: Client One, dealer_id: D1, service_request_type: Recon}
"""


def _history(root: DataRoot, tmp_path: Path, settings: str = BASIC_SETTINGS) -> dg.DagsterInstance:
    """Four days of feeds: D1's vin 2 leaves on day 2; D3 (unmapped) has vin 9 throughout; D4 (unmapped)
    appears on day 3 only."""
    root.settings(settings)
    for day in range(4):
        rows = [("D1", vin(1), f"S{min(day, 1)}", "U"), ("D2", vin(3), "X", "U"), ("D3", vin(9), "Z", "U")]
        if day < 2:
            rows.append(("D1", vin(2), "S", "U"))
        if day == 3:
            rows.append(("D4", vin(11), "N", "U"))
        root.drop_feed("generic", at(day), rows)
        if "other:" in settings:
            root.drop_feed("other", at(day, 13), [("D1", vin(20 + min(day, 1)), "O", "U")])
    (tmp_path / "home").mkdir(exist_ok=True)
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    assert dms_cli.catch_up(root.dealer_env(), instance)
    return instance


def _on_disk(root: DataRoot) -> dict[str, tuple[int, int]]:
    """Every file under the archive, the checkpoints and the parquet, with its size and mtime."""
    data = root.paths.data_dir
    return {
        str(p.relative_to(data)): (p.stat().st_size, p.stat().st_mtime_ns)
        for folder in ("archive", "state", "raw", "normalized", "quarantine")
        for p in (data / folder).rglob("*")
        if p.is_file()
    }


def _what_if(root: DataRoot, monkeypatch, capsys, settings: str, *args: str) -> tuple[int, str, Path]:
    use_root(root, monkeypatch)
    file = root.root / "try.yaml"
    file.write_text(settings)
    out = root.root / f"what_if_{len(list(root.root.glob('what_if_*')))}"
    capsys.readouterr()
    code = cli.main(["what-if", "--settings", str(file), "--out", str(out), *args])
    return code, capsys.readouterr().out, out


def _diff(out: Path) -> pl.DataFrame:
    return pl.read_csv(out / "service_requests_diff.csv", infer_schema=False)


@pytest.mark.slow
def test_the_settings_in_effect_change_nothing_and_nothing_is_written(
    data_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    instance = _history(data_root, tmp_path)
    before = (snapshot(data_root.paths.warehouse_url), _on_disk(data_root), len(instance.get_runs()))
    code, printed, out = _what_if(data_root, monkeypatch, capsys, BASIC_SETTINGS)
    assert code == 0
    assert _diff(out).height == 0
    assert printed.splitlines()[0].startswith("total: active 3 now, 3 under try.yaml; would_create 0")
    would_be = pl.read_csv(out / "service_requests.csv", infer_schema=False)
    now = pl.read_csv(_export(data_root), infer_schema=False)
    assert would_be.equals(now), "exactly the table a replay under the same settings leaves"
    assert (snapshot(data_root.paths.warehouse_url), _on_disk(data_root), len(instance.get_runs())) == before


def _export(root: DataRoot) -> Path:
    """The warehouse's `service_requests` as what-if writes its CSV."""
    from dealer_assets.dms.ledger import contract_rows

    with engine_for(root.paths.warehouse_url).connect() as conn:
        rows = contract_rows(conn).sort("source", "sr_id")
    path = root.root / "now.csv"
    path.write_text(settings_preview._csv(rows))
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    ("edit", "change", "vin_no", "fields"),
    [
        (
            ("{mode: after_days, days: 3}", "{mode: immediately}"),
            "would_close",
            2,
            "status;closed_at;auto_close_at",
        ),
        (
            ("{client: Client Two, dealer_id: D2, service_request_type: Recon}", ""),
            "would_not_exist",
            3,
            None,
        ),
        (
            ("{client: Client Two, dealer_id: D2,", "{client: Client Two, dealer_id: D3,"),
            "would_create",
            9,
            None,
        ),
        (("{client: Client Two,", "{client: Client 2,"), "would_change", 3, "client"),
    ],
)
def test_each_kind_of_change(
    data_root: DataRoot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    edit: tuple[str, str],
    change: str,
    vin_no: int,
    fields: str | None,
):
    _history(data_root, tmp_path)
    assert edit[0] in BASIC_SETTINGS
    settings = BASIC_SETTINGS.replace(edit[0], edit[1])
    if not edit[1]:
        settings = "\n".join(line for line in settings.splitlines() if line.strip() != "-")
    code, printed, out = _what_if(data_root, monkeypatch, capsys, settings)
    assert code == 0, printed
    rows = {r["vin"]: r for r in _diff(out).iter_rows(named=True)}
    assert rows[vin(vin_no)]["change"] == change
    if fields:
        assert rows[vin(vin_no)]["fields"] == fields
    if change == "would_create":
        assert rows[vin(vin_no)]["now"] in (None, "") and json.loads(rows[vin(vin_no)]["would_be"])["client"]
    if change == "would_not_exist":
        assert rows[vin(vin_no)]["would_be"] in (None, "") and json.loads(rows[vin(vin_no)]["now"])["status"]
    assert f"{change} 1" in printed.splitlines()[-2]


@pytest.mark.slow
def test_would_be_active_when_closed_now(
    data_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    immediately = BASIC_SETTINGS.replace("{mode: after_days, days: 3}", "{mode: immediately}")
    _history(data_root, tmp_path, immediately)
    code, printed, out = _what_if(data_root, monkeypatch, capsys, BASIC_SETTINGS)
    assert code == 0
    [row] = _diff(out).filter(pl.col("vin") == vin(2)).iter_rows(named=True)
    assert row["change"] == "would_be_active" and "status" in row["fields"].split(";")
    assert json.loads(row["now"])["status"] == "closed" and json.loads(row["would_be"])["status"] == "active"


@pytest.mark.slow
def test_from_a_checkpoint_equals_the_whole_history_when_nothing_before_differs(
    data_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    """A client mapping for D4, which first delivers on day 3: from day 2 (the state before it from the
    checkpoints) the result is the same as over the whole history."""
    _history(data_root, tmp_path)
    settings = BASIC_SETTINGS.replace(
        "      - {client: Client Two, dealer_id: D2, service_request_type: Recon}",
        "      - {client: Client Two, dealer_id: D2, service_request_type: Recon}\n"
        "      - {client: Client Four, dealer_id: D4, service_request_type: Recon}",
    )
    _, _, whole = _what_if(data_root, monkeypatch, capsys, settings)
    _, _, later = _what_if(data_root, monkeypatch, capsys, settings, "--from", "2026-11-03T00:00:00Z")
    for name in ("service_requests.csv", "service_requests_diff.csv"):
        assert (whole / name).read_text() == (later / name).read_text()
    [row] = _diff(whole).iter_rows(named=True)
    assert (row["vin"], row["change"]) == (vin(11), "would_create")


@pytest.mark.slow
def test_sources_are_selected(
    data_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    settings = BASIC_SETTINGS + OTHER
    _history(data_root, tmp_path, settings)
    changed = settings.replace("{mode: immediately}", "{mode: never}").replace(
        "{mode: after_days, days: 3}", "{mode: immediately}"
    )
    _, _, both = _what_if(data_root, monkeypatch, capsys, changed)
    assert set(_diff(both)["source"]) == {"generic", "other"}
    _, printed, one = _what_if(data_root, monkeypatch, capsys, changed, "--source", "other")
    assert set(_diff(one)["source"]) == {"other"}
    assert set(pl.read_csv(one / "service_requests.csv", infer_schema=False)["source"]) == {"other"}
    assert all(line.startswith(("other ", "total:")) for line in printed.splitlines()[:-1])


@pytest.mark.slow
def test_a_broken_settings_file_exits_2_naming_file_and_key(
    data_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    _history(data_root, tmp_path)
    broken = BASIC_SETTINGS.replace("days: 3}", "dayz: 3}", 1)
    use_root(data_root, monkeypatch)
    file = data_root.root / "broken.yaml"
    file.write_text(broken)
    before = snapshot(data_root.paths.warehouse_url)
    assert cli.main(["what-if", "--settings", str(file), "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err
    assert str(file) in message and "sources.generic.track_stock_no_and_client.dayz: unknown key" in message
    assert not (tmp_path / "out").exists() and snapshot(data_root.paths.warehouse_url) == before


@pytest.mark.slow
def test_a_catch_up_meanwhile_is_not_held_up_and_the_preview_says_it_is_stale(
    data_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    """The preview holds no reconciliation lock (it runs while one is held), and a feed applied while it
    works leaves the warehouse as the catch-up alone would and the output saying the comparison is stale."""
    instance = _history(data_root, tmp_path)
    engine = engine_for(data_root.paths.warehouse_url)
    with exclusive_lock(engine, data_root.paths.locks, "dms-generic"):
        code, _, _ = _what_if(data_root, monkeypatch, capsys, BASIC_SETTINGS)
    assert code == 0, "a what-if never waits for a running catch-up"

    data_root.drop_feed("generic", at(5), [("D1", vin(1), "S1", "U")])
    real = settings_preview.replay_streamed

    def while_a_catch_up_lands(*args, **kwargs):
        assert dms_cli.catch_up(data_root.dealer_env(), instance)
        return real(*args, **kwargs)

    monkeypatch.setattr(settings_preview, "replay_streamed", while_a_catch_up_lands)
    code, printed, _ = _what_if(data_root, monkeypatch, capsys, BASIC_SETTINGS)
    assert code == 0
    assert "generic: feeds were applied while this ran; the comparison may be stale" in printed
    reference = make_root(tmp_path / "reference")
    _history(reference, tmp_path / "reference")
    reference.drop_feed("generic", at(5), [("D1", vin(1), "S1", "U")])
    assert dms_cli.catch_up(reference.dealer_env(), dg.DagsterInstance.ephemeral())
    assert snapshot(data_root.paths.warehouse_url) == snapshot(reference.paths.warehouse_url)


@pytest.mark.slow
def test_the_ui_job_shows_the_summary_and_materializes_nothing(data_root: DataRoot, tmp_path: Path):
    instance = _history(data_root, tmp_path)
    file = data_root.root / "try.yaml"
    file.write_text(BASIC_SETTINGS.replace("{mode: after_days, days: 3}", "{mode: immediately}"))
    before = (snapshot(data_root.paths.warehouse_url), _on_disk(data_root))
    job = build_definitions(data_root.dealer_env()).resolve_job_def("dms_what_if_job")
    result = job.execute_in_process(
        instance=instance, run_config={"ops": {"what_if": {"config": {"settings_file": str(file)}}}}
    )
    assert result.success
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.event_specific_data.metadata
    assert "| generic | D1 |" in metadata["summary"].value and "would_close" in metadata["diff"].value
    assert metadata["changes"].value == 3, "vin 2 would close; vins 1 and 3 lose their auto-close date"
    kinds = {e.dagster_event.event_type_value for e in instance.all_logs(result.run_id) if e.dagster_event}
    assert "ASSET_MATERIALIZATION" not in kinds and "ASSET_OBSERVATION" not in kinds
    folder = data_root.paths.data_dir / "what_if" / result.run_id
    assert (folder / "service_requests_diff.csv").exists()
    assert (snapshot(data_root.paths.warehouse_url), _on_disk(data_root)) == before


def test_diff_of_frames_directly():
    now = pl.DataFrame(
        {
            "source": ["g", "g"],
            "vin": ["A", "A"],
            "dealer_id": ["D1", "D1"],
            "status": ["closed", "active"],
            "created_at": pl.Series(["2026-11-01T00:00:00", "2026-11-05T00:00:00"]).str.to_datetime(
                time_zone="UTC"
            ),
        }
    )
    for column in ("client", "stock_no", "vehicle_type", "service_request_type"):
        now = now.with_columns(pl.lit("x").alias(column))
    for column in ("closed_at", "auto_close_at"):
        now = now.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias(column))
    would_be = now.head(1)
    [row] = diff_service_requests(now, would_be).iter_rows(named=True)
    assert row["change"] == "would_close" and row["fields"] == "status;created_at"
    assert os.linesep not in row["now"]
