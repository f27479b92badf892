"""Shared pytest fixtures for Earshot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.aws_stack import EmbeddedBackend
from tests.support.faults import AwsFaults, emitted_metrics
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


@pytest.fixture
def faults(backend: EmbeddedBackend) -> Iterator[AwsFaults]:
    """Faults for the AWS calls the handlers make (tests/support/faults.py), installed in
    the embedded stack's session (moto gives each mock its own), removed after the test."""
    injected = AwsFaults()
    injected.install()
    yield injected
    injected.uninstall()


@pytest.fixture
def metrics_on(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[[], Counter[str]]:
    """The handlers flush their metrics (CloudWatch EMF on stdout, Powertools' own switch);
    call the result for the totals flushed since the last call."""
    from earshot.observability import metrics
    from earshot_local.functions import HANDLER_ENV

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # Powertools reads its namespace when earshot.observability is first imported, which
    # may have been before any test set the handlers' environment
    monkeypatch.setattr(metrics, "namespace", HANDLER_ENV["POWERTOOLS_METRICS_NAMESPACE"])
    capsys.readouterr()
    return lambda: emitted_metrics(capsys)
