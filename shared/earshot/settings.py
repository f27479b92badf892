"""Earshot's one settings model, read once from the environment at cold start.

No other module reads ``os.environ``: code asks :func:`get_settings` (Lambda) or
receives a :class:`Settings` (tests, CLI), so every knob has one name, one default and
one validation.
"""

from __future__ import annotations

import functools
import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from earshot import __version__

MiB = 1024 * 1024


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    # --- AWS resources (names come from template.yaml via environment variables) ---
    table_name: str = Field("earshot", alias="TABLE_NAME")
    fetch_queue_url: str = Field("", alias="FETCH_QUEUE_URL")
    digest_queue_url: str = Field("", alias="DIGEST_QUEUE_URL")
    region: str = Field("us-east-1", alias="AWS_REGION")

    # --- fetching (fetcher.py) ---
    user_agent: str = Field(
        f"Earshot/{__version__} (+https://github.com/earshot-podcasts/earshot; podcast topic digests)",
        alias="EARSHOT_USER_AGENT",
    )
    connect_timeout_s: float = Field(10.0, alias="EARSHOT_CONNECT_TIMEOUT_S", gt=0)
    total_timeout_s: float = Field(30.0, alias="EARSHOT_TOTAL_TIMEOUT_S", gt=0)
    max_redirects: int = Field(5, alias="EARSHOT_MAX_REDIRECTS", ge=0, le=20)
    max_body_bytes: int = Field(15 * MiB, alias="EARSHOT_MAX_BODY_BYTES", gt=0)
    # SSRF guard: loopback/private addresses are refused unless allowed here. The deployed
    # stack never sets these; the local CLI allows loopback for the user's own feeds.
    allow_private_addresses: bool = Field(False, alias="EARSHOT_ALLOW_PRIVATE_ADDRESSES")
    allowed_hosts: Annotated[tuple[str, ...], Field(alias="EARSHOT_ALLOWED_HOSTS")] = ()

    # --- worker concurrency ---
    worker_threads: int = Field(8, alias="EARSHOT_WORKER_THREADS", ge=1, le=64)
    max_requests_per_host: int = Field(2, alias="EARSHOT_MAX_REQUESTS_PER_HOST", ge=1)

    # --- scheduling policy (schedule.py) ---
    due_shards: int = Field(4, alias="EARSHOT_DUE_SHARDS", ge=1, le=64)
    min_interval_s: int = Field(3600, alias="EARSHOT_MIN_INTERVAL_S", ge=60)
    max_interval_s: int = Field(86400, alias="EARSHOT_MAX_INTERVAL_S", ge=60)
    max_backoff_s: int = Field(7 * 86400, alias="EARSHOT_MAX_BACKOFF_S", ge=60)

    # --- mail (digest.py, mailer.py) ---
    sender: str = Field("Earshot <digest@earshot.example>", alias="EARSHOT_SENDER")
    configuration_set: str = Field("earshot", alias="SES_CONFIGURATION_SET")
    public_base_url: str = Field("http://localhost:3000", alias="EARSHOT_PUBLIC_BASE_URL")
    unsubscribe_mailto: str = Field("unsubscribe@earshot.example", alias="EARSHOT_UNSUBSCRIBE_MAILTO")
    send_empty_digests: bool = Field(False, alias="EARSHOT_SEND_EMPTY_DIGESTS")
    max_confirmations_per_day: int = Field(3, alias="EARSHOT_MAX_CONFIRMATIONS_PER_DAY", ge=1)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(h.strip().lower() for h in value.split(",") if h.strip())
        return value

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> "Settings":
        """Build settings from an environment mapping (``os.environ`` by default)."""
        source = dict(os.environ if env is None else env)
        return cls.model_validate({**source, **overrides})

    def with_(self, **changes: object) -> "Settings":
        """A copy with some fields changed (by field name)."""
        return self.model_copy(update=changes)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings.from_env()
