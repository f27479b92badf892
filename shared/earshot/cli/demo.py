"""``earshot demo``: the whole product end to end on this machine, no AWS account.

1. serve the sample feeds in ``samples/`` from a loopback HTTP server (so the real HTTP
   path runs: conditional GETs, Last-Modified, 304s);
2. ``earshot run`` twice on the embedded backend (moto): episodes stored, then mostly 304;
3. define the sample topics and write their pages to ``out/topics/``;
4. subscribe and confirm a sample address through the API handler, run the weekly digest
   handlers, and write the mails SES captured to ``out/mail/``.
"""

from __future__ import annotations

import argparse
import functools
import io
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from earshot import runtime
from earshot.cli.digest import demo_step as digest_demo_step
from earshot.cli.ingest import LOCAL_CLI_ENV, add_feeds, format_cycle, read_feed_list, run_cycle
from earshot.cli.topics import demo_step as topics_demo_step
from earshot.local import REPO_ROOT, EmbeddedBackend
from earshot.sources import local_path

SAMPLES = REPO_ROOT / "samples"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run Earshot end to end locally (sample feeds, topics, digest)")
    p.add_argument("--out", type=Path, default=Path("out"), help="where pages and mails are written")
    p.add_argument("--cycles", type=int, default=2)
    p.add_argument("--save-state", type=Path, metavar="FILE",
                   help="keep the demo's data in FILE (e.g. .earshot/local-db.json for later commands)")
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
        paths = read_feed_list(SAMPLES / "feeds.txt")
        urls = [f"{base}/{local_path(p).relative_to(SAMPLES).as_posix()}" for p in paths]
        print(f"Serving {len(urls)} sample feeds from {base} (loopback)")
        if args.save_state:
            args.save_state.unlink(missing_ok=True)  # the demo always starts from nothing
        with EmbeddedBackend(state_path=args.save_state, extra_env=LOCAL_CLI_ENV) as backend:
            add_feeds(runtime.repository(), urls, test_fetch=False, out=io.StringIO())
            print("\n== Ingest: dispatcher + fetch workers on the embedded backend ==")
            for cycle in range(1, args.cycles + 1):
                print(format_cycle(run_cycle(backend, cycle)))
            for title, step in (("Topics", topics_demo_step), ("Digest", digest_demo_step)):
                print(f"\n== {title} ==")
                for line in step(backend, out):
                    print(line)
    finally:
        server.shutdown()
    print(f"\nDone. Open the files under {out}/")
    return 0

