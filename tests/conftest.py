"""Shared pytest fixtures for Earshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.aws_stack import EmbeddedBackend
from tests.support.feedserver import FeedServer, running_feed_server


@pytest.fixture(autouse=True)
def _own_local_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's CLI commands use a database of their own, never the user's."""
    monkeypatch.setenv("EARSHOT_DB", str(tmp_path / "earshot.db"))


@pytest.fixture
def backend() -> Iterator[EmbeddedBackend]:
    """The embedded stack (moto; tables and queues from template.yaml), fresh per test."""
    with EmbeddedBackend() as b:
        yield b


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A loopback HTTP server (127.0.0.1 and 127.0.0.2) with routes set per test."""
    with running_feed_server() as server:
        yield server
