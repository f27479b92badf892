"""Settings of the local product (where the database and the outbox live, SMTP), read
once from the environment like :class:`earshot.settings.Settings`."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from pydantic import BaseModel, ConfigDict, Field

from earshot.settings import Settings


def default_db_path() -> Path:
    """One database per user, in the platform's user data folder
    (``~/.local/share/earshot/earshot.db`` on Linux)."""
    return Path(platformdirs.user_data_dir("earshot", appauthor=False)) / "earshot.db"


class LocalSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    db: Path = Field(default_factory=default_db_path, alias="EARSHOT_DB")
    outbox: Path | None = Field(None, alias="EARSHOT_OUTBOX", description="default: outbox/ beside the database")
    smtp_url: str | None = Field(None, alias="EARSHOT_SMTP_URL")
    # Requests in flight at once for `earshot run` (the per-host limit still applies).
    concurrency: int = Field(32, alias="EARSHOT_LOCAL_CONCURRENCY", ge=1, le=64)

    @classmethod
    def from_env(cls, **overrides: object) -> "LocalSettings":
        values = {**os.environ, **{k: v for k, v in overrides.items() if v is not None}}
        return cls.model_validate(values)

    @property
    def outbox_dir(self) -> Path:
        return self.outbox or self.db.parent / "outbox"


def domain_settings(**overrides: object) -> Settings:
    """The domain's settings as the local product runs it: the user's own machine and feed
    list, so loopback/private addresses may be fetched and feed files read."""
    return Settings.from_env(EARSHOT_ALLOW_PRIVATE_ADDRESSES="true", EARSHOT_ALLOW_LOCAL_FILES="true", **overrides)
