"""What every command group shares: the user-facing error, the global options, and
opening the store."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import boto3

from earshot import runtime
from earshot.store import Store
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import LocalSettings

BACKENDS = ("local", "aws")
# What a command's ``set_defaults(backends=...)`` may say: it works on these stores. A
# command that opens no store (parse, match, report) says ``None``; by default a command
# works on the local database only.
LOCAL_ONLY = ("local",)
ANY_BACKEND = BACKENDS


class CliError(Exception):
    """A user-facing failure: printed as ``error: ...``, exit code 2."""


def add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--db`` and ``--backend``, accepted before the command and after it (on every
    subcommand, where they default to SUPPRESS so the top level's value stands)."""
    parser.add_argument(
        "--db", type=Path, default=None if top else argparse.SUPPRESS, metavar="PATH",
        help="the local SQLite database (default: $EARSHOT_DB, else one per user; `earshot info` says where)",
    )
    parser.add_argument(
        "--backend", choices=BACKENDS, default="local" if top else argparse.SUPPRESS,
        help="local: the SQLite database (default); aws: the deployed stack, for feeds and topics "
             "(needs TABLE_NAME and AWS credentials; see docs/deploy.md)",
    )


def check_backend(args: argparse.Namespace) -> None:
    """Refuse ``--backend aws`` for a command that only works on the local database."""
    supported = getattr(args, "backends", LOCAL_ONLY)
    if supported is not None and args.backend not in supported:
        raise CliError(f"`{args.prog}` works on the local database only; --backend aws is for "
                       "`earshot feeds` and `earshot topics`")


def local_settings(args: argparse.Namespace) -> LocalSettings:
    return LocalSettings.from_env(EARSHOT_DB=getattr(args, "db", None))


@contextmanager
def open_local(args: argparse.Namespace) -> Iterator[LocalRuntime]:
    """The local runtime on the chosen database (expired tokens and claims purged)."""
    with LocalRuntime(local_settings(args)) as local:
        local.store.purge_expired(datetime.now(UTC))
        yield local


def aws_store() -> Store:
    """The deployed DynamoDB table, after checking that it can be reached at all: a
    missing table name or missing credentials is one line saying what to set."""
    runtime.reset()  # read the environment now, not whatever an earlier call cached
    needs = []
    if "table_name" not in runtime.settings().model_fields_set:
        needs.append("TABLE_NAME (the stack's TableName output)")
    if boto3.Session().get_credentials() is None:
        needs.append("AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    if needs:
        raise CliError(f"--backend aws needs {' and '.join(needs)}; see docs/deploy.md")
    return runtime.store()


@contextmanager
def open_store(args: argparse.Namespace) -> Iterator[Store]:
    """The store for ``--backend``: the local database, or the deployed DynamoDB table."""
    if getattr(args, "backend", "local") == "aws":
        yield aws_store()
        return
    with open_local(args) as local:
        yield local.store
