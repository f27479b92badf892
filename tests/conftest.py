"""Shared pytest fixtures for Earshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from earshot.local import EmbeddedBackend

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = REPO_ROOT.parent / "shared" / "corpus" / "feeds"


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[EmbeddedBackend]:
    """The embedded stack (moto; tables and queues from template.yaml), fresh per test."""
    with EmbeddedBackend() as b:
        yield b
