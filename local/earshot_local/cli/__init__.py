"""The ``earshot`` command line.

Each command group lives in its own module and registers itself here:
``ingest`` (parse, feeds, run, invoke, info), ``topics`` (topics, match, report),
``digest`` (digest preview|run), ``serve`` (the local web server), ``demo``.

Local commands use the SQLite database named by ``--db`` / ``EARSHOT_DB`` (default: one
per user, see ``earshot info``); ``--backend aws`` talks to a deployed stack instead.

Contract for scripts: results go to stdout; a failure prints one line
``error: <reason>`` on stderr and exits with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from earshot.errors import EarshotError
from earshot_local.cli import demo, digest, ingest, serve, topics
from earshot_local.cli.common import CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="earshot", description="Follow a topic across podcasts.")
    parser.add_argument("--db", type=Path, default=None, metavar="PATH",
                        help="the local database (default: $EARSHOT_DB, else one per user; see `earshot info`)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (ingest, topics, digest, serve, demo):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, EarshotError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `earshot parse feed.xml | head`: the reader left, not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


__all__ = ["CliError", "build_parser", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
