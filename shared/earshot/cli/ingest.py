"""Ingest commands: ``parse``, ``feeds add|import|list``, ``run``, ``invoke``."""

from __future__ import annotations

import argparse
import json
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel

from earshot import runtime
from earshot.cli import CliError
from earshot.errors import EarshotError
from earshot.local import EmbeddedBackend, sample_event
from earshot.parser import parse_feed
from earshot.refresh import new_feed
from earshot.repository import Repository, iso
from earshot.settings import Settings
from earshot.sources import is_local_source, read_source, source_url

STATE_PATH = Path(".earshot/local-db.json")
# Worker invocations in flight at once, like template.yaml's WorkerMaxConcurrency default.
DEFAULT_CONCURRENCY = 5
# The local CLI runs on the user's own machine with the user's own feed list, so it may
# fetch loopback/private addresses and read files; the Lambda functions never do.
LOCAL_CLI_ENV = {"EARSHOT_ALLOW_PRIVATE_ADDRESSES": "true"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parse", help="parse a feed (file or URL) and print normalized JSON")
    p.add_argument("source", help="file path or http(s) URL")
    p.set_defaults(func=cmd_parse)

    feeds = sub.add_parser("feeds", help="manage the feeds Earshot polls")
    add_backend_args(feeds)
    fsub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    p = fsub.add_parser("add", help="test-fetch and add feeds")
    p.add_argument("urls", nargs="+", metavar="URL")
    p.set_defaults(func=cmd_feeds_add)
    p = fsub.add_parser("import", help="add every feed in an OPML file or a text file of URLs")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_feeds_import)
    p = fsub.add_parser("list", help="feeds with status, last/next check and errors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_feeds_list)

    p = sub.add_parser("run", help="run the main job locally: dispatcher + workers on the embedded backend")
    p.add_argument("--feeds", type=Path, help="OPML or a text file of URLs / file paths to add first")
    p.add_argument("--cycles", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object per cycle")
    p.add_argument("--fresh", action="store_true", help="start from an empty local table")
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                   help=f"worker invocations at once (default {DEFAULT_CONCURRENCY}, as deployed)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("invoke", help="run one real Lambda handler locally with an event file")
    p.add_argument("function", help="folder name under functions/ (e.g. dispatcher, fetch_worker)")
    p.add_argument("event", type=Path, help="event JSON, e.g. events/dispatcher_scheduled.json")
    p.set_defaults(func=cmd_invoke)


# ------------------------------------------------------------------ backends
def add_backend_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", choices=("local", "aws"), default="local",
        help="local: embedded moto, state in .earshot/ (default); aws: the deployed stack "
             "(TABLE_NAME etc. from the environment, see README)",
    )


@contextmanager
def open_backend(args: argparse.Namespace) -> Iterator[Repository]:
    """The repository for ``--backend``: the embedded stack (persisted) or the deployed one."""
    if getattr(args, "backend", "local") == "aws":
        yield runtime.repository()
        return
    with EmbeddedBackend(state_path=STATE_PATH, extra_env=LOCAL_CLI_ENV):
        yield runtime.repository()


def local_settings() -> Settings:
    return Settings.from_env(EARSHOT_ALLOW_PRIVATE_ADDRESSES="true")


# ------------------------------------------------------------------ parse
def cmd_parse(args: argparse.Namespace) -> int:
    settings = local_settings()
    result = read_source(args.source, settings=settings)
    parsed = parse_feed(result.body or b"", url=result.url)
    out = {
        "feed": parsed.feed.model_dump(mode="json"),
        "episodes": [e.model_dump(mode="json", exclude={"content_hash", "feed_id"}) for e in parsed.episodes],
        "warnings": parsed.warnings,
    }
    json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


# ------------------------------------------------------------------ feeds
def read_feed_list(path: Path) -> list[str]:
    """URLs from an OPML file (``xmlUrl`` attributes) or a text file (one per line, # comments).

    Relative file paths in a text list are taken relative to the list's folder.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if text.lstrip().startswith("<"):
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise CliError(f"{path} is not valid OPML: {exc}") from exc
        return [o.get("xmlUrl", "").strip() for o in root.iter("outline") if o.get("xmlUrl", "").strip()]
    urls = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("http") else line.strip()
        if not line:
            continue
        urls.append(source_url(str(path.parent / line)) if is_local_source(line) else line)
    return urls


def add_feeds(repo: Repository, urls: list[str], *, test_fetch: bool, out: TextIO | None = None) -> int:
    """Add feeds; with ``test_fetch`` each URL is fetched and parsed first and refused with
    a clear message if it is not a feed. Returns how many were refused."""
    out = out or sys.stdout
    settings = local_settings()
    refused = 0
    now = datetime.now(UTC)
    for url in urls:
        url = source_url(url)
        feed = new_feed(url, now)
        if test_fetch:
            try:
                result = read_source(url, settings=settings)
                parsed = parse_feed(result.body or b"", url=result.url)
            except EarshotError as exc:
                refused += 1
                print(f"error: {url} is not a usable feed: {exc}", file=sys.stderr)
                continue
            feed.title = parsed.feed.title
            print(f"added {url}  ({parsed.feed.title or 'untitled'}, {len(parsed.episodes)} episodes)"
                  if repo.add_feed(feed) else f"already there: {url}", file=out)
        elif repo.add_feed(feed):
            print(f"added {url}", file=out)
    return refused


def cmd_feeds_add(args: argparse.Namespace) -> int:
    with open_backend(args) as repo:
        refused = add_feeds(repo, args.urls, test_fetch=True)
    return 2 if refused else 0


def cmd_feeds_import(args: argparse.Namespace) -> int:
    urls = read_feed_list(args.file)
    with open_backend(args) as repo:
        add_feeds(repo, urls, test_fetch=False)
    return 0


def cmd_feeds_list(args: argparse.Namespace) -> int:
    with open_backend(args) as repo:
        feeds = sorted(repo.list_feeds(), key=lambda f: f.url)
    if args.json:
        for f in feeds:
            print(f.model_dump_json())
        return 0
    if not feeds:
        print("no feeds yet: earshot feeds add URL")
        return 0
    print(f"{'STATUS':7} {'LAST':8} {'ERR':>3} {'LAST CHECK':20} {'NEXT CHECK':20} {'EPS':>5}  URL / TITLE")
    for f in feeds:
        problem = f"  [{f.last_error_kind}: {f.last_error_message}]" if f.last_error_kind else ""
        print(f"{f.status:7} {str(f.last_status or '-'):8} {f.error_count:>3} {iso(f.last_checked_at) or 'never':20} "
              f"{iso(f.next_check_at) or '-':20} {f.episode_count:>5}  {f.url}  {f.title}{problem}")
    return 0


# ------------------------------------------------------------------ run
class CycleReport(BaseModel):
    cycle: int
    feeds: int
    fetched: int
    not_modified: int
    unchanged: int
    parsed: int
    new_episodes: int
    errors: dict[str, int]
    aws_calls: dict[str, int]
    aws_seconds: float
    seconds: float


def run_cycle(backend: EmbeddedBackend, cycle: int, *, concurrency: int = DEFAULT_CONCURRENCY,
              progress: bool = False) -> CycleReport:
    """One cycle: the real dispatcher handler (forced: every feed now), then the real worker
    handler on the queue's batches of 10, ``concurrency`` invocations at a time as the SQS
    event source runs up to ``WorkerMaxConcurrency`` workers. Counters cover only these calls."""
    repo = runtime.repository()
    queue_url = backend.settings.fetch_queue_url
    before = {f.feed_id: f.episode_count for f in repo.list_feeds()}
    backend.reset_counters()
    started = time.perf_counter()
    dispatched = backend.invoke("dispatcher", {**sample_event("dispatcher_scheduled"), "force": True})
    total, done = dispatched["queued"], 0
    batches = list(iter(lambda: backend.receive_sqs_event(queue_url), None))
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="worker") as pool:
        running = {pool.submit(backend.invoke, "fetch_worker", event): event for event in batches}
        for future in as_completed(running):
            event = running[future]
            failed = {f["itemIdentifier"] for f in future.result().get("batchItemFailures", [])}
            backend.delete_messages(queue_url, event, keep=failed)  # failed ones come back later
            done += len(event["Records"])
            if progress:
                _progress(done, total)
    seconds = time.perf_counter() - started
    calls, aws_seconds = dict(backend.aws_calls), backend.aws_seconds
    if progress:
        sys.stderr.write("\n")
    feeds = list(repo.list_feeds())  # after counting: reporting is not part of the job
    results = Counter(f.last_result for f in feeds)
    return CycleReport(
        cycle=cycle, feeds=total,
        fetched=results["parsed"] + results["unchanged"],
        not_modified=results["not_modified"], unchanged=results["unchanged"], parsed=results["parsed"],
        new_episodes=sum(f.episode_count - before.get(f.feed_id, 0) for f in feeds),
        errors=dict(Counter(f.last_error_kind for f in feeds if f.last_result in ("error", "gone"))),
        aws_calls=dict(sorted(calls.items())), aws_seconds=round(aws_seconds, 3), seconds=round(seconds, 3),
    )


def _progress(done: int, total: int) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} feeds")
    sys.stderr.flush()


def format_cycle(r: CycleReport) -> str:
    errors = ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())) or "none"
    writes = sum(v for k, v in r.aws_calls.items() if k in ("PutItem", "UpdateItem", "BatchWriteItem", "DeleteItem"))
    return (f"cycle {r.cycle}: {r.feeds} feeds in {r.seconds:.2f}s — {r.parsed} parsed, {r.unchanged} unchanged, "
            f"{r.not_modified} not modified (304), {r.new_episodes} new episodes; errors: {errors}; "
            f"{sum(r.aws_calls.values())} AWS requests ({writes} DynamoDB writes)")


def cmd_run(args: argparse.Namespace) -> int:
    if args.cycles < 1 or args.concurrency < 1:
        raise CliError("--cycles and --concurrency must be at least 1")
    urls = read_feed_list(args.feeds) if args.feeds else []
    with EmbeddedBackend(state_path=None if args.fresh else STATE_PATH, extra_env=LOCAL_CLI_ENV) as backend:
        repo = runtime.repository()
        add_feeds(repo, urls, test_fetch=False, out=sys.stderr if args.json else sys.stdout)
        for cycle in range(1, args.cycles + 1):
            report = run_cycle(backend, cycle, concurrency=args.concurrency,
                               progress=not args.json and sys.stderr.isatty())
            print(report.model_dump_json() if args.json else format_cycle(report), flush=True)
    return 0


# ------------------------------------------------------------------ invoke
def cmd_invoke(args: argparse.Namespace) -> int:
    try:
        event: dict[str, Any] = json.loads(args.event.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read event {args.event}: {exc}") from exc
    with EmbeddedBackend(state_path=STATE_PATH, extra_env=LOCAL_CLI_ENV) as backend:
        try:
            result = backend.invoke(args.function, event)
        except LookupError as exc:
            raise CliError(str(exc)) from exc
    print(json.dumps(result, indent=2, default=str))
    return 0
