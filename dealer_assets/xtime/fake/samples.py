"""Stages the Xtime samples for `make dev` relative to the day it runs, so the UI shows the same story on any day.

- Requests: `data/samples_xtime/*.jsonl` are dated for SAMPLE_DAY; they are copied into the drop zone moved by
  whole weeks (weekdays kept: the fake is closed on Sundays) so that each lies a week or more ahead. Once the
  intake has taken them in, they are never delivered again; until then, staging again dates them anew.
- Enrollment: the invitation timestamps of the sample dealerships in the settings file are rewritten relative to
  now, so that one dealership is awaiting confirmation, one overdue, one expired and the others confirmed. Only
  an invitation that still carries its sample code is touched; the rest of the file is kept byte for byte.

`python -m dealer_assets.xtime.fake.samples stage` reads the wall clock here, at the edge, and nowhere else.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

from dealer_assets.core.env import PROJECT_ROOT, STAGED_SETTINGS, DealerPaths
from dealer_assets.core.files import write_durably
from dealer_assets.core.settings_file import parse_document
from dealer_assets.xtime.intake import RequestPaths
from dealer_assets.xtime.settings import settings_from_document

SAMPLES = PROJECT_ROOT / "data" / "samples_xtime"
SAMPLE_DAY = date(2026, 11, 24)
"""The day the sample requests are dated for: each lies a week or more after it."""
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
MARKER = ".samples-staged"
HOURS = timedelta(hours=1)
SAMPLE_INVITATIONS: dict[str, tuple[str, int, int | None, int | None]] = {
    "d100": ("RVR100", 14 * 24, 13 * 24 - 2, 12 * 24 - 7),
    "d200": ("SMT200", 14 * 24, 14 * 24 - 4, 13 * 24 - 1),
    "d300": ("LKS300", 11 * 24, 10 * 24, 9 * 24 + 12),
    "ng1": ("NGT400", 26, 2, None),
    "d201": ("SMT201", 4 * 24, 3 * 24, None),
    "d101": ("RVR101", 9 * 24, None, None),
}
"""Per sample dealership: its code, and how many hours before staging it was issued, completed, confirmed:
d100, d200, d300 confirmed; ng1 completed 2 h ago (awaiting); d201 completed 3 days ago (overdue); d101 never
completed (expired)."""


def shift_for(today: date) -> timedelta:
    """Whole weeks that bring SAMPLE_DAY to `today` or the six days before it."""
    return timedelta(weeks=math.ceil((today - SAMPLE_DAY).days / 7))


def _shifted(line: str, shift: timedelta) -> str:
    request = json.loads(line)
    for key in ("earliest", "latest"):
        if request.get(key):
            request[key] = (datetime.strptime(request[key], LOCAL_FORMAT) + shift).strftime(LOCAL_FORMAT)
    return json.dumps(request)


def stage_requests(paths: RequestPaths, today: date, source_dir: Path = SAMPLES) -> list[str]:
    """Copies the sample requests, dated ahead of `today`, unless the intake has taken them in already."""
    marker = paths.incoming.parent / MARKER
    paths.incoming.mkdir(parents=True, exist_ok=True)
    staged = []
    for sample in sorted(source_dir.glob("*.jsonl")):
        target = paths.incoming / sample.name
        if marker.exists() and not target.exists():
            continue
        lines = [_shifted(line, shift_for(today)) for line in sample.read_text().splitlines() if line.strip()]
        tmp = target.with_name(f".{sample.name}.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(target)
        staged.append(sample.name)
    marker.touch()
    return staged


def _timestamp(now: datetime, hours: int | None) -> str:
    return "null" if hours is None else f"{now - hours * HOURS:%Y-%m-%dT%H:%M:%SZ}"


def _invitation_nodes(text: str) -> list[tuple[str, yaml.MappingNode]]:
    """The flow-style `invitation: {...}` nodes of the `xtime` dealerships, with the dealership of each."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    found = []
    for key, value in root.value if isinstance(root, yaml.MappingNode) else []:
        if key.value != "xtime" or not isinstance(value, yaml.MappingNode):
            continue
        dealerships = next((v for k, v in value.value if k.value == "dealerships"), None)
        for name, dealer in dealerships.value if isinstance(dealerships, yaml.MappingNode) else []:
            invitation = next((v for k, v in dealer.value if k.value == "invitation"), None)
            if isinstance(invitation, yaml.MappingNode) and invitation.flow_style:
                found.append((name.value, invitation))
    return found


def staged_invitations(text: str, now: datetime) -> str:
    """The settings text with each sample invitation dated relative to `now` (the hour it falls in)."""
    now = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    for name, node in reversed(_invitation_nodes(text)):
        if name not in SAMPLE_INVITATIONS:
            continue
        code, *hours = SAMPLE_INVITATIONS[name]
        if dict((k.value, v.value) for k, v in node.value).get("code") != code:
            continue
        issued, completed, confirmed = (_timestamp(now, h) for h in hours)
        indent = " " * (node.start_mark.column + 1)
        value = (
            f"{{code: {code}, issued_at: {issued}, completed_at: {completed},\n"
            f"{indent}confirmed_at: {confirmed}}}"
        )
        text = text[: node.start_mark.index] + value + text[node.end_mark.index :]
    return text


def stage_enrollments(settings_file: Path, staged: Path, now: datetime) -> None:
    """The settings with the sample invitations dated from `now`, written to `staged` (the tracked file is
    never rewritten), after checking the result still loads."""
    after = staged_invitations(settings_file.read_text(), now)
    settings_from_document(parse_document(after, staged), staged)
    write_durably(staged, after)


def stage(data_dir: Path, settings_file: Path, now: datetime) -> list[str]:
    """Stage under `data_dir`: the settings in effect for `make dev` (`STAGED_SETTINGS`, which the development
    environment then names) and the sample requests."""
    stage_enrollments(settings_file, data_dir / STAGED_SETTINGS, now)
    return stage_requests(RequestPaths(data_dir), now.astimezone(UTC).date())


def main(argv: list[str]) -> int:
    if argv not in ([], ["stage"]):
        print("usage: python -m dealer_assets.xtime.fake.samples [stage]", file=sys.stderr)
        return 2
    paths = DealerPaths.from_env()
    staged = stage(paths.data_dir, paths.data_dir / "config" / "dealer_feeds.yaml", datetime.now(UTC))
    print(f"staged {len(staged)} Xtime sample request file(s) and the sample enrollment dates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
