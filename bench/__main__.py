"""`python -m bench [--rows N] [--only NAME]... [--quick] [--repeat K] [--hours H] [--profile]`."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from bench import BENCHMARKS, FIGURES
from bench.measure import ROOT, BenchError, Context, Figure
from bench.report import table, write_json

QUICK = {"rows": 3_000, "repeat": 1, "hours": 6, "dealers": 5, "per_dealer": 12}


def _runner(name: str):
    from bench import backfill, end_to_end, parse, reconcile, steady, warehouse

    return {
        "synthetic": parse.run_synthetic,
        "parse": parse.run,
        "reconcile": reconcile.run,
        "warehouse": warehouse.run,
        "end_to_end": end_to_end.run,
        "backfill": backfill.run,
        "steady": steady.run,
    }[name]


def _machine() -> dict:
    model = (
        next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, help="rows of the big feed / SR state (default 1,000,000)")
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, help="run only this benchmark (repeatable)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="everything at a tiny size, one run each (seconds)"
    )
    parser.add_argument("--repeat", type=int, help="runs per figure, median taken (default 3)")
    parser.add_argument("--hours", type=int, help="hourly feeds in the backfill (default 720)")
    parser.add_argument("--dealers", type=int, help="dealers in the backfill (default 100)")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the backfill run into OUT/backfill.prof(.txt)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "out", help="output folder (default bench/out)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = dict(QUICK) if args.quick else {}
    for key in ("rows", "repeat", "hours", "dealers"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    ctx = Context(
        out=args.out.resolve(),
        profile=args.profile,
        pg_url=os.environ.get("DEALER_BENCH_POSTGRES_URL") or Context.pg_url,
        **sizes,
    )
    ctx.out.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    started = time.perf_counter()
    for name in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            figures += _runner(name)(ctx)
        except Exception as exc:
            detail = str(exc) if isinstance(exc, BenchError) else traceback.format_exc(limit=3)
            figures += [Figure(f, "", None, "", error=detail.strip().splitlines()[-1]) for f in FIGURES[name]]
            print(detail, file=sys.stderr)
        print(f"[bench] {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    meta = {
        **_machine(),
        "rows": ctx.rows,
        "repeat": ctx.repeat,
        "hours": ctx.hours,
        "dealers": ctx.dealers,
        "argv": sys.argv[1:] if argv is None else argv,
        "total_s": round(time.perf_counter() - started, 1),
    }
    print(table(figures))
    print(
        f"machine: {meta['cores']} cores, {meta['cpu']}; rows={ctx.rows:,}, repeat={ctx.repeat}, "
        f"total {meta['total_s']} s; details in {ctx.out / 'results.json'}"
    )
    write_json(figures, ctx.out / "results.json", meta)
    return 1 if any(f.error for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
