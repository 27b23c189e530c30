"""At the command line: configuration errors end in exit 2 naming the file or variable, without a
traceback; commands started together on a fresh DAGSTER_HOME leave what one leaves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dealer_assets_tests.support import DataRoot, at, make_root, run_command, snapshot, vin

DEALER_ASSETS = str(Path(sys.executable).parent / "dealer-assets")


def cli(root: DataRoot, home: Path, extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **root.env(), "DAGSTER_HOME": str(home), **(extra or {})}
    return run_command(["catch-up"], env, root.root)


def _not_readable(path: Path) -> tuple[str, str]:
    """A settings path that cannot be read, and the words the error uses for it."""
    if os.geteuid() != 0:
        path.write_text("sources: {}\n")
        path.chmod(0)
        return str(path), "permission denied"
    path.write_text("sources: {}\n")
    return str(path / "dealer_feeds.yaml"), "cannot be read"


@pytest.mark.e2e
@pytest.mark.parametrize(
    "case", ["duplicate_key", "not_utf8", "directory", "unreadable", "url_unparseable", "url_unknown_driver"]
)
def test_configuration_errors_exit_2_naming_file_or_variable(tmp_path: Path, case: str) -> None:
    root = make_root(tmp_path)
    settings = root.paths.settings_file
    extra: dict[str, str] = {}
    if case == "duplicate_key":
        settings.write_text(settings.read_text() + "  generic:\n    layout: generic\n")
        words = [str(settings), "generic", "given twice", "lines 3 and"]
    elif case == "not_utf8":
        settings.write_bytes(b"sources:\n  caf\xe9: {}\n")
        words = [str(settings), "not UTF-8"]
    elif case == "directory":
        extra["DEALER_SETTINGS_FILE"] = str(tmp_path)
        words = [str(tmp_path), "directory"]
    elif case == "unreadable":
        target, reason = _not_readable(tmp_path / "unreadable.yaml")
        extra["DEALER_SETTINGS_FILE"] = target
        words = [target, reason]
    elif case == "url_unparseable":
        extra["DEALER_WAREHOUSE_URL"] = "not a url at all"
        words = ["DEALER_WAREHOUSE_URL"]
    else:
        extra["DEALER_WAREHOUSE_URL"] = "nosuchdb+driver://user:secret@host/db"
        words = ["DEALER_WAREHOUSE_URL"]
    out = cli(root, tmp_path / "home", extra)
    assert out.returncode == 2, out.stdout + out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    for word in words:
        assert word in out.stderr, (word, out.stderr)
    assert "secret" not in out.stderr + out.stdout


@pytest.mark.e2e
def test_an_unreachable_warehouse_is_one_line_naming_the_url_without_its_password(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://postgres:secret@127.0.0.1:{port}/warehouse"
    out = cli(root, tmp_path / "home", {"DEALER_WAREHOUSE_URL": url})
    assert out.returncode == 1, out.stdout + out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    (line,) = out.stderr.strip().splitlines()
    assert f"postgres:***@127.0.0.1:{port}/warehouse" in line and "refused" in line.lower(), line
    assert "DEALER_WAREHOUSE_URL" in line
    assert "secret" not in out.stderr + out.stdout


@pytest.mark.e2e
def test_three_catch_ups_on_a_fresh_dagster_home_leave_what_one_leaves(tmp_path: Path) -> None:
    def feeds(root: DataRoot) -> None:  # an hour apart: each run's range (and its Dagster events) stays small
        for d in range(3):
            root.drop_feed(
                "generic", at(0, 12 + d), [("D1", vin(1), f"S{d}", "U"), ("D2", vin(d + 2), "S", "U")]
            )

    calm = make_root(tmp_path / "calm")
    feeds(calm)
    assert cli(calm, tmp_path / "calm_home").returncode == 0

    busy = make_root(tmp_path / "busy")
    feeds(busy)
    home = tmp_path / "busy_home"
    env = {**os.environ, **busy.env(), "DAGSTER_HOME": str(home)}
    home.mkdir()
    procs = [
        subprocess.Popen(
            [DEALER_ASSETS, "catch-up"],
            env=env,
            cwd=busy.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1].decode()[-3000:] for o in outs]
    assert snapshot(busy.paths.warehouse_url) == snapshot(calm.paths.warehouse_url)
    again = cli(busy, home)
    assert again.returncode == 0 and "generic: nothing pending" in again.stdout, again.stderr[-3000:]


@pytest.mark.e2e
def test_catch_up_waits_for_a_young_file_to_settle(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    root.drop_feed("generic", at(1), [("D1", vin(1), "S1", "U")])
    started = time.monotonic()
    out = cli(root, tmp_path / "home", {"DEALER_SETTLE_SECONDS": "15"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "waiting up to 45 s for files still being written" in out.stdout
    assert "created 1" in out.stdout and list(root.incoming.iterdir()) == []
    assert time.monotonic() - started >= 15
