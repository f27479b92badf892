"""The ``earshot`` command line.

Each command group lives in its own module and registers itself here:
``ingest`` (parse, feeds, run, invoke), ``topics`` (topics, match, report),
``digest`` (digest preview), ``demo`` (the end-to-end local demo).

Contract for scripts: results go to stdout; a failure prints one line
``error: <reason>`` on stderr and exits with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from earshot.errors import EarshotError

# Modules that add subcommands; each has ``register(subparsers)``.
COMMAND_MODULES = ("ingest", "topics", "digest", "demo")


class CliError(Exception):
    """A user-facing failure: printed as ``error: ...``, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="earshot", description="Follow a topic across podcasts.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"earshot.cli.{name}").register(sub)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
