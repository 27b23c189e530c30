"""Where things live (CONTRACT section 1), resolved once from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HISTORY_START = "2025-01-01T00:00:00Z"


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and where it came from."""


def parse_utc(text: str, *, key: str = "timestamp", origin: str = "argument") -> datetime:
    """ISO 8601 in UTC (`Z` or an explicit offset); naive values are taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{origin}: {key}: {text!r} is not an ISO 8601 timestamp") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class DealerPaths:
    data_dir: Path
    settings_file: Path
    warehouse_url: str
    history_start: datetime

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> DealerPaths:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("DEALER_DATA_DIR") or PROJECT_ROOT / "data").resolve()
        settings = Path(env.get("DEALER_SETTINGS_FILE") or data_dir / "config" / "dealer_feeds.yaml")
        url = env.get("DEALER_WAREHOUSE_URL") or default_warehouse_url(data_dir)
        start = parse_utc(env.get("DEALER_HISTORY_START") or DEFAULT_HISTORY_START,
                          key="DEALER_HISTORY_START", origin="environment")
        if start.minute or start.second or start.microsecond:
            raise ConfigError("environment: DEALER_HISTORY_START: must fall on a whole hour (partitions are hourly)")
        return cls(data_dir=data_dir, settings_file=settings.resolve(), warehouse_url=url, history_start=start)

    @property
    def incoming(self) -> Path:
        return self.data_dir / "feeds" / "incoming"

    @property
    def archive(self) -> Path:
        return self.data_dir / "archive"

    @property
    def quarantine(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def raw(self) -> Path:
        return self.data_dir / "raw"

    @property
    def normalized(self) -> Path:
        return self.data_dir / "normalized"

    @property
    def state(self) -> Path:
        return self.data_dir / "state"


def default_warehouse_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'warehouse.db'}"
