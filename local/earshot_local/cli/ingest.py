"""Ingest commands: ``parse``, ``feeds add|import|list``, ``run``, ``invoke``, ``info``."""

from __future__ import annotations

import argparse
import json
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from pydantic import BaseModel

from earshot import runtime
from earshot.errors import EarshotError
from earshot.ingest.parser import parse_feed
from earshot.ingest.refresh import FeedCheck, new_feed, refresh_feeds
from earshot.ingest.sources import is_local_source, read_source, source_url
from earshot.store import Store, iso
from earshot.topics.matching import match_new_episodes
from earshot_local import functions
from earshot_local.cli.common import CliError, add_backend_args, local_settings, open_local, open_store
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import domain_settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    p = fsub.add_parser("list", help="feeds with status, last/next check, errors and parse warnings")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_feeds_list)

    p = sub.add_parser("run", help="check due feeds now: fetch, parse, store, match (run it from cron)")
    p.add_argument("--feeds", type=Path, help="OPML or a text file of URLs / file paths to add first")
    p.add_argument("--all", action="store_true", help="check every feed now, due or not")
    p.add_argument("--cycles", type=int, default=1,
                   help="run this many cycles back to back (implies --all after the first)")
    p.add_argument("--json", action="store_true", help="print one JSON object per cycle")
    p.add_argument("--concurrency", type=int, default=None,
                   help="requests in flight at once (default 32; at most 2 per host whatever this is)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("invoke", help="run one real Lambda handler locally with an event file (like sam local invoke)")
    p.add_argument("function", help="folder under functions/ or template logical id (dispatcher, DispatcherFunction)")
    p.add_argument("event", nargs="?", help="event JSON file, or - for stdin")
    p.add_argument("-e", "--event", dest="event_opt", help="event JSON file (as sam local invoke)")
    p.set_defaults(func=cmd_invoke)

    p = sub.add_parser("info", help="where the local database is and what it holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)


# ------------------------------------------------------------------ parse
def cmd_parse(args: argparse.Namespace) -> int:
    settings = domain_settings()
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


def add_feeds(repo: Store, urls: list[str], *, test_fetch: bool, out: TextIO | None = None) -> int:
    """Add feeds; with ``test_fetch`` each URL is fetched and parsed first and refused with
    a clear message if it is not a feed. Returns how many were refused."""
    out = out or sys.stdout
    settings = domain_settings()
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
            count = len(parsed.episodes)
            # A new show publishes its channel before its first episode: that is a feed.
            episodes = "0 episodes yet" if count == 0 else f"{count} episode{'s' if count != 1 else ''}"
            print(f"added {url}  ({parsed.feed.title or 'untitled'}, {episodes})"
                  if repo.add_feed(feed) else f"already there: {url}", file=out)
        elif repo.add_feed(feed):
            print(f"added {url}", file=out)
    return refused


def cmd_feeds_add(args: argparse.Namespace) -> int:
    with open_store(args) as repo:
        refused = add_feeds(repo, args.urls, test_fetch=True)
    return 2 if refused else 0


def cmd_feeds_import(args: argparse.Namespace) -> int:
    urls = read_feed_list(args.file)
    with open_store(args) as repo:
        add_feeds(repo, urls, test_fetch=False)
    return 0


def cmd_feeds_list(args: argparse.Namespace) -> int:
    with open_store(args) as repo:
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
        for warning in f.parse_warnings or ():
            print(f"{'':8}warning: {warning}")
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
    seconds: float


def by_host_round_robin(checks: list[FeedCheck]) -> list[FeedCheck]:
    """Order checks so consecutive ones are on different hosts (the biggest host first):
    threads then spread over many hosts instead of queueing for one host's few slots.

    >>> [c.url for c in by_host_round_robin([FeedCheck(feed_id=str(i), url=u) for i, u in
    ...     enumerate(["http://a/1", "http://a/2", "http://b/1", "http://a/3"])])]
    ['http://a/1', 'http://b/1', 'http://a/2', 'http://a/3']
    """
    hosts: dict[str, list[FeedCheck]] = defaultdict(list)
    for check in checks:
        hosts[(urlsplit(check.url).hostname or "").lower()].append(check)
    lanes = sorted(hosts.values(), key=len, reverse=True)
    return [lane[i] for i in range(max(map(len, lanes), default=0)) for lane in lanes if i < len(lane)]


def run_cycle(local: LocalRuntime, cycle: int, *, check_all: bool, concurrency: int,
              progress: bool = False) -> CycleReport:
    """One cycle: every due feed (every feed with ``check_all``) fetched, parsed, stored
    and matched, each feed committed on its own, ``concurrency`` requests in flight and
    at most ``max_requests_per_host`` per host."""
    store = local.store
    settings = local.settings.with_(worker_threads=concurrency)
    started = time.perf_counter()
    checks = by_host_round_robin(
        [FeedCheck.from_state(f) for f in store.due_feeds(datetime.now(UTC), include_not_due=check_all)])
    futures = refresh_feeds(checks, repo=store, settings=settings, client=runtime.http_client(),
                            on_new_episodes=lambda feed, episodes: match_new_episodes(store, feed, episodes))
    results: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    new_episodes = 0
    for done, future in enumerate(futures, start=1):
        try:
            outcome = future.result()
        except Exception as exc:  # the database refused a write: the feed is checked again next run
            errors[f"store_error: {type(exc).__name__}"] += 1
            continue
        results[outcome.result] += 1
        new_episodes += outcome.new_episodes
        if outcome.error_kind:
            errors[outcome.error_kind] += 1
        if progress:
            _progress(done, len(checks))
    if progress:
        sys.stderr.write("\n")
    return CycleReport(
        cycle=cycle, feeds=len(checks), fetched=results["parsed"] + results["unchanged"],
        not_modified=results["not_modified"], unchanged=results["unchanged"], parsed=results["parsed"],
        new_episodes=new_episodes, errors=dict(sorted(errors.items())),
        seconds=round(time.perf_counter() - started, 3),
    )


def _progress(done: int, total: int) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} feeds")
    sys.stderr.flush()


def format_cycle(r: CycleReport) -> str:
    errors = ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())) or "none"
    return (f"cycle {r.cycle}: {r.feeds} feeds in {r.seconds:.2f}s — {r.parsed} parsed, {r.unchanged} unchanged, "
            f"{r.not_modified} not modified (304), {r.new_episodes} new episodes; errors: {errors}")


def cmd_run(args: argparse.Namespace) -> int:
    local_cfg = local_settings(args)
    concurrency = args.concurrency or local_cfg.concurrency
    if args.cycles < 1 or concurrency < 1:
        raise CliError("--cycles and --concurrency must be at least 1")
    urls = read_feed_list(args.feeds) if args.feeds else []
    with open_local(args) as local:
        add_feeds(local.store, urls, test_fetch=False, out=sys.stderr if args.json else sys.stdout)
        for cycle in range(1, args.cycles + 1):
            report = run_cycle(local, cycle, check_all=args.all or cycle > 1, concurrency=concurrency,
                               progress=not args.json and sys.stderr.isatty())
            print(report.model_dump_json() if args.json else format_cycle(report), flush=True)
    return 0


# ------------------------------------------------------------------ invoke
def read_event(path: str | None) -> dict[str, Any]:
    if path is None:
        raise CliError("give an event: earshot invoke FUNCTION EVENT.json (or -e EVENT.json, or - for stdin)")
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        event = json.loads(text)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read event {path}: {exc}") from exc
    if not isinstance(event, dict):
        raise CliError(f"event {path} is not a JSON object")
    return event


def cmd_invoke(args: argparse.Namespace) -> int:
    event = read_event(args.event_opt or args.event)
    try:
        function = functions.resolve_function(args.function)
    except LookupError as exc:
        raise CliError(str(exc)) from exc
    with open_local(args) as local:
        try:
            result = local.invoke(function, event)
        except Exception as exc:  # as sam local invoke: the error as JSON, exit non-zero
            print(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)[:2000]}))
            return 1
        if function == "dispatcher":  # the local event source: hand the queued checks to the worker
            local.drain(local.fetch_queue, "fetch_worker")
        elif function == "digest":
            local.drain(local.digest_queue, "digest_sender")
    print(json.dumps(result, indent=2, default=str))
    return 0


# ------------------------------------------------------------------ info
def cmd_info(args: argparse.Namespace) -> int:
    with open_local(args) as local:
        info = {"db": str(local.db_path), "schema_version": local.store.schema_version(),
                **local.store.counts(), "outbox": str(local.local.outbox_dir),
                "public_base_url": local.settings.public_base_url}
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            print(f"{key:15} {value}")
    return 0
