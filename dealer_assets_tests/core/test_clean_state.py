"""What running creates under the data root is what `make clean-state` removes and what git ignores.

Every area's writers run against a temporary data root as `make dev` runs them (the samples staged, a
catch-up and a what-if, a Protractor callback journaled and loaded, Xtime requests taken in); then every path
they created must be one that the Makefile's `clean-state` removes and that `.gitignore` ignores, and every path
`clean-state` names must be one of them.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from dealer_assets import cli
from dealer_assets.core.env import PROJECT_ROOT
from dealer_assets.core.warehouse import engine_for
from dealer_assets.dms import cli as dms_cli
from dealer_assets.dms.fake.dealer_feeds import stage as stage_feeds
from dealer_assets.protractor import sync
from dealer_assets.protractor.journal import Journal, journal_dir
from dealer_assets.xtime.fake.samples import stage as stage_xtime
from dealer_assets.xtime.intake import RequestPaths, ingest_files
from dealer_assets.xtime.settings import load_xtime_settings
from dealer_assets_tests.support import DataRoot, make_root, use_root

pytestmark = pytest.mark.slow

TRACKED = {"config", "feeds", "samples", "samples_xtime"}
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


def clean_state_paths() -> list[str]:
    """What the Makefile's `clean-state` removes under `data/`: the `rm` arguments and the drop zone's files."""
    recipe = re.search(r"^clean-state:\n((?:\t.*\n)+)", (PROJECT_ROOT / "Makefile").read_text(), re.M)
    assert recipe, "the Makefile has a clean-state target"
    paths = [a.removeprefix("data/") for a in recipe.group(1).split() if a.startswith("data/")]
    return [p + "*" if p == "feeds/incoming" else p for p in paths]


def git_ignores(data_dir: Path, relative: str) -> bool:
    """Whether the project's .gitignore ignores `data/<relative>` (a folder as a folder)."""
    path = f"data/{relative}" + ("/" if (data_dir / relative).is_dir() else "")
    probe = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=PROJECT_ROOT, check=False)
    return probe.returncode == 0


def created(data_dir: Path) -> set[str]:
    """What running made: top-level entries beside the tracked ones, and files in the drop zone."""
    made = {p.name for p in data_dir.iterdir() if p.name not in TRACKED}
    incoming = data_dir / "feeds" / "incoming"
    return made | {f"feeds/incoming/{p.name}" for p in incoming.iterdir() if p.name != ".gitkeep"}


def run_every_area(root: DataRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = root.paths.data_dir
    settings = PROJECT_ROOT / "data" / "config" / "dealer_feeds.yaml"
    shutil.copyfile(settings, root.paths.settings_file)
    stage_feeds(root.paths, date(2026, 12, 3))
    stage_xtime(data_dir, root.paths.settings_file, NOW)
    use_root(root, monkeypatch)
    dms_cli.catch_up(root.dealer_env(), dg.DagsterInstance.ephemeral())
    what_if = ["what-if", "--settings", str(root.paths.settings_file), "--source", "generic"]
    assert cli.main(what_if) in (0, 3)
    engine = engine_for(root.paths.warehouse_url)
    ingest_files(engine, load_xtime_settings(root.paths.settings_file), RequestPaths(data_dir), NOW)

    async def journal_one() -> None:
        journal = Journal(journal_dir(data_dir))
        await journal.start()
        record = {"location_id": "north", "type": "WorkOrder", "object_id": "x", "operation": "Update"}
        await journal.append({**record, "event_id": "e1", "received_at": NOW.isoformat()}, NOW)
        await journal.stop()

    asyncio.run(journal_one())
    with sync.lock(engine, data_dir):
        sync.load_journal(engine, data_dir)
    (data_dir / "feeds" / "incoming" / "waiting-20261203T000000Z.csv").write_text(
        "a delivery not taken yet\n"
    )


def test_what_running_creates_is_what_clean_state_removes_and_git_ignores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_root(tmp_path)
    run_every_area(root, monkeypatch)
    made = created(root.paths.data_dir)
    removed = clean_state_paths()
    assert {"archive", "raw", "normalized", "state", "warehouse.db", "what_if", "protractor"} <= made
    assert "appointments" in made and any(m.startswith("feeds/incoming/") for m in made)
    not_removed = sorted(m for m in made if not any(fnmatch.fnmatch(m, p) for p in removed))
    assert not not_removed, f"created but not removed by make clean-state: {not_removed}"
    not_ignored = sorted(m for m in made if not git_ignores(root.paths.data_dir, m))
    assert not not_ignored, f"created but not ignored by git: {not_ignored}"
    never_made = sorted(p for p in removed if not any(fnmatch.fnmatch(m, p) for m in made))
    assert not never_made, f"clean-state removes what nothing creates: {never_made}"
