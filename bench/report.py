"""The one table `python -m bench` prints, and its JSON twin in the output folder."""

from __future__ import annotations

import json
from pathlib import Path

from bench.measure import Figure

COLUMNS = ("figure", "value", "baseline", "ratio", "peak memory")


def _num(value: float, unit: str) -> str:
    if unit == "rows/s":
        return f"{value:,.0f} rows/s"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return f"{value:g} {unit}"


def _mib(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1024:.2f} GiB" if value >= 1024 else f"{value:.0f} MiB"


def cells(fig: Figure) -> tuple[str, str, str, str, str]:
    name = f"{fig.name}: {fig.label}"
    if fig.error:
        return name, f"ERROR: {fig.error}", "-", "-", "-"
    value = _num(fig.value, fig.unit) if fig.value is not None else "-"
    baseline = f"{_num(fig.baseline, fig.unit)} ({fig.baseline_label})" if fig.baseline else "-"
    ratio = f"{fig.ratio:.2f}x" if fig.ratio is not None else "-"
    if fig.ratio is not None and fig.target:
        ratio += f" (target {fig.target}x)"
    memory = _mib(fig.peak_mib)
    if fig.baseline_peak_mib is not None:
        memory += f" (baseline {_mib(fig.baseline_peak_mib)})"
    return name, value, baseline, ratio, memory


def table(figures: list[Figure]) -> str:
    rows = [COLUMNS, *(cells(f) for f in figures)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), sep, *(line(r) for r in rows[1:])])


def write_json(figures: list[Figure], path: Path, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "meta": meta,
        "figures": [
            {
                "name": f.name,
                "label": f.label,
                "value": f.value,
                "unit": f.unit,
                "baseline": f.baseline,
                "baseline_label": f.baseline_label,
                "ratio": f.ratio,
                "target": f.target,
                "peak_mib": f.peak_mib,
                "baseline_peak_mib": f.baseline_peak_mib,
                "error": f.error,
                "info": f.info,
            }
            for f in figures
        ],
    }
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
