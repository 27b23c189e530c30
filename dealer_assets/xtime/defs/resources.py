"""The Xtime API as a Dagster resource: typed fields, secrets as `EnvVar`s, and the client it builds."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from dealer_assets.core.errors import ConfigError
from dealer_assets.core.http import RetryPolicy
from dealer_assets.xtime.client import Credentials, XtimeClient
from dealer_assets.xtime.settings import XtimeSettings

SECRETS = ("client_id", "client_secret", "api_key")
"""The fields whose values come from the environment variables the settings name (`xtime.<field>_env`)."""


class XtimeResource(dg.ConfigurableResource):
    """The Xtime account: the assets get it with `EnvVar` secrets, the CLI builds it from the environment."""

    base_url: str
    token_url: str
    client_id: str
    client_secret: str
    api_key: str
    requests_per_second: float = 10.0
    timeout_seconds: float = 10.0
    max_attempts: int = 5
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0

    @classmethod
    def for_definitions(cls, settings: XtimeSettings) -> XtimeResource:
        """Secrets stay `EnvVar`s, so Dagster never stores their values."""
        return cls(
            **_plain_fields(settings),
            **{name: dg.EnvVar(getattr(settings, f"{name}_env")) for name in SECRETS},
        )

    @classmethod
    def from_environment(
        cls, settings: XtimeSettings, environ: Mapping[str, str] | None = None, **options: Any
    ) -> XtimeResource:
        """Outside Dagster: the secrets read now; a missing variable is a ConfigError naming it and its key."""
        env = os.environ if environ is None else environ
        secrets = {}
        for name in SECRETS:
            var = getattr(settings, f"{name}_env")
            if not env.get(var):
                raise ConfigError(f"environment: {var}: not set (named by xtime.{name}_env in the settings)")
            secrets[name] = env[var]
        return cls(**_plain_fields(settings), **secrets, **options)

    def client(self, clock: Callable[[], float] = time.monotonic) -> XtimeClient:
        """A new client with its own connection pool, token and rate limit: close it (or use `with`)."""
        return XtimeClient(
            self.base_url,
            self.token_url,
            Credentials(self.client_id, self.client_secret, self.api_key),
            requests_per_second=self.requests_per_second,
            timeout_seconds=self.timeout_seconds,
            retry=RetryPolicy(self.max_attempts, self.backoff_initial_seconds, self.backoff_max_seconds),
            clock=clock,
        )


def _plain_fields(settings: XtimeSettings) -> dict[str, Any]:
    return {
        "base_url": settings.base_url,
        "token_url": settings.token_url,
        "requests_per_second": float(settings.requests_per_second),
    }
