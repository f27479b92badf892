"""``earshot demo``: the whole product end to end on this machine, no AWS account.

1. serve the sample feeds in ``samples/`` from a loopback HTTP server (so the real HTTP
   path runs: conditional GETs, Last-Modified, 304s);
2. ``earshot run`` twice into the demo's own SQLite database (``OUT/earshot-demo.db``,
   never the user's): episodes stored, then mostly 304;
3. define the sample topics and write their pages to ``out/topics/``;
4. subscribe and confirm a sample address through the API handler, run the weekly digest
   handlers; the mails land in the outbox ``out/outbox/``.
"""

from __future__ import annotations

import argparse
import functools
import io
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from earshot.ingest.sources import local_path
from earshot_local.cli.digest import demo_step as digest_demo_step
from earshot_local.cli.ingest import add_feeds, format_cycle, read_feed_list, run_cycle
from earshot_local.cli.topics import demo_step as topics_demo_step
from earshot_local.functions import REPO_ROOT
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import LocalSettings

SAMPLES = REPO_ROOT / "samples"
DEMO_DB = "earshot-demo.db"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run Earshot end to end locally (sample feeds, topics, digest)")
    p.add_argument("--out", type=Path, default=Path("out"), metavar="DIR",
                   help="where the demo's database, pages and mails are written (default: out)")
    p.add_argument("--cycles", type=int, default=2, metavar="N",
                   help="ingest cycles to run (default 2: the second shows conditional GETs answered 304)")
    p.set_defaults(func=cmd_demo)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def serve_directory(directory: Path) -> ThreadingHTTPServer:
    """A loopback static server (Last-Modified / If-Modified-Since -> 304) on a free port."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="sample-feeds").start()
    return server


def cmd_demo(args: argparse.Namespace) -> int:
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    server = serve_directory(SAMPLES)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        paths = read_feed_list(SAMPLES / "feeds.txt").urls
        urls = [f"{base}/{local_path(p).relative_to(SAMPLES).as_posix()}" for p in paths]
        print(f"Serving {len(urls)} sample feeds from {base} (loopback)")
        db = out / DEMO_DB
        for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            stale.unlink(missing_ok=True)  # the demo always starts from nothing
        for old_mail in (out / "outbox").glob("*.eml"):
            old_mail.unlink()
        # The outbox beside the demo's database, where `earshot --db ... serve` mails too.
        with LocalRuntime(LocalSettings(EARSHOT_DB=db)) as local:
            add_feeds(local.store, urls, test_fetch=False, out=io.StringIO())
            print(f"\n== Ingest: fetch, parse, store, match into {db} ==")
            for cycle in range(1, args.cycles + 1):
                print(format_cycle(run_cycle(local, cycle, check_all=True, concurrency=local.local.concurrency)))
            print("\n== Topics ==")
            for line in topics_demo_step(local.store, out, archive=local.store):
                print(line)
            print("\n== Digest ==")
            for line in digest_demo_step(local, out):
                print(line)
    finally:
        server.shutdown()
    print(f"\nDone. Open the files under {out}/; explore the demo's data with e.g.\n"
          f"  earshot --db {out / DEMO_DB} topics show mlp-finance\n"
          f"  earshot --db {out / DEMO_DB} serve   # then http://127.0.0.1:3000/topics/mlp-finance")
    return 0

