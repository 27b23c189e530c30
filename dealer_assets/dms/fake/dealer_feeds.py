"""Sample feeds for a newcomer: three days of two DMS integrations that exercise every rule of CONTRACT
section 4, plus a few deliveries that must be quarantined.

`python -m dealer_assets.dms.fake.dealer_feeds generate` rewrites `data/samples/` (deterministic, committed);
`python -m dealer_assets.dms.fake.dealer_feeds stage` copies them into the drop zone unless they were delivered before;
`... stage-late --after SECONDS` delivers, that long after, one more feed that renumbers a vehicle on a North
Protractor work order, so that `make dev` shows write-back keeping a package current.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from dealer_assets.core.env import PROJECT_ROOT, SAMPLES_MARKER, DealerPaths
from dealer_assets.core.files import write_durably
from dealer_assets.core.vin import with_check_digit
from dealer_assets.dms.archive import FeedArchive
from dealer_assets.dms.domain.feed_names import parse_feed_name
from dealer_assets.dms.settings import GENERIC_HEADERS

SAMPLES = PROJECT_ROOT / "data" / "samples"
START = datetime(2026, 11, 16, 0, tzinfo=UTC)
MAKES = [
    ("FORD", "F-150", "XLT"),
    ("TOYOTA", "RAV4", "XLE"),
    ("HONDA", "CIVIC", "EX"),
    ("CHEVROLET", "TAHOE", "LT"),
    ("SUBARU", "OUTBACK", "Premium"),
    ("NISSAN", "ROGUE", "SV"),
    ("JEEP", "WRANGLER", 'Sport 17" wheels'),
]
WMI = ["1FT", "2T1", "1HG", "1GN", "4S4", "5N1", "1C4"]
GENERIC_HEADER = list(GENERIC_HEADERS)


def _vin(rng: random.Random, n: int) -> str:
    body = f"{rng.choice(WMI)}{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{rng.randint(10, 99)}{rng.randint(0, 9)}{rng.choice('ABCEFHJ')}"
    return with_check_digit(f"{body[:8]}0N{rng.choice('ABCDEFG')}{n:06d}")


def _csv_row(values: list[str]) -> str:
    return ",".join('"' + v.replace('"', '""') + '"' if ("," in v or '"' in v) else v for v in values)


def generate(out: Path = SAMPLES) -> list[Path]:
    rng = random.Random(20261116)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):
        old.unlink()
    inventory: dict[str, dict[str, list[str]]] = {
        d: {} for d in ("D100", "D101", "D200", "D300", "D555", "D900")
    }
    counter = 0

    def add(dealer: str, system: str = "U") -> str:
        nonlocal counter
        counter += 1
        vin = _vin(rng, counter)
        make, model, trim = rng.choice(MAKES)
        inventory[dealer][vin] = [
            dealer,
            vin,
            f"S{counter:05d}",
            system,
            str(rng.randint(2015, 2026)),
            make,
            model,
            trim,
            str(rng.randint(5, 90_000)),
            (START - timedelta(days=rng.randint(1, 60))).strftime("%Y-%m-%d"),
        ]
        return vin

    for dealer, count in (("D100", 10), ("D101", 4), ("D200", 12), ("D300", 6), ("D555", 3), ("D900", 4)):
        for i in range(count):
            add(
                dealer,
                "N" if dealer == "D100" and i % 4 == 0 else ("W" if dealer == "D300" and i < 2 else "U"),
            )
    d100 = list(inventory["D100"])
    d200 = list(inventory["D200"])
    d900 = list(inventory["D900"])
    away: dict[str, list[str]] = {}
    files = []
    for step in range(18):  # every 4 hours for 3 days
        as_of = START + timedelta(hours=4 * step)
        if step == 2:
            inventory["D100"][d100[1]][2] = "S-RENUMBERED"  # rule 5: new stock number within for_days
        if step == 3:
            row = inventory["D100"].pop(d100[2])
            row[0] = "D101"
            inventory["D101"][d100[2]] = row  # rule 5: moved to another dealer
        if step == 5:
            away[d100[3]] = inventory["D100"].pop(d100[3])  # rule 7: missing, comes back at step 7
        if step == 7:
            inventory["D100"][d100[3]] = away.pop(d100[3])
        if step in (4, 9, 13):
            for dealer in ("D100", "D200", "D300"):
                add(dealer)  # rule 4: arrivals
        if step == 6:
            for vin in d100[5:7]:
                inventory["D100"].pop(vin)  # rule 6: sold, closes after 1 day
        if step == 8:
            away[d900[0]] = inventory["D900"].pop(d900[0])  # wholesale unit leaves ...
        if step == 15:
            inventory["D900"][d900[0]] = away.pop(d900[0])  # ... and returns: rule 4 recent_sr_exists
        if step == 16:
            inventory["D100"][d100[7]][2] = "S-LATE-CHANGE"  # rule 5: too late to track
        rows = [list(r) for dealer in inventory.values() for r in dealer.values()]
        if step == 11:
            rows = [r for r in rows if r[0] != "D200"]  # rule 2: D200 not covered, untouched
        if step == 14:
            keep = set(d200[:2])  # rule 8: a broken export, the guard holds
            rows = [r for r in rows if r[0] != "D200" or r[1] in keep]
        lines = [_csv_row(GENERIC_HEADER)] + [_csv_row(r) for r in rows]
        if step == 0:
            lines += [
                _csv_row(
                    [
                        "D100",
                        "1ftfw1e5-0nfa 99901",
                        "S99901",
                        "U",
                        "2021",
                        "FORD",
                        "F-150",
                        "XL",
                        "100",
                        "2026-11-01",
                    ]
                ),
                _csv_row(
                    ["D100", "NOT-A-VIN", "S99902", "U", "2021", "FORD", "F-150", "XL", "100", "2026-11-01"]
                ),
                _csv_row(["", with_check_digit("1HGCM8260NA099903"), "S99903", "U", "", "", "", "", "", ""]),
                _csv_row(["D200", d100[0], "S-DUP", "U", "", "", "", "", "", ""]),
                _csv_row(
                    ["D200", "1HGCM82633A004353", "S99904", "U", "2003", "HONDA", "ACCORD", "EX", "1", ""]
                ),
                "D200,1FTFW1E51NFA09905,S99905,U,2021,FORD,F-150,XL,100,2026-11-01,UNEXPECTED",
            ]
        path = out / f"generic-{as_of.strftime('%Y%m%dT%H%M%SZ')}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(path)
    ng_stock = {}
    for i in range(8):
        counter += 1
        ng_stock[_vin(rng, counter)] = (f"NG{i % 2 + 1}", f"B{i:03d}")
    ng_vins = list(ng_stock)
    for step in range(12):  # every 6 hours
        as_of = START + timedelta(hours=6 * step, minutes=30)
        listed = [
            v for i, v in enumerate(ng_vins) if not (step >= 4 and i == 0) and not (step >= 8 and i == 1)
        ]
        if step == 6:
            listed = [
                v for v in listed if ng_stock[v][0] != "NG2"
            ]  # NG2 absent: all_mapped_dealers closes its SRs
        lines = ["Store|Vehicle VIN|Stock #|Make|Model|Yr"]
        lines += [f"{ng_stock[v][0]}|{v}|{ng_stock[v][1]}|Citroën|C5 Aircross|2022" for v in listed]
        path = out / f"northgate-{as_of.strftime('%Y%m%dT%H%M%SZ')}.txt"
        path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
        files.append(path)
    (out / "generic_20261116.csv").write_text(",".join(GENERIC_HEADER) + "\n")
    (out / "legacy-20261116T120000Z.csv").write_text(",".join(GENERIC_HEADER) + "\n")
    (out / "generic-20261117T020000Z.csv").write_bytes(
        (",".join(GENERIC_HEADER) + "\nD100,1FTFW1E51NFA00001,S\xe9,U,,,,,,\n").encode("latin-1")
    )
    return files


def _shift(paths: DealerPaths, source_dir: Path, today: date) -> timedelta:
    """Whole days that move the samples' newest as-of to the day before `today`, chosen at the first staging
    and kept in the data root (with the first day, the start of history), so every later staging agrees."""
    marker = paths.data_dir / SAMPLES_MARKER
    if marker.is_file():
        return timedelta(days=json.loads(marker.read_text())["shift_days"])
    as_ofs = [n.as_of for n in map(parse_feed_name, (p.name for p in source_dir.glob("*"))) if n is not None]
    shift = timedelta(days=(today - timedelta(days=1) - max(as_ofs).date()).days)
    first = datetime.combine((min(as_ofs) + shift).date(), time(), UTC)
    write_durably(
        marker, json.dumps({"shift_days": shift.days, "history_start": first.strftime("%Y-%m-%dT%H:%M:%SZ")})
    )
    return shift


def _shifted_name(name: str, shift: timedelta) -> str:
    named = parse_feed_name(name)
    if named is None:
        return name
    stamp = named.as_of.strftime("%Y%m%dT%H%M%SZ")
    return name.replace(stamp, (named.as_of + shift).strftime("%Y%m%dT%H%M%SZ"), 1)


def stage(paths: DealerPaths, today: date, source_dir: Path = SAMPLES) -> list[str]:
    """Copy the samples into the drop zone as if delivered over the days just before `today` (their as-of
    times shifted by whole days), skipping any already archived or quarantined."""
    store = FeedArchive(paths)
    paths.incoming.mkdir(parents=True, exist_ok=True)
    shift = _shift(paths, source_dir, today)
    staged = []
    for sample in sorted(source_dir.glob("*")):
        name = _shifted_name(sample.name, shift)
        named = parse_feed_name(name)
        if named is not None and store.archived(named) is not None:
            continue
        if paths.quarantine.exists() and any(paths.quarantine.glob(f"{name}.*")):
            continue
        target = paths.incoming / name
        if not target.exists():
            tmp = paths.incoming / f".{name}.tmp"
            shutil.copyfile(sample, tmp)
            tmp.rename(target)
            staged.append(name)
    return staged


LATE_RENUMBERED = "S00047"
"""The stock number of a D200 arrival of the samples' last day, whose VIN is on a work order of the North
Protractor location (write_back: true): the late feed renumbers it within its 2 days of tracking."""
LATE_AFTER = timedelta(hours=4)


def late_feed(source_dir: Path = SAMPLES) -> tuple[str, str]:
    """The newest generic sample again, 4 hours later, with one vehicle renumbered (rule 5)."""
    newest = max(source_dir.glob("generic-*T*Z.csv"), key=lambda p: p.name)
    text = newest.read_text(encoding="utf-8").replace(f",{LATE_RENUMBERED},", f",{LATE_RENUMBERED}-R,")
    return _shifted_name(newest.name, LATE_AFTER), text


def stage_late(paths: DealerPaths, today: date, source_dir: Path = SAMPLES) -> str | None:
    """Deliver the late feed (shifted like the samples), unless it was delivered before."""
    name, text = late_feed(source_dir)
    name = _shifted_name(name, _shift(paths, source_dir, today))
    named = parse_feed_name(name)
    if FeedArchive(paths).archived(named) is not None or (paths.incoming / name).exists():
        return None
    write_durably(paths.incoming / name, text)
    return name


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m dealer_assets.dms.fake.dealer_feeds")
    parser.add_argument("command", nargs="?", default="stage", choices=["generate", "stage", "stage-late"])
    parser.add_argument("--after", type=float, default=0.0, help="stage-late: seconds to wait first")
    args = parser.parse_args(argv)
    if args.command == "generate":
        print(f"wrote {len(generate())} sample feeds to {SAMPLES}")
    elif args.command == "stage":
        staged = stage(DealerPaths.from_env(), datetime.now(UTC).date())
        print(f"staged {len(staged)} sample file(s) into the drop zone")
    else:
        clock.sleep(args.after)
        late = stage_late(DealerPaths.from_env(), datetime.now(UTC).date())
        print(
            f"delivered the late sample feed {late}" if late else "the late sample feed was delivered before"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
