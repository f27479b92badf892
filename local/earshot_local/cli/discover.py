"""Discovery commands: ``discover`` (a query, no database) and, for stored topics,
``topics discover|candidates|approve|reject|autodiscover``.

``discover --json`` prints one JSON object per candidate, best first::

    {"feed_url": ..., "title": ..., "sources": ["apple", "podcastindex"], "checked": 40,
     "matches": 9, "score": 10.8, "examples": [{"title": ..., "published": ..., "reason": ...}],
     "explanation": "9 of the last 40 episodes match; latest 13 May 2025: '...'", "error": null}

Directory failures (a 429, a malformed answer) are printed as ``warning: ...`` on stderr
and the run goes on with what the other directories and terms found; only a run where
every directory failed is an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import cast

from earshot.directory.clients import SOURCES, Source
from earshot.directory.discovery import (
    DiscoveryRun,
    add_candidate,
    discover,
    discover_for_topic,
    pick_candidates,
    proposed_candidates,
)
from earshot.ingest.fetcher import make_client
from earshot.models import DiscoveryCandidate
from earshot.settings import Settings
from earshot.topics.query import parse_query
from earshot.topics.service import get_topic
from earshot_local.cli.common import CliError, open_store
from earshot_local.settings import domain_settings

SOURCE_HELP = ("directories to search, comma-separated: apple (no key), podcastindex (needs "
               "EARSHOT_PODCASTINDEX_KEY and EARSHOT_PODCASTINDEX_SECRET); default: apple, and podcastindex "
               "when its key is set")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("discover", help="find podcasts for a query in podcast directories, ranked by evidence "
                                        "(no database)")
    p.add_argument("--query", "-q", required=True, help="a topic query (docs/topics.md); its positive words and "
                                                        "phrases are searched for")
    p.add_argument("--source", metavar="LIST", help=SOURCE_HELP)
    p.add_argument("--limit", type=int, default=20, metavar="N", help="print the best N candidates (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON object per candidate (keys above)")
    p.set_defaults(func=cmd_discover, backends=None)


def register_topic_actions(tsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = tsub.add_parser("discover", help="find candidate podcasts for a topic and record them for approval")
    p.add_argument("slug", help="the topic (see `earshot topics list`)")
    p.add_argument("--source", metavar="LIST", help=SOURCE_HELP)
    p.add_argument("--add", action="store_true", help="add the candidates with at least --min-matches matching "
                                                      "recent episodes as feeds, now")
    p.add_argument("--min-matches", type=int, default=None, metavar="K",
                   help="the threshold for --add (default: the topic's own, 3 unless set by `topics autodiscover`)")
    p.add_argument("--json", action="store_true", help="one JSON object per candidate proposed")
    p.set_defaults(func=cmd_topics_discover)

    p = tsub.add_parser("candidates", help="a topic's candidate podcasts waiting for approve/reject, numbered")
    p.add_argument("slug", help="the topic (see `earshot topics list`)")
    p.add_argument("--all", action="store_true", help="also those already added or rejected")
    p.add_argument("--json", action="store_true", help="one JSON object per candidate")
    p.set_defaults(func=cmd_topics_candidates)

    for name, func, text in (("approve", cmd_topics_approve, "add candidates as feeds (with their provenance)"),
                             ("reject", cmd_topics_reject, "reject candidates: never proposed again")):
        p = tsub.add_parser(name, help=text)
        p.add_argument("slug", help="the topic (see `earshot topics list`)")
        p.add_argument("picks", nargs="+", metavar="N|URL", help="as `earshot topics candidates SLUG` numbers them, "
                                                                 "or feed URLs")
        p.set_defaults(func=func)

    p = tsub.add_parser("autodiscover", help="whether the weekly discovery adds a topic's candidates by itself")
    p.add_argument("slug", help="the topic (see `earshot topics list`)")
    p.add_argument("mode", choices=("on", "off"), help="on: add candidates above the threshold; off: wait for approval")
    p.add_argument("--min-matches", type=int, default=None, metavar="K",
                   help="matching recent episodes a candidate needs (default: keep the topic's, 3 at first)")
    p.set_defaults(func=cmd_topics_autodiscover)


def _sources(given: str | None, settings: Settings) -> list[Source]:
    if given:
        sources = [s.strip().lower() for s in given.split(",") if s.strip()]
        unknown = [s for s in sources if s not in SOURCES]
        if unknown or not sources:
            raise CliError(f"unknown source {', '.join(unknown) or repr(given)}: the sources are {', '.join(SOURCES)}")
        return cast(list[Source], list(dict.fromkeys(sources)))
    has_key = bool(settings.podcastindex_key and settings.podcastindex_secret)
    return ["apple", "podcastindex"] if has_key else ["apple"]


def _report_costs(run: DiscoveryRun, sources: list[Source]) -> None:
    for error in run.errors:
        print(f"warning: {error}", file=sys.stderr)
    print(f"searched {', '.join(sources)} for {', '.join(repr(t) for t in run.terms)}: "
          f"{run.directory_calls} directory calls ({run.cache_hits} answers from the cache), "
          f"{run.feed_fetches} feeds checked", file=sys.stderr)
    if run.errors and not run.directory_calls and not run.cache_hits:
        raise CliError("no directory could be searched (see the warnings above)")


def _json_line(c: DiscoveryCandidate) -> str:
    data = c.model_dump(mode="json", include={"feed_url", "title", "sources", "checked", "matches", "score",
                                              "examples", "explanation", "error"})
    return json.dumps(data, ensure_ascii=False)


def _lines(candidates: list[DiscoveryCandidate], *, numbered: bool = False, status: bool = False) -> None:
    for n, c in enumerate(candidates, 1):
        head = f"{n:>3}. " if numbered else ""
        state = f" [{c.status}]" if status else ""
        print(f"{head}{c.score:>6.2f}  {c.title or '(untitled)'} <{c.feed_url}>{state}")
        print(f"{'':>{len(head)}}        {c.explanation} (found by {', '.join(c.sources)}: "
              f"{', '.join(repr(t) for t in c.terms)})")


def cmd_discover(args: argparse.Namespace) -> int:
    settings = domain_settings()
    query = parse_query(args.query)
    sources = _sources(args.source, settings)
    with make_client(settings) as client:
        run = discover(query, settings=settings, sources=sources, client=client)
    _report_costs(run, sources)
    best = run.candidates[:max(args.limit, 0)]
    if args.json:
        for c in best:
            print(_json_line(c))
    elif not best:
        print("no candidates: the directories listed nothing for these terms")
    else:
        _lines(best)
    return 0


def cmd_topics_discover(args: argparse.Namespace) -> int:
    settings = domain_settings()
    sources = _sources(args.source, settings)
    with open_store(args) as repo, make_client(settings) as client:
        topic = get_topic(repo, args.slug)
        result = discover_for_topic(repo, topic, settings=settings, sources=sources, client=client, add=args.add,
                                    min_matches=args.min_matches)
        waiting = proposed_candidates(repo, topic.slug)
    _report_costs(result.run, sources)
    if args.json:
        for c in result.proposed:
            print(_json_line(c))
        return 0
    for c in result.added:
        print(f"added {c.feed_url} ({c.title or 'untitled'}): {c.explanation}")
    followed = f"; {result.already_followed} listings of feeds already followed" if result.already_followed else ""
    followed += f"; {result.already_decided} decided before" if result.already_decided else ""
    print(f"{topic.slug}: {len(result.proposed)} candidates with matching episodes{followed}, "
          f"{len(result.added)} added, {len(waiting)} waiting")
    if waiting:
        _lines(waiting, numbered=True)
        print(f"approve with `earshot topics approve {topic.slug} N...`, reject with `earshot topics reject "
              f"{topic.slug} N...`")
    return 0


def cmd_topics_candidates(args: argparse.Namespace) -> int:
    with open_store(args) as repo:
        get_topic(repo, args.slug)
        shown = repo.list_candidates(args.slug) if args.all else proposed_candidates(repo, args.slug)
    if args.json:
        for c in shown:
            print(c.model_dump_json())
    elif not shown:
        print(f"no candidates waiting for {args.slug} (run `earshot topics discover {args.slug}`)")
    else:
        _lines(shown, numbered=not args.all, status=args.all)
    return 0


def cmd_topics_approve(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    with open_store(args) as repo:
        get_topic(repo, args.slug)
        for c in pick_candidates(repo, args.slug, args.picks):
            if add_candidate(repo, args.slug, c, now=now):
                print(f"added {c.feed_url} ({c.title or 'untitled'}); `earshot run` checks it")
            else:
                print(f"already there: {c.feed_url}")
    return 0


def cmd_topics_reject(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    with open_store(args) as repo:
        get_topic(repo, args.slug)
        for c in pick_candidates(repo, args.slug, args.picks):
            repo.decide_candidate(args.slug, c.key, "rejected", now=now)
            print(f"rejected {c.feed_url}: not proposed again for {args.slug}")
    return 0


def cmd_topics_autodiscover(args: argparse.Namespace) -> int:
    with open_store(args) as repo:
        topic = get_topic(repo, args.slug)
        changes: dict[str, object] = {"discover_auto_add": args.mode == "on", "updated_at": datetime.now(UTC)}
        if args.min_matches is not None:
            if args.min_matches < 1:
                raise CliError("--min-matches must be at least 1")
            changes["discover_min_matches"] = args.min_matches
        topic = topic.model_copy(update=changes)
        if not repo.save_topic(topic):
            raise CliError(f"topic {args.slug} was removed meanwhile")
    mode = (f"adds candidates with at least {topic.discover_min_matches} matching recent episodes"
            if topic.discover_auto_add else "records candidates for approval")
    print(f"{topic.slug}: the weekly discovery {mode}")
    return 0
