"""`python -m bench.protractor [--callbacks N] [--work-orders N]`: Protractor figures, measured in one run.

1. The callback receiver (auth, validation, fsync'd journal) against a bare Starlette app answering the same
   GET with 200, each in its own uvicorn process on loopback, driven by the same async httpx client at the
   same concurrency: callbacks per second and p99 latency.
2. Snapshot building for N work orders (read with the explicit schema, flatten, map, version against an empty
   history) against a bare `polars.read_ndjson` of the same JSONL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
CONN, KEY = "7C3E5F2A-91B4-4D6E-A0C8-2F1B9E4D7A63", "B5D2E8F1-3A6C-4E9B-8D7F-1C4A2E6B9F05"
SERVER = f"""
import sys, uvicorn
from pathlib import Path
kind, port, root = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
if kind == "receiver":
    from dealer_assets.protractor.receiver import Credential, create_app
    app = create_app([Credential("north", "{CONN}", "{KEY}")], root, rate_per_second=1e6, burst=10**7)
else:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    async def events(request):
        return JSONResponse({{"status": "stored"}})
    app = Starlette(routes=[Route("/integrations/protractor/events", events, methods=["GET", "POST"])])
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(kind: str, root: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SERVER, kind, str(port), str(root)], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/", timeout=0.2)
            return proc, url + "/integrations/protractor/events"
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{kind} did not start")


async def _drive(url: str, n: int, concurrency: int) -> tuple[float, float, int]:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams (httpx itself would be the bottleneck)."""
    parsed = httpx.URL(url)
    latencies: list[float] = []
    ok = 0
    queue = list(range(n))

    async def connection() -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        try:
            while queue:
                i = queue.pop()
                query = httpx.QueryParams(
                    {
                        "connectionId": CONN,
                        "apiKey": KEY,
                        "type": "WorkOrder",
                        "id": str(uuid.UUID(int=i + 1)),
                        "operation": "Update",
                    }
                )
                request = f"GET {parsed.path}?{query} HTTP/1.1\r\nHost: {parsed.host}\r\n\r\n".encode()
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(h.split(b":")[1])
                    for h in head.lower().split(b"\r\n")
                    if h.startswith(b"content-length")
                )
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                ok += head.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return n / elapsed, latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, ok


def receiver_figures(n: int, concurrency: int, rounds: int = 3) -> dict:
    """Both servers up at once, measured in alternation (bare, receiver, bare, ...); the median round of each."""
    results: dict[str, list[tuple[float, float, int]]] = {"bare": [], "receiver": []}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {kind: _serve(kind, Path(tmp) / kind) for kind in results}
        try:
            for _, url in servers.values():
                asyncio.run(_drive(url, min(500, n), concurrency))  # warm-up
            for _ in range(rounds):
                for kind, (_, url) in servers.items():
                    results[kind].append(asyncio.run(_drive(url, n, concurrency)))
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(10)
        lines = sum(1 for p in (Path(tmp) / "receiver").rglob("*.jsonl") for _ in p.open("rb"))
    out: dict = {}
    for kind, runs in results.items():
        rate, p99, ok = sorted(runs)[len(runs) // 2]
        out[kind] = {
            "callbacks_per_s": round(rate),
            "p99_ms": round(p99, 1),
            "ok": ok,
            "rounds_per_s": [round(r[0]) for r in runs],
        }
    out["journal_lines"] = lines
    out["ratio"] = round(out["receiver"]["callbacks_per_s"] / out["bare"]["callbacks_per_s"], 2)
    return out


def work_orders_jsonl(n: int, seed: int = 11) -> bytes:
    rng = random.Random(seed)
    stages = ["Scheduled Work", "Work In Progress", "InspectionCompleted", "Completed", "Waiting On Sublet"]
    rows = []
    for i in range(n):
        day, minute = 1 + i % 28, i % 1440
        lines = [
            {
                "ID": str(uuid.UUID(int=(i << 8) + j)),
                "Type": "Labor" if j == 0 else "Part",
                "Description": f"Line {j}",
                "Quantity": 1 + j,
                "Price": 50.0 + j,
                "Total": (1 + j) * (50.0 + j),
                "PartNumber": None if j == 0 else f"P-{j}",
                "Completed": False,
                "Technician": "Chris Olsen",
            }
            for j in range(rng.randint(1, 4))
        ]
        rows.append(
            {
                "ID": str(uuid.UUID(int=i + 1)),
                "WorkOrderNumber": 10_000 + i,
                "Type": "WorkOrder",
                "WorkflowStage": rng.choice(stages),
                "Completed": False,
                "ServiceItem": {
                    "ID": str(uuid.UUID(int=i + 7)),
                    "VIN": f"1FTFW1E50NFA{i % 100000:05d}",
                    "Year": 2022,
                },
                "Contact": {"FirstName": "A", "LastName": "B"},
                "Header": {
                    "CreationTime": f"2026-11-{day:02d}T{minute // 60:02d}:{minute % 60:02d}:00",
                    "LastModifiedTime": f"2026-11-{day:02d}T{minute // 60:02d}:{minute % 60:02d}:30",
                    "ServiceAdvisor": "Dana Smith",
                },
                "Summary": {"GrandTotal": 100.0},
                "ServicePackages": {
                    "ItemCollection": [
                        {
                            "ID": str(uuid.UUID(int=(i << 8) + 200)),
                            "ServicePackageHeader": {"Title": "Recon", "Description": ""},
                            "ServicePackageLines": {"ItemCollection": lines},
                        }
                    ]
                },
                "observed_at": "2026-11-30T00:00:00+00:00",
            }
        )
    return b"".join((json.dumps(r) + "\n").encode() for r in rows)


def snapshot_figures(n: int, repeat: int) -> dict:
    from dealer_assets.protractor.domain.versions import (
        DELETE_SCHEMA,
        LINE_SCHEMA,
        SNAPSHOT_SCHEMA,
        next_versions,
    )
    from dealer_assets.protractor.domain.workorders import apply_mappings, flatten, read_documents
    from dealer_assets.protractor.settings import DEFAULT_STATUS_MAP, stage_key

    data = work_orders_jsonl(n)
    status_map = {stage_key(k): v for k, v in DEFAULT_STATUS_MAP.items()}

    def bare() -> int:
        return pl.read_ndjson(data).height

    def first_versions() -> tuple[dict, pl.DataFrame, pl.DataFrame]:
        """Every work order of the JSONL versioned against nothing stored yet."""
        snaps, lines = flatten(read_documents(data), "north", "America/Chicago")
        empty = [pl.DataFrame(schema=s) for s in (SNAPSHOT_SCHEMA, DELETE_SCHEMA, LINE_SCHEMA)]
        return next_versions(empty[0], snaps, empty[1], empty[2], lines), snaps, lines

    def build() -> int:
        out, _, _ = first_versions()
        return apply_mappings(out["snapshots"], status_map, {}).height

    def rebuild() -> int:
        first, snaps, lines = first_versions()
        started = time.perf_counter()
        again = next_versions(
            first["snapshots"], snaps, pl.DataFrame(schema=DELETE_SCHEMA), first["lines"], lines
        )
        assert again["snapshots"].is_empty()
        return time.perf_counter() - started

    def median(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]

    assert bare() == n and build() == n
    return {
        "work_orders": n,
        "jsonl_mb": round(len(data) / 1e6, 1),
        "bare_read_s": round(median(bare), 3),
        "snapshot_build_s": round(median(build), 3),
        "unchanged_refetch_versioning_s": round(sorted(rebuild() for _ in range(repeat))[repeat // 2], 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.protractor", description=__doc__)
    parser.add_argument("--callbacks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--work-orders", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "protractor.json")
    args = parser.parse_args(argv)
    figures = {
        "load_average_before": os.getloadavg()[0],
        "receiver": receiver_figures(args.callbacks, args.concurrency),
        "snapshots": snapshot_figures(args.work_orders, args.repeat),
        "cores": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
