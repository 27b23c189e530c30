from __future__ import annotations

from pathlib import Path

import pytest

from dealer_assets.core.errors import ConfigError
from dealer_assets.protractor.settings import DEFAULT_BASE_URL, load_protractor_settings, stage_key

BASE = """
sources: {{}}
protractor:
  locations:
    north:
      name: North Shop
      time_zone: {zone}
      connection_id_env: PROTRACTOR_NORTH_CONNECTION_ID
      api_key_env: PROTRACTOR_NORTH_API_KEY
      status_map: {{Scheduled Work: Scheduled, Work_In_Progress: WIP}}
      user_map: {{"Dana Smith": dana.smith}}
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "dealer_feeds.yaml"
    path.write_text(text)
    return path, load_protractor_settings(path)


def test_defaults_and_merged_status_map(tmp_path: Path) -> None:
    _, settings = _load(tmp_path, BASE.format(zone="America/Chicago"))
    assert settings.base_url == DEFAULT_BASE_URL
    assert settings.resync_every_hours == 2
    north = settings.locations["north"]
    assert north.write_back is False
    mapping = north.effective_status_map()
    assert mapping[stage_key("ScheduledWork")] == "Scheduled"
    assert mapping[stage_key("work in progress")] == "WIP"
    assert mapping[stage_key("InspectionCompleted")] == "Estimating"
    assert mapping[stage_key("Estimate Complete")] == "Customer Review"
    assert mapping[stage_key("unassigned")] == "Checked In"


def test_absent_key_is_none(tmp_path: Path) -> None:
    assert _load(tmp_path, "sources: {}\n")[1] is None


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (("America/Chicago", "Mars/Olympus"), "protractor.locations.north.time_zone", "IANA"),
        (
            ("Scheduled Work: Scheduled", "Scheduled Work: Sched"),
            "protractor.locations.north.status_map.Scheduled Work",
            "our statuses",
        ),
        (("    north:", "    North-1:"), "protractor.locations", "[a-z0-9_]+"),
        (
            ("api_key_env: PROTRACTOR_NORTH_API_KEY", "api_key_env: B5D2E8F1-3A6C"),
            "protractor.locations.north.api_key_env",
            "pattern",
        ),
        (("      name: North Shop\n", ""), "protractor.locations.north.name", "required"),
        (("  locations:", "  colour: red\n  locations:"), "protractor.colour", "unknown key"),
        (
            ("Work_In_Progress: WIP", "Work_In_Progress: WIP, work in progress: QC"),
            "protractor.locations.north.status_map",
            "same name",
        ),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, edit: tuple[str, str], key: str, words: str) -> None:
    text = BASE.format(zone="America/Chicago").replace(*edit)
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    message = str(err.value)
    assert f"dealer_feeds.yaml: {key}" in message
    assert words in message


def test_write_back_must_be_boolean(tmp_path: Path) -> None:
    text = BASE.format(zone="UTC") + "      write_back: yes please\n"
    with pytest.raises(ConfigError, match=r"protractor\.locations\.north\.write_back"):
        _load(tmp_path, text)
