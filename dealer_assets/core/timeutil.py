"""Timestamps as the project reads and writes them: aware UTC, ISO 8601 with `Z`."""

from __future__ import annotations

from datetime import UTC, datetime

from dealer_assets.core.errors import ConfigError

ISO_Z = "%Y-%m-%dT%H:%M:%SZ"


def parse_utc(text: str, *, key: str = "timestamp", origin: str = "argument") -> datetime:
    """ISO 8601 in UTC (`Z` or an explicit offset); naive values are taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{origin}: {key}: {text!r} is not an ISO 8601 timestamp") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso_z(value: datetime) -> str:
    return value.astimezone(UTC).strftime(ISO_Z)
