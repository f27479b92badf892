"""``earshot serve``: topic pages, topic feeds and the subscription flow on this machine.

As deployed, ``POST /subscriptions`` only queues the request; a background thread here
plays the queue's event source and hands queued requests to the confirmation mailer
(``functions/confirmations``) a moment after the answer.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator

from earshot_local.cli.common import CliError, local_settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="serve topic pages, feeds and subscriptions locally (the API's routes)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=3000, help="0 picks a free port (printed at start)")
    p.add_argument("--threads", type=int, default=8)
    p.set_defaults(func=cmd_serve)


def _port(text: str) -> int:
    # Checked here: the socket layer would silently take 99999 as 99999 % 65536.
    port = int(text) if text.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535)")
    return port


def cmd_serve(args: argparse.Namespace) -> int:
    from earshot_local.web import LocalServer

    # Links in mails and pages point at where this server listens unless
    # EARSHOT_PUBLIC_BASE_URL says otherwise (e.g. behind a reverse proxy).
    try:
        server = LocalServer(local_settings(args), host=args.host, port=args.port, threads=args.threads)
    except (OSError, ValueError) as exc:  # port taken, no such address
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    with server, _sigterm_stops():
        local = server.runtime
        print(f"Earshot on {server.url}  (database {local.db_path}; mail to {local.local.outbox_dir})", flush=True)
        print(f"  topic pages: {server.url}/topics/<slug>   (Ctrl-C stops)", flush=True)
        server.run()
    return 0


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM (a process manager's stop, `kill`) stops the server as Ctrl-C does: waitress
    ends its loop and the database is closed. It also works where SIGINT is ignored (a
    shell starts background jobs with SIGINT ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
