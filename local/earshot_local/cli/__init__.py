"""The ``earshot`` command line.

Each command group lives in its own module and registers itself here:
``ingest`` (parse, feeds, run, invoke, info), ``topics`` (topics, match, report), ``senses``,
``discover`` (discover; topics discover|candidates|approve|reject|autodiscover),
``digest`` (digest preview|run), ``serve`` (the local web server), ``demo``.

Local commands use the SQLite database named by ``--db`` / ``EARSHOT_DB`` (default: one
per user, see ``earshot info``); ``--backend aws`` talks to a deployed stack instead (feeds
and topics). Both global options work before the command and after it.

Contract for scripts: results go to stdout; a failure prints one line
``error: <reason>`` on stderr and exits with code 2, never a traceback
(``earshot invoke`` reports a handler's own failure as ``sam local invoke`` does: the
error as JSON on stdout, exit 1).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from earshot import __version__
from earshot.errors import EarshotError
from earshot_local.cli import demo, digest, discover, ingest, senses, serve, topics
from earshot_local.cli.common import CliError, add_global_options, check_backend
from earshot_local.sqlite_store import SchemaTooNew


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser below ``parser`` (commands, their actions, ...), depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases repeat a parser
                yield child
                yield from _subparsers(child)


# Help for options a command module registered without any (every option has help text).
FALLBACK_HELP = {
    ("serve", "--host"): "address to listen on (default 127.0.0.1, this machine only; 0.0.0.0: every interface)",
    ("serve", "--port"): "port to listen on (default 3000)",
    ("serve", "--threads"): "requests served at once (default 8)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="earshot", description="Follow a topic across podcasts.",
        epilog="--db and --backend work before or after the command: `earshot feeds list --db my.db`. "
               "Help on a command: earshot COMMAND --help.")
    parser.add_argument("--version", action="version", version=f"earshot {__version__}",
                        help="print Earshot's version and exit")
    add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (ingest, topics, senses, discover, digest, serve, demo):
        module.register(sub)
    for child in _subparsers(parser):
        add_global_options(child, top=False)
        child.set_defaults(prog=child.prog)
        command = child.prog.removeprefix("earshot ")
        for action in child._actions:
            for option in action.option_strings:
                action.help = action.help or FALLBACK_HELP.get((command, option))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_backend(args)
        return int(args.func(args) or 0)
    except (CliError, EarshotError, SchemaTooNew) as exc:
        return _fail(str(exc))
    except (BotoCoreError, ClientError) as exc:
        return _fail(f"AWS: {exc}")
    except sqlite3.DatabaseError as exc:
        return _fail(f"the database {_db_name(args)}: {exc}")
    except BrokenPipeError:  # e.g. `earshot parse feed.xml | head`: the reader left, not an error
        sys.stderr.close()
        return 0
    except OSError as exc:  # a file a command was asked to read or write
        return _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def _db_name(args: argparse.Namespace) -> str:
    db: Path | None = getattr(args, "db", None)
    return str(db) if db else "(see `earshot info`)"


__all__ = ["CliError", "build_parser", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
