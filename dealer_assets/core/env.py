"""The typed environment: every `DEALER_*` variable is read here, once, and nowhere else.

Where things live (CONTRACT section 1) resolves into `DealerPaths`; the rest (executor, safety-net cron,
fault points, Celery) is handed to the wiring that needs it.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from dealer_assets.core.errors import ConfigError
from dealer_assets.core.timeutil import parse_utc

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HISTORY_START = "2025-01-01T00:00:00Z"
DEFAULT_SAFETY_NET_CRON = "0 */2 * * *"
DEFAULT_SETTLE_SECONDS = 10.0
"""A delivery is taken once its size and mtime have not changed for this long (`DEALER_SETTLE_SECONDS`)."""


DEVELOPMENT_ENV_FILE = PROJECT_ROOT / ".env.development"
SAMPLES_MARKER = Path("state") / "samples.json"
"""Under the data root: where `make samples` records the staged samples' first day (`history_start`)."""
STAGED_SETTINGS = Path("state") / "dealer_feeds.yaml"
"""Under the data root: the sample settings as `make dev` stages them (invitation dates from the day it runs)."""


def load_development_env(environ: MutableMapping[str, str] = os.environ) -> None:
    """On the embedded defaults (no `DEALER_SETTINGS_FILE`), fill what the environment lacks from
    `.env.development`, the staged samples' start of history and the staged settings, so that `make dev`, its
    UI and every command see the same values. Production sets `DEALER_SETTINGS_FILE`: nothing here is read."""
    if environ.get("DEALER_SETTINGS_FILE") or not DEVELOPMENT_ENV_FILE.exists():
        return
    for key, value in dotenv_values(DEVELOPMENT_ENV_FILE).items():
        if value is not None:
            environ.setdefault(key, value)
    data_dir = Path(environ.get("DEALER_DATA_DIR") or PROJECT_ROOT / "data")
    if "DEALER_HISTORY_START" not in environ and (data_dir / SAMPLES_MARKER).is_file():
        environ["DEALER_HISTORY_START"] = json.loads((data_dir / SAMPLES_MARKER).read_text())["history_start"]
    if (data_dir / STAGED_SETTINGS).is_file():
        environ["DEALER_SETTINGS_FILE"] = str(data_dir / STAGED_SETTINGS)


def missing_variable(name: str, key: str) -> ConfigError:
    """A secret's variable is not set: say where it is expected to come from."""
    return ConfigError(
        f"environment variable {name} ({key} in the settings) is not set: production sets it in the "
        f"environment; for development, {DEVELOPMENT_ENV_FILE.name} holds the fakes' values and is loaded "
        "when DEALER_SETTINGS_FILE is not set"
    )


def default_warehouse_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'warehouse.db'}"


@dataclass(frozen=True)
class DealerPaths:
    data_dir: Path
    settings_file: Path
    history_start: datetime
    warehouse_url: str | None = None
    """None where the warehouse comes as a resource of its own (Dagster steps)."""
    settle_seconds: float = DEFAULT_SETTLE_SECONDS

    @classmethod
    def from_env(cls) -> DealerPaths:
        return DealerEnv.load().paths()

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

    @property
    def locks(self) -> Path:
        return self.data_dir / "state" / ".locks"


class DealerEnv(BaseSettings):
    """`DEALER_<NAME>` for each field; unset values take the defaults of CONTRACT section 1."""

    model_config = SettingsConfigDict(env_prefix="DEALER_", extra="ignore", frozen=True)

    data_dir: Path | None = None
    settings_file: Path | None = None
    warehouse_url: str | None = None
    history_start: str = DEFAULT_HISTORY_START
    settle_seconds: float = Field(default=DEFAULT_SETTLE_SECONDS, ge=0, le=3600)
    executor: Literal["in_process", "multiprocess", "celery"] = "in_process"
    safety_net_cron: str = DEFAULT_SAFETY_NET_CRON
    crash_at: str | None = None
    celery_broker: str | None = None
    celery_backend: str | None = None
    celery_queue: str | None = None

    @field_validator(
        "data_dir",
        "settings_file",
        "warehouse_url",
        "crash_at",
        "celery_broker",
        "celery_backend",
        "celery_queue",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("warehouse_url")
    @classmethod
    def _usable_url(cls, value: str | None) -> str | None:
        """A URL that does not parse or names an unknown driver is a configuration error, never shown whole."""
        if value is None:
            return value
        try:
            parsed = make_url(value)
        except (ArgumentError, ValueError):
            raise ValueError(
                "does not parse as a SQLAlchemy URL (dialect+driver://user:password@host/database)"
            ) from None
        try:
            parsed.get_dialect()
        except (NoSuchModuleError, ArgumentError, ValueError):
            raise ValueError(f"names an unknown dialect or driver {parsed.drivername!r}") from None
        return value

    @classmethod
    def load(cls) -> DealerEnv:
        """Read the environment now; a bad value is a ConfigError naming the variable."""
        load_development_env()
        try:
            return cls()
        except ValidationError as exc:
            err = exc.errors()[0]
            name = "DEALER_" + str(err["loc"][0]).upper() if err["loc"] else "DEALER_*"
            message = str(err["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"environment: {name}: {message}") from None

    @classmethod
    def for_paths(cls, paths: DealerPaths) -> DealerEnv:
        """The environment with its locations replaced by `paths` (tests, benchmarks, other data roots)."""
        return cls.load().model_copy(
            update={
                "data_dir": paths.data_dir,
                "settings_file": paths.settings_file,
                "warehouse_url": paths.warehouse_url,
                "history_start": paths.history_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "settle_seconds": paths.settle_seconds,
            }
        )

    def warehouse_url_from_environment(self) -> bool:
        """True when the URL is `DEALER_WAREHOUSE_URL` itself: then Dagster gets an EnvVar, never the secret."""
        return bool(self.warehouse_url) and os.environ.get("DEALER_WAREHOUSE_URL") == self.warehouse_url

    def paths(self) -> DealerPaths:
        data_dir = (self.data_dir or PROJECT_ROOT / "data").resolve()
        settings = (self.settings_file or data_dir / "config" / "dealer_feeds.yaml").resolve()
        start = parse_utc(self.history_start, key="DEALER_HISTORY_START", origin="environment")
        if start.minute or start.second or start.microsecond:
            raise ConfigError(
                "environment: DEALER_HISTORY_START: must fall on a whole hour (e.g. 2025-01-01T00:00:00Z)"
            )
        return DealerPaths(
            data_dir=data_dir,
            settings_file=settings,
            warehouse_url=self.warehouse_url or default_warehouse_url(data_dir),
            history_start=start,
            settle_seconds=self.settle_seconds,
        )
