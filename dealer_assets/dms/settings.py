"""The DMS part of the settings file (CONTRACT section 3), `sources`, as typed, validated models.

Every error names the file and the dotted key, e.g.
`config/dealer_feeds.yaml: sources.generic.auto_close.days: required with mode after_days`.
Nothing is processed under an invalid file: definitions fail to load and commands exit non-zero.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    model_validator,
)

from dealer_assets.core.errors import ConfigError
from dealer_assets.core.settings_file import KeyedError, format_errors, parse_document, read_document

CANONICAL_FIELDS = (
    "dealer_id",
    "vin",
    "stock_no",
    "system_code",
    "year",
    "make",
    "model",
    "trim",
    "mileage",
    "date_in_stock",
)
REQUIRED_FIELDS = ("dealer_id", "vin", "system_code")
GENERIC_HEADERS = (
    "DealerID",
    "VIN",
    "StockNo",
    "SystemCode",
    "Year",
    "Make",
    "Model",
    "Trim",
    "Mileage",
    "DateInStock",
)
SOURCE_NAME = re.compile(r"^[a-z0-9_]+$")


def _trimmed(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


Text = Annotated[StrictStr, BeforeValidator(_trimmed), Field(min_length=1)]
NonNegativeDays = Annotated[StrictInt, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Constant(_Strict):
    constant: Text


class Layout(_Strict):
    """How one DMS writes its file: never code, always settings."""

    delimiter: StrictStr = ","
    encoding: StrictStr = "utf-8"
    quote: StrictStr = '"'
    ends_with_newline: StrictBool = True
    """Every file of this DMS ends its last record with a line ending, so one that does not is unfinished."""
    columns: dict[Literal[CANONICAL_FIELDS], Text | Constant]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _check(self) -> Layout:
        for name, value in (("delimiter", self.delimiter), ("quote", self.quote)):
            if len(value) != 1 or not value.isascii():
                raise ValueError(f"{name} must be one ASCII character, got {value!r}")
        if self.delimiter == self.quote:
            raise ValueError("delimiter and quote must differ")
        try:
            "".encode(self.encoding)
        except LookupError as exc:
            raise ValueError(f"encoding {self.encoding!r} is not known") from exc
        missing = [f for f in REQUIRED_FIELDS if f not in self.columns]
        if missing:
            raise ValueError(f"columns must give {', '.join(missing)}")
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {f: v for f, v in self.columns.items() if isinstance(v, str)}

    @property
    def constants(self) -> dict[str, str]:
        return {f: v.constant for f, v in self.columns.items() if isinstance(v, Constant)}

    @property
    def required_headers(self) -> list[str]:
        return [self.headers[f] for f in REQUIRED_FIELDS if f in self.headers]

    @property
    def line_endings(self) -> tuple[bytes, ...]:
        """The bytes a finished file ends with in this encoding (none when its files need not end a line)."""
        if not self.ends_with_newline:
            return ()
        bare = len("a".encode(self.encoding))
        return tuple(f"a{end}".encode(self.encoding)[bare:] for end in ("\n", "\r"))


GENERIC_LAYOUT = Layout(columns=dict(zip(CANONICAL_FIELDS, GENERIC_HEADERS, strict=True)))


class TrackStockNoAndClient(_Strict):
    mode: Literal["never", "for_days"]
    days: NonNegativeDays | None = None

    @model_validator(mode="after")
    def _days(self) -> TrackStockNoAndClient:
        _require_days(self.mode == "for_days", self.days, self.mode)
        return self


class AutoClose(_Strict):
    mode: Literal["never", "immediately", "after_days"]
    days: NonNegativeDays | None = None

    @model_validator(mode="after")
    def _days(self) -> AutoClose:
        _require_days(self.mode == "after_days", self.days, self.mode)
        return self


def _require_days(needed: bool, days: int | None, mode: str) -> None:
    if needed and days is None:
        raise ValueError(f"days is required with mode {mode}")
    if not needed and days is not None:
        raise ValueError(f"days is not used with mode {mode}")


class AutoCloseGuard(_Strict):
    max_fraction: Annotated[float, Field(ge=0, le=1, strict=False)]
    min_active: Annotated[StrictInt, Field(ge=0)]


class VehicleTypeMapping(_Strict):
    system_code: Text
    vehicle_type: Text
    service_request_type: Text
    dealer_id: Text | None = None
    include_only: StrictBool = False


class ClientDealerMapping(_Strict):
    client: Text
    dealer_id: Text
    service_request_type: Text
    ignore_if_sr_with_vin_exists: StrictBool = False
    ignore_days: NonNegativeDays | None = None

    @model_validator(mode="after")
    def _ignore_days(self) -> ClientDealerMapping:
        if self.ignore_if_sr_with_vin_exists and self.ignore_days is None:
            raise ValueError("ignore_days is required when ignore_if_sr_with_vin_exists is true")
        return self


class SourceSettings(_Strict):
    """One DMS integration: its file layout and its ReconPro rules."""

    layout: Annotated[
        Annotated[Literal["generic"], Tag("generic")] | Annotated[Layout, Tag("inline")],
        Discriminator(lambda v: "generic" if isinstance(v, str) else "inline"),
    ]
    track_stock_no_and_client: TrackStockNoAndClient
    auto_close: AutoClose
    auto_close_guard: AutoCloseGuard | None = None
    coverage: Literal["dealers_in_feed", "all_mapped_dealers"] = "dealers_in_feed"
    incomplete_after_minutes: Annotated[StrictInt, Field(ge=1)] = 60
    """How long a visibly unfinished delivery may wait in the drop zone, after its last write, before it is
    quarantined as `incomplete`."""
    vehicle_type_mappings: list[VehicleTypeMapping] = Field(default_factory=list)
    client_dealer_mappings: list[ClientDealerMapping] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SourceSettings:
        seen: dict[str, int] = {}
        for i, m in enumerate(self.client_dealer_mappings):
            if m.dealer_id in seen:
                raise KeyedError(
                    f"client_dealer_mappings.{i}.dealer_id",
                    f"dealer {m.dealer_id!r} already has a client mapping "
                    f"(client_dealer_mappings.{seen[m.dealer_id]})",
                )
            seen[m.dealer_id] = i
        types: dict[tuple[str, str | None], int] = {}
        for i, m in enumerate(self.vehicle_type_mappings):
            key = (m.system_code, m.dealer_id)
            if key in types:
                raise KeyedError(
                    f"vehicle_type_mappings.{i}",
                    f"system code {m.system_code!r} with dealer {m.dealer_id!r} is already mapped "
                    f"(vehicle_type_mappings.{types[key]})",
                )
            types[key] = i
        return self

    @property
    def file_layout(self) -> Layout:
        return GENERIC_LAYOUT if self.layout == "generic" else self.layout


class DealerSettings(_Strict):
    sources: dict[str, SourceSettings]

    @model_validator(mode="after")
    def _names(self) -> DealerSettings:
        for name in self.sources:
            if not SOURCE_NAME.match(name):
                raise KeyedError(
                    f"sources.{name}", "a source name is [a-z0-9_]+ (it is the file-name prefix)"
                )
        return self


def _reword(err: dict, loc: list[str]) -> tuple[list[str], str | None]:
    """The layout is a tagged union: hide the tag from the key and say what a layout may be."""
    loc = [p for i, p in enumerate(loc) if not (i and loc[i - 1] == "layout" and p in ("generic", "inline"))]
    if err["type"] == "literal_error" and loc[-1:] == ["layout"]:
        return loc, "must be 'generic' or an inline layout mapping"
    return loc, None


def settings_of(document: dict, path: Path | str) -> DealerSettings:
    """The DMS part of a settings document (the `sources` key, required)."""
    path = Path(path)
    if "sources" not in document:
        raise ConfigError(f"invalid settings:\n  {path}: sources: required key is missing")
    try:
        return DealerSettings.model_validate({"sources": document["sources"]})
    except ValidationError as exc:
        raise ConfigError(format_errors(path, exc, "", _reword)) from None


def parse_settings(text: str, path: Path | str = "<settings>") -> DealerSettings:
    return settings_of(parse_document(text, path), path)


def load_settings(path: Path | str) -> DealerSettings:
    return settings_of(read_document(path), path)


def source_settings_in(settings: DealerSettings, source: str, path: Path | str) -> SourceSettings:
    """A source's settings; a source removed from the file since the code location loaded is an error."""
    if source not in settings.sources:
        raise ConfigError(
            f"{path}: sources.{source}: the source is no longer configured; "
            "reload the code location after changing the list of sources"
        )
    return settings.sources[source]
