"""Ingest commands: ``parse``, ``feeds add|import|list|remove``, ``run``, ``invoke``, ``info``."""

from __future__ import annotations

import argparse
import codecs
import json
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from earshot import runtime
from earshot.errors import EarshotError, InvalidUrl, ParseError
from earshot.ingest.parser import PARSER_CHOICES, BatchedFeed, parse_in_batches
from earshot.ingest.politeness import HostBusy, SlotStats
from earshot.ingest.refresh import FeedCheck, new_feed, refresh_feeds
from earshot.ingest.sources import is_local_source, local_path, read_source, source_url
from earshot.models import Episode, FeedState
from earshot.store import Store, feed_id_for, iso
from earshot.topics.matching import match_new_episodes
from earshot.transcripts.choice import choose
from earshot.transcripts.retrieval import TranscriptJob, jobs_for
from earshot.urls import checked_feed_url
from earshot_local import functions
from earshot_local.cli.common import ANY_BACKEND, CliError, local_settings, open_local, open_store
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import domain_settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("parse", help="parse a feed (file or URL) and print normalized JSON")
    p.add_argument("source", help="feed file path or http(s) URL")
    p.add_argument("--parser", choices=PARSER_CHOICES, default=None,
                   help="auto: the fast path, feedparser for what it declines (default: EARSHOT_PARSER, else auto); "
                        "feedparser: feedparser only, to compare")
    p.set_defaults(func=cmd_parse, backends=None)

    feeds = sub.add_parser("feeds", help="manage the feeds Earshot polls")
    fsub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    p = fsub.add_parser("add", help="test-fetch and add feeds (a URL that is not a feed is refused, and why)")
    p.add_argument("urls", nargs="+", metavar="URL", help="feed URL, or a feed file's path")
    p.set_defaults(func=cmd_feeds_add, backends=ANY_BACKEND)
    p = fsub.add_parser("import", help="add every feed in an OPML file or a text file of URLs, then summarize")
    p.add_argument("file", type=Path,
                   help="OPML (e.g. exported from a podcast app) or text: one URL or file path a line, # comments")
    p.set_defaults(func=cmd_feeds_import, backends=ANY_BACKEND)
    p = fsub.add_parser("list", help="feeds with status, last/next check, errors and parse warnings")
    p.add_argument("--status", choices=("active", "error", "gone"), help="only feeds with this status")
    p.add_argument("--error", metavar="KIND",
                   help="only feeds whose last error is this kind, or starts with it (not_a_feed, http_404, http)")
    p.add_argument("--json", action="store_true", help="one JSON object per feed (every stored field)")
    p.set_defaults(func=cmd_feeds_list, backends=ANY_BACKEND)
    p = fsub.add_parser("remove", help="stop polling feeds and drop their episodes from every topic")
    p.add_argument("feeds", nargs="+", metavar="URL|FEED_ID", help="as `earshot feeds list` shows it")
    p.set_defaults(func=cmd_feeds_remove, backends=ANY_BACKEND)

    p = sub.add_parser("run", help="check due feeds now: fetch, parse, store, match (run it from cron)")
    p.add_argument("--feeds", type=Path, metavar="FILE", help="OPML or a text file of URLs / file paths to add first")
    p.add_argument("--all", action="store_true", help="check every feed now, due or not")
    p.add_argument("--cycles", type=int, default=1, metavar="N",
                   help="run N cycles back to back (each after the first checks every feed); default 1")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per cycle (keys in the README), failed feeds included")
    p.add_argument("--no-transcripts", dest="transcripts", action="store_false",
                   help="leave new episodes' transcripts queued in the database (the next run fetches them)")
    p.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="requests in flight at once (default 32; per host 2 at first, up to 6 while it "
                        "answers fast, across every earshot process on this database)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("invoke", help="run one real Lambda handler locally with an event file (like sam local invoke)")
    p.add_argument("function", help="folder under functions/ or template logical id (dispatcher, DispatcherFunction)")
    p.add_argument("event", nargs="?", help="event JSON file, or - for stdin (samples in events/)")
    p.add_argument("-e", "--event", dest="event_opt", metavar="EVENT",
                   help="event JSON file, or - for stdin (as sam local invoke -e)")
    p.set_defaults(func=cmd_invoke)

    p = sub.add_parser("info", help="where the local database is and what it holds")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_info)


# ------------------------------------------------------------------ parse
def cmd_parse(args: argparse.Namespace) -> int:
    settings = domain_settings()
    try:
        result = read_source(args.source, settings=settings)
        parsed = parse_in_batches(result.body or b"", url=result.url, parser=args.parser or settings.parser)
    except EarshotError as exc:
        raise CliError(problem_with(args.source, exc)) from None
    del result  # parsed: the body can go while the episodes are printed
    with parsed:
        _print_parsed(parsed, sys.stdout)
    return 0


def _print_parsed(parsed: BatchedFeed, out: TextIO) -> None:
    """``{"feed": ..., "episodes": [...], "warnings": [...]}`` as ``json.dump(indent=2)``
    writes it, the episodes a batch at a time (a feed of 30,000 is never all in memory)."""
    def dumped(value: Any, level: int) -> str:
        # JSON escapes line breaks inside strings: every raw one is the indentation's.
        return json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n" + "  " * level)

    out.write('{\n  "feed": ' + dumped(parsed.feed.model_dump(mode="json"), 1) + ',\n  "episodes": [')
    separator = "\n    "
    for batch in parsed.batches():
        for episode in batch:
            out.write(separator + dumped(_episode_json(episode), 2))
            separator = ",\n    "
    out.write(("]" if separator == "\n    " else "\n  ]") + ',\n  "warnings": ' + dumped(parsed.warnings, 1) + "\n}\n")


def _episode_json(episode: Episode) -> dict[str, Any]:
    """An episode as ``earshot parse`` prints it, with the transcript Earshot would fetch
    (``transcript``: the best of ``transcripts``, or null)."""
    data = episode.model_dump(mode="json", exclude={"content_hash", "feed_id"})
    chosen = choose(episode.transcripts)
    data["transcript"] = chosen[0].model_dump(mode="json") if chosen else None
    return data


def problem_with(source: str, exc: EarshotError) -> str:
    """What went wrong with a feed, in words, naming it once: fetch errors already name
    their URL; a document that is not a feed is said to be one."""
    if isinstance(exc, ParseError):
        return f"{source} is not a usable feed: {exc}"
    return str(exc) if source in str(exc) else f"{source}: {exc}"


# ------------------------------------------------------------------ feeds
@dataclass
class FeedList:
    """What a feed list file holds: the feeds to add, and the entries refused, with why."""

    path: Path
    kind: str  # "OPML" or "text list"
    urls: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


_INLINE_COMMENT = re.compile(r"\s+#.*$")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_DECLARATION_TEXT = re.compile(r"^\s*<\?xml[^>]*\?>")
_XML_DECLARATION = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["'][^>]*\?>""")


def decode_list_file(path: Path, data: bytes) -> str:
    """A feed list's text: the encoding its byte order mark names, else the one its XML
    declaration names (XML 1.0 §4.3.3: OPML exported as Latin-1 or Shift_JIS says so),
    else UTF-8. The declaration is removed, so the XML parser reads the decoded text as is
    (Python's expat cannot decode multi-byte encodings such as Shift_JIS itself).

    >>> decode_list_file(Path("x"), "<?xml version='1.0' encoding='ISO-8859-1'?><opml/>".encode("latin-1"))
    '<opml/>'
    >>> decode_list_file(Path("x"), codecs.BOM_UTF16_LE + "<opml/>".encode("utf-16-le"))
    '<opml/>'
    """
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    declared = _XML_DECLARATION.match(data) if encoding is None else None
    if declared is not None:
        encoding = declared[1].decode("ascii")
    try:
        text = data.decode(encoding or "utf-8")
    except LookupError:
        raise CliError(f"{path} declares an encoding Earshot does not know: {encoding}") from None
    except UnicodeDecodeError as exc:
        said = f"its declared {encoding}" if encoding else "UTF-8 (it declares no encoding)"
        raise CliError(f"{path} is not text in {said}: byte {exc.start} cannot be read") from None
    return _DECLARATION_TEXT.sub("", text.removeprefix("\ufeff"), count=1)


def read_feed_list(path: Path) -> FeedList:
    """Feeds from an OPML file (``xmlUrl`` attributes) or a text file (one URL or feed file
    path a line; ``#`` starts a comment, at the start of a line or after a space).

    Relative file paths in a text list are taken relative to the list's folder. Entries
    that cannot be feeds (not http(s), a missing file, text with spaces) are refused with
    the reason; a file that is neither OPML nor a text list (an HTML page, a feed itself)
    is an error.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    text = decode_list_file(path, data)
    head = text.lstrip()[:2000].lower()
    if head.startswith("<"):
        if "<html" in head or head.startswith("<!doctype html"):
            raise CliError(f"{path} is an HTML page, not OPML or a list of feed URLs")
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise CliError(f"{path} is not valid OPML: {exc}") from exc
        tag = root.tag.rsplit("}", 1)[-1].lower()
        if tag in ("rss", "feed", "rdf"):
            raise CliError(f"{path} is a feed itself, not a list of feeds: add it with `earshot feeds add {path}`")
        if tag != "opml":
            raise CliError(f"{path} is XML but not OPML (its root element is <{tag}>)")
        found = FeedList(path, "OPML")
        for outline in root.iter("outline"):
            url = (outline.get("xmlUrl") or "").strip()
            if url:
                _take(found, url)
            elif (outline.get("type") or "").lower() == "rss":
                found.refused.append((outline.get("text") or outline.get("title") or "an outline",
                                      "type rss but no xmlUrl"))
        return found
    found = FeedList(path, "text list")
    for line in text.splitlines():
        entry = line.strip()
        if entry.startswith("#"):
            continue
        entry = _INLINE_COMMENT.sub("", entry).strip()
        if entry:
            _take(found, entry, relative_to=path.parent)
    return found


def _take(found: FeedList, entry: str, *, relative_to: Path | None = None) -> None:
    """Add an entry of a list to its feeds, or refuse it with the reason. URLs pass the
    one door of stored feed URLs (``earshot.urls``); file paths are taken only from text
    lists (``relative_to``), never from OPML, where a ``file:`` URL is someone else's."""
    if relative_to is None or not is_local_source(entry) or any(c.isspace() or not c.isprintable() for c in entry):
        try:
            found.urls.append(checked_feed_url(entry))
        except InvalidUrl as exc:
            found.refused.append((printable(entry), str(exc)))
    else:
        file = local_path(entry)
        if relative_to is not None and not file.is_absolute():
            file = relative_to / file
        if file.is_file():
            found.urls.append(source_url(str(file)))
        else:
            found.refused.append((entry, "no such file"))


@dataclass
class AddSummary:
    added: int = 0
    already: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.added} added, {self.already} already there, {len(self.refused)} refused"


def add_feeds(repo: Store, urls: list[str], *, test_fetch: bool, out: TextIO | None = None) -> AddSummary:
    """Add feeds; with ``test_fetch`` each URL is fetched and parsed first and refused with
    a clear message if it is not a feed. Prints a line per feed to ``out`` (refusals to
    stderr) and returns the counts."""
    out = out or sys.stdout
    settings = domain_settings()
    summary = AddSummary()
    now = datetime.now(UTC)
    for url in urls:
        url = source_url(url)
        try:
            feed = new_feed(url, now)  # the one door of stored feed URLs
        except InvalidUrl as exc:
            shown = printable(url)
            summary.refused.append((shown, f"{shown}: {exc}"))
            print(f"error: {shown}: {exc}", file=sys.stderr)
            continue
        detail = ""
        if test_fetch:
            try:
                result = read_source(url, settings=settings)
                with parse_in_batches(result.body or b"", url=result.url, parser=settings.parser) as parsed:
                    info, count = parsed.feed, parsed.episode_count
            except EarshotError as exc:
                summary.refused.append((url, problem_with(url, exc)))
                print(f"error: {problem_with(url, exc)}", file=sys.stderr)
                continue
            feed.title = info.title
            feed.author, feed.link, feed.podcast_guid = info.author, info.link, info.podcast_guid
            # A new show publishes its channel before its first episode: that is a feed.
            episodes = "0 episodes yet" if count == 0 else f"{count} episode{'s' if count != 1 else ''}"
            detail = f"  ({info.title or 'untitled'}, {episodes})"
        if repo.add_feed(feed):
            summary.added += 1
            print(f"added {url}{detail}", file=out)
        else:
            summary.already += 1
            print(f"already there: {url}", file=out)
    return summary


def printable(text: str, max_chars: int = 200) -> str:
    r"""``text`` safe to print on one line: control characters and line breaks escaped, cut short.

    >>> print(printable("http://a/" + chr(13) + chr(10) + "b"))
    http://a/\r\nb
    """
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return shown if len(shown) <= max_chars else shown[: max_chars - 1] + "…"


def cmd_feeds_add(args: argparse.Namespace) -> int:
    with open_store(args) as repo:
        summary = add_feeds(repo, args.urls, test_fetch=True)
    if len(args.urls) > 1:
        print(summary.line())
    return 2 if summary.refused else 0


def import_feed_list(repo: Store, path: Path, *, out: TextIO) -> AddSummary:
    """Add every feed of a list file and print what happened: a line per feed, each
    refused entry with its reason (stderr), and a summary, whatever the file held."""
    found = read_feed_list(path)
    summary = add_feeds(repo, found.urls, test_fetch=False, out=out)
    for entry, reason in found.refused:
        print(f"refused {entry}: {reason}", file=sys.stderr)
    summary.refused = found.refused + summary.refused
    if not found.urls and not found.refused:
        hint = "<outline xmlUrl=...> entries" if found.kind == "OPML" else "one feed URL or file path a line"
        print(f"no feeds in {path} (looked for {hint})", file=out)
    print(f"{path}: {summary.line()}", file=out)
    return summary


def cmd_feeds_import(args: argparse.Namespace) -> int:
    with open_store(args) as repo:
        summary = import_feed_list(repo, args.file, out=sys.stdout)
    return 2 if summary.refused else 0


def _stored_feed_id(repo: Store, given: str) -> str | None:
    """The id of a stored feed given by id or URL (or file path); a feed that moved (301)
    keeps the id of the URL it was added with, so its current URL is looked up too."""
    for candidate in (given, feed_id_for(source_url(given))):
        if repo.get_feed(candidate) is not None:
            return candidate
    return next((f.feed_id for f in repo.list_feeds() if f.url in (given, source_url(given))), None)


def cmd_feeds_remove(args: argparse.Namespace) -> int:
    missing = []
    with open_store(args) as repo:
        for given in args.feeds:
            feed_id = _stored_feed_id(repo, given)
            if feed_id is not None and repo.delete_feed(feed_id):
                print(f"removed {given}")
            else:
                missing.append(given)
    if missing:
        raise CliError(f"no such feed: {', '.join(missing)} (see `earshot feeds list`)")
    return 0


def _matches_filter(feed: FeedState, args: argparse.Namespace) -> bool:
    if args.status and feed.status != args.status:
        return False
    return not args.error or (feed.last_error_kind or "").startswith(args.error)


def cmd_feeds_list(args: argparse.Namespace) -> int:
    with open_store(args) as repo:
        every = sorted(repo.list_feeds(), key=lambda f: f.url)
    feeds = [f for f in every if _matches_filter(f, args)]
    if args.json:
        for f in feeds:
            print(f.model_dump_json())
        return 0
    if not every:
        print("no feeds yet: earshot feeds add URL")
        return 0
    if not feeds:
        print(f"none of the {len(every)} feeds match")
        return 0
    print(f"{'STATUS':7} {'LAST':8} {'ERR':>3} {'LAST CHECK':20} {'NEXT CHECK':20} {'EPS':>5}  URL / TITLE")
    for f in feeds:
        problem = f"  [{f.last_error_kind}: {f.last_error_message}]" if f.last_error_kind else ""
        print(f"{f.status:7} {str(f.last_status or '-'):8} {f.error_count:>3} {iso(f.last_checked_at) or 'never':20} "
              f"{iso(f.next_check_at) or '-':20} {f.episode_count:>5}  {printable(f.url, 2000)}  {f.title}{problem}")
        for warning in f.parse_warnings or ():
            print(f"{'':8}warning: {warning}")
    return 0


# ------------------------------------------------------------------ run
class FailedFeed(BaseModel):
    url: str
    kind: str
    message: str


class CycleReport(BaseModel):
    cycle: int
    feeds: int
    fetched: int
    not_modified: int
    unchanged: int
    parsed: int
    new_episodes: int
    errors: dict[str, int]
    seconds: float = Field(description="the feed cycle: fetch, parse, store and match (transcripts apart)")
    failed: list[FailedFeed] = Field(default_factory=list, description="each feed that failed, and why")
    transcripts: dict[str, int] = Field(
        default_factory=dict, description="transcripts handled this cycle, by result (fetched, retrying, failed)")
    transcript_seconds: float = Field(
        0.0, description="the transcript queue's drain after the feed cycle (0 with --no-transcripts)")
    deferred: int = Field(0, description="feeds not checked: their host asked to wait (Retry-After); still due")
    host_slot_calls_per_check: float = Field(0.0, description="database round trips the per-host limit cost")


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
              progress: bool = False, transcripts: bool = True) -> CycleReport:
    """One cycle: every due feed (every feed with ``check_all``) fetched, parsed, stored
    and matched, each feed committed on its own, ``concurrency`` requests in flight and
    each host within the slots it is leased on this database (shared with every other
    ``earshot`` process on it; a host whose slots are all taken is served later in the
    cycle, not waited on).

    Then, with ``transcripts``, the transcript queue is drained (this cycle's new
    episodes' transcripts and earlier retries now due), timed apart from the feed cycle:
    transcript hosts are other hosts, often slower, and their time is not the feeds'.
    Without it the jobs stay queued in the database for the next run that drains."""
    store = local.store
    settings = local.settings.with_(worker_threads=concurrency)
    started = time.perf_counter()
    checks = by_host_round_robin(
        [FeedCheck.from_state(f) for f in store.due_feeds(datetime.now(UTC), include_not_due=check_all)])
    slot_stats = SlotStats()
    transcript_jobs: dict[str, list[dict[str, Any]]] = {}

    def on_new_episodes(feed: FeedState, new: list[Episode], changed: list[Episode]) -> int:
        # Once per batch of the feed's episodes; one thread per feed: no lock needed.
        transcript_jobs.setdefault(feed.feed_id, []).extend(jobs_for(feed.feed_id, new + changed))
        return match_new_episodes(store, feed, new + changed, changed_ids=[e.id for e in changed])

    futures = refresh_feeds(checks, repo=store, settings=settings,
                            client=runtime.http_client(settings),  # a connection for each of the cycle's threads
                            on_new_episodes=on_new_episodes, stats=slot_stats)
    results: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    failed: list[FailedFeed] = []
    new_episodes = deferred = 0
    for done, (check, future) in enumerate(zip(checks, futures, strict=True), start=1):
        try:
            outcome = future.result()
        except HostBusy:  # untouched, so still due: the next run checks it
            deferred += 1
            continue
        except Exception as exc:  # the database refused a write: the feed is checked again next run
            errors[f"store_error: {type(exc).__name__}"] += 1
            failed.append(FailedFeed(url=check.url, kind="store_error", message=f"{type(exc).__name__}: {exc}"))
            continue
        results[outcome.result] += 1
        if outcome.result == "parsed" and (jobs := transcript_jobs.get(outcome.feed_id)):
            local.transcript_queue.send_messages(jobs)
        new_episodes += outcome.new_episodes
        if outcome.error_kind:
            errors[outcome.error_kind] += 1
            failed.append(FailedFeed(url=outcome.url, kind=outcome.error_kind, message=outcome.error_message or ""))
        if progress:
            _progress(done, len(checks))
    if progress:
        sys.stderr.write("\n")
    feeds_done = time.perf_counter()
    handled = run_transcripts(local) if transcripts else {}
    return CycleReport(
        cycle=cycle, feeds=len(checks), fetched=results["parsed"] + results["unchanged"],
        not_modified=results["not_modified"], unchanged=results["unchanged"], parsed=results["parsed"],
        new_episodes=new_episodes, errors=dict(sorted(errors.items())),
        seconds=round(feeds_done - started, 3), failed=sorted(failed, key=lambda f: (f.kind, f.url)),
        transcripts=handled, transcript_seconds=round(time.perf_counter() - feeds_done, 3) if transcripts else 0.0,
        deferred=deferred, host_slot_calls_per_check=round(slot_stats.calls_per_check, 3),
    )


def run_transcripts(local: LocalRuntime) -> dict[str, int]:
    """Hand the transcript queue to the transcript worker: this cycle's new episodes, and
    earlier ones still queued (a run with ``--no-transcripts``, retries whose delay has
    passed). Counts the jobs handed over by their state after it."""
    due = [TranscriptJob.model_validate_json(body)
           for _, body in local.store.peek_messages(local.transcript_queue.name, 1_000_000)]
    local.drain(local.transcript_queue, "transcript_worker")
    counts: Counter[str] = Counter()
    for job in {(j.feed_id, j.episode_id): j for j in due}.values():
        state = local.store.get_transcript_state(job.feed_id, job.episode_id)
        counts[state.status if state else "skipped"] += 1
    return dict(sorted(counts.items()))


def _progress(done: int, total: int) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} feeds")
    sys.stderr.flush()


def format_cycle(r: CycleReport, *, failures: int = 20) -> str:
    """The cycle in one line, then each failed feed (the first ``failures``) and how to find them."""
    errors = ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())) or "none"
    lines = [f"cycle {r.cycle}: {r.feeds} feeds in {r.seconds:.2f}s — {r.parsed} parsed, {r.unchanged} unchanged, "
             f"{r.not_modified} not modified (304), {r.new_episodes} new episodes; errors: {errors}"
             + (f"; transcripts: {', '.join(f'{k} {v}' for k, v in r.transcripts.items())} "
                f"in {r.transcript_seconds:.2f}s" if r.transcripts else "")
             + (f"; {r.deferred} deferred (their hosts asked to wait; still due)" if r.deferred else "")]
    lines += [f"  {f.kind}: {f.url}  ({f.message})" if f.message and f.url not in f.message
              else f"  {f.kind}: {f.message or f.url}" for f in r.failed[:failures]]
    if r.failed:
        more = f"{len(r.failed) - failures} more; " if len(r.failed) > failures else ""
        lines.append(f"  ({more}all of them: earshot feeds list --status error)")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    local_cfg = local_settings(args)
    concurrency = args.concurrency or local_cfg.concurrency
    if args.cycles < 1 or concurrency < 1:
        raise CliError("--cycles and --concurrency must be at least 1")
    with open_local(args) as local:
        if args.feeds:
            import_feed_list(local.store, args.feeds, out=sys.stderr if args.json else sys.stdout)
        for cycle in range(1, args.cycles + 1):
            report = run_cycle(local, cycle, check_all=args.all or cycle > 1, concurrency=concurrency,
                               progress=not args.json and sys.stderr.isatty(), transcripts=args.transcripts)
            print(report.model_dump_json() if args.json else format_cycle(report), flush=True)
    return 0


# ------------------------------------------------------------------ invoke
def read_event(path: str | None) -> Any:
    """The event JSON from a file or stdin (its shape is checked by ``functions.check_event``)."""
    if path is None:
        raise CliError("give an event: earshot invoke FUNCTION EVENT.json (or -e EVENT.json, or - for stdin)")
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        return json.loads(text)
    except OSError as exc:
        raise CliError(f"cannot read event {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise CliError(f"event {'on stdin' if path == '-' else path} is not JSON: {exc}") from exc


def cmd_invoke(args: argparse.Namespace) -> int:
    if args.event_opt and args.event:
        raise CliError("give the event once: earshot invoke FUNCTION EVENT.json, or -e EVENT.json")
    try:
        function = functions.resolve_function(args.function)
    except LookupError as exc:
        raise CliError(str(exc)) from exc
    event = read_event(args.event_opt or args.event)
    try:
        functions.check_event(function, event)
    except functions.WrongEvent as exc:
        raise CliError(str(exc)) from None
    with open_local(args) as local:
        try:
            result = local.invoke(function, event)
        except Exception as exc:  # as sam local invoke: the error as JSON, exit non-zero
            print(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)[:2000]}))
            print(f"error: {function} failed: {type(exc).__name__}", file=sys.stderr)
            return 1
        if function == "dispatcher":  # the local event source: hand the queued checks to the worker
            local.drain(local.fetch_queue, "fetch_worker")
        if function in ("dispatcher", "fetch_worker"):  # and the transcripts of new episodes to theirs
            local.drain(local.transcript_queue, "transcript_worker")
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
