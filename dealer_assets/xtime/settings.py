"""The `xtime:` key of the settings file (CONTRACT section 8) as strict, frozen models.

Errors name the file and the dotted key, e.g. `dealer_feeds.yaml: xtime.dealerships.d100.time_zone: ...`.
Credentials are never in the file: it names the environment variables that hold them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    field_validator,
    model_validator,
)

from dealer_assets.core.settings_file import KeyedError, read_document, validate_section

DEALERSHIP_ID = re.compile(r"^[a-z0-9_]+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_OPCODE = "Tell Us More"
SCOPE = "cai.scheduling.appointments.read cai.scheduling.appointments.write"


def _trimmed(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _utc(value: object) -> object:
    """YAML gives aware datetimes for `...Z`; strings are parsed; a value without a zone is refused."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from exc
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a timestamp needs Z or an explicit UTC offset")
        return value.astimezone(UTC)
    return value


def _env_name(value: object) -> object:
    if isinstance(value, str) and not ENV_NAME.match(value.strip()):
        raise ValueError(
            f"{value!r} is not an environment variable name (give the variable's name, not its value)"
        )
    return _trimmed(value)


Text = Annotated[StrictStr, BeforeValidator(_trimmed), Field(min_length=1)]
Utc = Annotated[datetime, BeforeValidator(_utc)]
EnvName = Annotated[StrictStr, BeforeValidator(_env_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Invitation(_Strict):
    """The opt-in: the code we sent, and when the dealership completed it and Xtime confirmed it."""

    code: Text
    issued_at: Utc
    completed_at: Utc | None = None
    confirmed_at: Utc | None = None

    @model_validator(mode="after")
    def _order(self) -> Invitation:
        if self.completed_at is not None and self.completed_at < self.issued_at:
            raise ValueError("completed_at is before issued_at")
        if self.confirmed_at is not None:
            if self.completed_at is None:
                raise ValueError("confirmed_at needs completed_at (a dealership confirms after completing)")
            if self.confirmed_at < self.completed_at:
                raise ValueError("confirmed_at is before completed_at")
        return self


class Dealership(_Strict):
    dealer_code: Text
    dms_dealer_id: Text | None = None
    time_zone: Text
    opcode: Text = DEFAULT_OPCODE
    invitation: Invitation

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. America/Los_Angeles)") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class XtimeSettings(_Strict):
    base_url: Text = "https://api.coxautoinc.com/xtime"
    token_url: Text = "https://auth.coxautoinc.com/token"
    client_id_env: EnvName
    client_secret_env: EnvName
    api_key_env: EnvName
    requests_per_second: Annotated[float, Field(gt=0, le=1000, strict=True)] = 10
    dealerships: dict[str, Dealership] = Field(default_factory=dict)
    book_service_request_types: list[Text] = Field(default_factory=list)

    @field_validator("base_url", "token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _unique(self) -> XtimeSettings:
        """Dealer codes, DMS dealer ids and invitation codes each name one dealership (the guide calls each
        invitation code unique)."""
        codes: dict[str, str] = {}
        dms: dict[str, str] = {}
        invitations: dict[str, str] = {}
        for name, d in self.dealerships.items():
            if not DEALERSHIP_ID.match(name):
                raise KeyedError(f"dealerships.{name}", "a dealership id is [a-z0-9_]+")
            if d.dealer_code in codes:
                raise KeyedError(
                    f"dealerships.{name}.dealer_code",
                    f"{d.dealer_code!r} is already the dealer code of {codes[d.dealer_code]}",
                )
            codes[d.dealer_code] = name
            if d.invitation.code in invitations:
                other = invitations[d.invitation.code]
                raise KeyedError(
                    f"dealerships.{name}.invitation.code",
                    f"{d.invitation.code!r} is already the invitation code of {other} "
                    f"(xtime.dealerships.{other}.invitation.code); each invitation code is unique",
                )
            invitations[d.invitation.code] = name
            if d.dms_dealer_id is not None:
                if d.dms_dealer_id in dms:
                    raise KeyedError(
                        f"dealerships.{name}.dms_dealer_id",
                        f"{d.dms_dealer_id!r} is already linked to {dms[d.dms_dealer_id]}",
                    )
                dms[d.dms_dealer_id] = name
        return self


def settings_from_document(document: dict, path: Path | str) -> XtimeSettings | None:
    """The `xtime` section of an already-read settings document; None when the key is absent."""
    return validate_section(XtimeSettings, document, "xtime", path)


def load_xtime_settings(path: Path | str) -> XtimeSettings | None:
    return settings_from_document(read_document(path), path)
