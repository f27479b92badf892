"""What every command group shares: the user-facing error, and opening the store."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from earshot import runtime
from earshot.store import Store
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import LocalSettings


class CliError(Exception):
    """A user-facing failure: printed as ``error: ...``, exit code 2."""


def add_backend_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", choices=("local", "aws"), default="local",
        help="local: the SQLite database (default); aws: the deployed stack "
             "(TABLE_NAME etc. from the environment, see docs/deploy.md)",
    )


def local_settings(args: argparse.Namespace) -> LocalSettings:
    return LocalSettings.from_env(EARSHOT_DB=getattr(args, "db", None))


@contextmanager
def open_local(args: argparse.Namespace) -> Iterator[LocalRuntime]:
    """The local runtime on the chosen database (expired tokens and claims purged)."""
    with LocalRuntime(local_settings(args)) as local:
        local.store.purge_expired(datetime.now(UTC))
        yield local


@contextmanager
def open_store(args: argparse.Namespace) -> Iterator[Store]:
    """The store for ``--backend``: the local database, or the deployed DynamoDB table."""
    if getattr(args, "backend", "local") == "aws":
        yield runtime.store()
        return
    with open_local(args) as local:
        yield local.store
