"""``earshot serve``: topic pages, topic feeds and the subscription flow on this machine.

As deployed, ``POST /subscriptions`` only queues the request; a background thread here
plays the queue's event source and hands queued requests to the confirmation mailer
(``functions/confirmations``) a moment after the answer.
"""

from __future__ import annotations

import argparse
import logging
import threading

from earshot_local.cli.common import local_settings
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import domain_settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="serve topic pages, feeds and subscriptions locally (the API's routes)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--threads", type=int, default=8)
    p.set_defaults(func=cmd_serve)


def base_url(host: str, port: int) -> str:
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1") else host  # noqa: S104 - naming only
    return f"http://{shown}:{port}"


CONFIRMATION_POLL_S = 0.5
logger = logging.getLogger(__name__)


def confirmation_worker(local: LocalRuntime, stop: threading.Event, *, poll_s: float = CONFIRMATION_POLL_S) -> None:
    """Until ``stop`` is set: every ``poll_s`` seconds, mail the queued confirmations."""
    while not stop.wait(poll_s):
        try:
            local.send_confirmations()
        except Exception:  # keep serving; the request stays queued for the next round
            logger.exception("confirmation mailer failed")


def cmd_serve(args: argparse.Namespace) -> int:
    import waitress

    from earshot_local.web import wsgi_app

    # Links in mails and pages point at where this server listens unless
    # EARSHOT_PUBLIC_BASE_URL says otherwise (e.g. behind a reverse proxy).
    settings = domain_settings()
    if "public_base_url" not in settings.model_fields_set:
        settings = settings.with_(public_base_url=base_url(args.host, args.port))
    with LocalRuntime(local_settings(args), settings=settings) as local:
        print(f"Earshot on {settings.public_base_url}  (database {local.db_path}; mail to {local.local.outbox_dir})",
              flush=True)
        stop = threading.Event()
        worker = threading.Thread(target=confirmation_worker, args=(local, stop), name="confirmations", daemon=True)
        worker.start()
        try:
            waitress.serve(wsgi_app, host=args.host, port=args.port, threads=args.threads, ident="earshot")
        finally:
            stop.set()
            worker.join(timeout=5)
    return 0
