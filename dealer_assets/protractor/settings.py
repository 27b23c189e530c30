"""The `protractor:` key of the settings file (CONTRACT section 7) as strict, frozen models.

Errors name the file and the dotted key (`protractor.locations.north.time_zone: ...`); nothing runs under an
invalid file. Keys are never in the file: only the names of the environment variables that hold them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from dealer_assets.core.errors import ConfigError
from dealer_assets.core.settings_file import read_document, validate_section

DEFAULT_BASE_URL = "https://integration.protractor.com/IntegrationServices/2.0"
OUR_STATUSES = (
    "Scheduled",
    "Created",
    "Checked In",
    "Inspecting",
    "Estimating",
    "Customer Review",
    "Approved",
    "Parts Hold",
    "WIP",
    "QC",
    "Complete",
    "Closed",
)
OurStatus = Literal[OUR_STATUSES]  # type: ignore[valid-type]
DEFAULT_STATUS_MAP: dict[str, str] = {
    "Scheduled Work": "Scheduled",
    "Unassigned": "Checked In",
    "Inspection In Progress": "Inspecting",
    "Inspection Complete": "Estimating",
    "InspectionCompleted": "Estimating",
    "Estimate Complete": "Customer Review",
    "EstimateCompleted": "Customer Review",
}
LOCATION_ID = re.compile(r"^[a-z0-9_]+$")
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def stage_key(stage: str) -> str:
    """Stages match ignoring case, spaces and underscores: `ScheduledWork` = `Scheduled Work`."""
    return re.sub(r"[\s_]+", "", stage).lower()


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. America/Chicago)") from exc
    return value


Text = Annotated[StrictStr, Field(min_length=1)]
EnvName = Annotated[StrictStr, Field(pattern=ENV_NAME)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocationSettings(_Strict):
    """One Protractor location: its keys come from the environment variables named here."""

    name: Text
    time_zone: Annotated[StrictStr, AfterValidator(_zone)]
    connection_id_env: EnvName
    api_key_env: EnvName
    status_map: dict[Text, OurStatus] = Field(default_factory=dict)
    user_map: dict[Text, Text] = Field(default_factory=dict)
    write_back: StrictBool = False

    @field_validator("status_map", "user_map")
    @classmethod
    def _unique_keys(cls, value: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for key in value:
            norm = stage_key(key) if isinstance(key, str) else key
            if norm in seen:
                raise ValueError(
                    f"{seen[norm]!r} and {key!r} are the same name (case, spaces and _ are ignored)"
                )
            seen[norm] = key
        return value

    def effective_status_map(self) -> dict[str, str]:
        """Normalized stage -> our status: the known defaults with this location's map merged over them."""
        merged = {stage_key(k): v for k, v in DEFAULT_STATUS_MAP.items()}
        merged.update({stage_key(k): v for k, v in self.status_map.items()})
        return merged

    def effective_user_map(self) -> dict[str, str]:
        """Normalized Protractor user name -> our user."""
        return {stage_key(k): v for k, v in self.user_map.items()}


class ProtractorSettings(_Strict):
    base_url: Annotated[StrictStr, Field(pattern=r"^https?://\S+$")] = DEFAULT_BASE_URL
    resync_every_hours: Annotated[StrictInt, Field(ge=1, le=24 * 7)] = 2
    batch_minutes: Annotated[StrictInt, Field(ge=1, le=60)] = 5
    """Notifications are processed in batches, at most one run this often: the latency a change can wait."""
    locations: dict[str, LocationSettings]

    @field_validator("locations")
    @classmethod
    def _ids(cls, value: dict[str, LocationSettings]) -> dict[str, LocationSettings]:
        for location_id in value:
            if not LOCATION_ID.match(location_id):
                raise ValueError(f"location id {location_id!r} must be [a-z0-9_]+")
        if not value:
            raise ValueError("at least one location is required")
        return value


def _reword(err: dict, loc: list[str]) -> tuple[list[str], str | None]:
    loc = [p for p in loc if not p.startswith("literal[")]
    if err["type"] == "literal_error":
        return loc, f"{err['input']!r} is not one of our statuses: {', '.join(OUR_STATUSES)}"
    return loc, None


def validate_protractor(document: dict, path: Path | str = "<settings>") -> ProtractorSettings | None:
    """The validated `protractor:` key of a parsed settings document; None when the key is absent."""
    return validate_section(ProtractorSettings, document, "protractor", path, reword=_reword)


def required_protractor(document: dict, path: Path | str) -> ProtractorSettings:
    """The validated `protractor:` key, for a command or a run that needs it: its absence is a ConfigError."""
    settings = validate_protractor(document, path)
    if settings is None:
        raise ConfigError(f"invalid settings:\n  {path}: protractor: the key is absent (no locations)")
    return settings


def load_protractor_settings(path: Path | str) -> ProtractorSettings | None:
    return validate_protractor(read_document(path), path)
