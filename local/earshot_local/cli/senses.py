"""``earshot senses TERM [SOURCE...] [--json]``: the different things the episodes mean
by a term, each with a query that selects it (``earshot.topics.senses`` does the work).

With SOURCE files or URLs it reads them like ``match``/``report`` (no database); without,
it reads every episode in the local store (or, with ``--backend aws``, the deployed
table: one Scan, as a topic backfill does). ``--json`` prints::

    {"term", "senses": [{"label", "top_terms", "query", "episodes", "podcasts", "examples"}], "unassigned"}

where ``episodes`` and ``unassigned`` list episode ids and ``podcasts`` is a count. A
source that cannot be read is named in one ``error:`` line (exit 2) after the senses of
the others are printed.
"""

from __future__ import annotations

import argparse
import json

from earshot.errors import EarshotError
from earshot.ingest.parser import parse_feed
from earshot.ingest.sources import read_source
from earshot.topics.senses import SenseDoc, SenseReport, find_senses
from earshot.topics.service import stored_sense_docs
from earshot_local.cli.common import ANY_BACKEND, CliError, open_store
from earshot_local.cli.ingest import problem_with
from earshot_local.settings import domain_settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "senses", help="the different meanings of a term in the episodes, and a query for each",
        description="Group the episodes that mention TERM (matched by the query language's rules: "
                    "an acronym is case-sensitive) into senses by the words they use, and suggest "
                    "for each a query that selects it and leaves the others out.")
    p.add_argument("term", metavar="TERM", help="the ambiguous word, acronym or quoted phrase (MLP)")
    p.add_argument("sources", nargs="*", metavar="SOURCE",
                   help="feed files or http(s) URLs to read instead of the database")
    p.add_argument("--json", action="store_true",
                   help='one JSON object: {"term", "senses": [...], "unassigned"} (keys in the README)')
    p.set_defaults(func=cmd_senses, backends=ANY_BACKEND)


def source_docs(sources: list[str]) -> tuple[list[SenseDoc], list[str]]:
    """The episodes of feed files or URLs, and what went wrong with each source that failed
    (the others are read all the same)."""
    settings = domain_settings()
    failures = []
    docs = []
    for source in sources:
        try:
            result = read_source(source, settings=settings)
            parsed = parse_feed(result.body or b"", url=result.url)
        except EarshotError as exc:
            failures.append(problem_with(source, exc))
            continue
        podcast = parsed.feed.podcast_guid or parsed.feed.title or result.url
        docs += [SenseDoc(id=e.id, podcast=podcast, title=e.title, description=e.summary,
                          published=e.published, duration_seconds=e.duration_seconds) for e in parsed.episodes]
    return docs, failures


def format_senses(report: SenseReport) -> str:
    """The terminal rendering: one block per sense, then what stayed unassigned."""
    if not report.mentions:
        return f"no episode mentions {report.term}"
    n = len(report.senses)
    unassigned = f", {len(report.unassigned)} unassigned" if report.unassigned else ""
    lines = [f"{report.term}: {report.mentions} episodes mention it; {n} sense{'s' if n != 1 else ''}{unassigned}"]
    for i, sense in enumerate(report.senses, 1):
        lines += ["", f"{i}. {sense.label}  ({len(sense.episodes)} episodes in {sense.podcasts} "
                      f"podcast{'s' if sense.podcasts != 1 else ''})",
                  f"   words: {', '.join(sense.top_terms)}",
                  f"   query: {sense.query}"]
        lines += [f"   e.g.   {title}" for title in sense.examples]
    if report.unassigned:
        lines += ["", f"unassigned: {len(report.unassigned)} episodes (too few alike to make a sense)"]
    return "\n".join(lines)


def cmd_senses(args: argparse.Namespace) -> int:
    failures: list[str] = []
    if args.sources:
        docs, failures = source_docs(args.sources)
    else:
        with open_store(args) as repo:
            docs = stored_sense_docs(repo)
    report = find_senses(args.term, docs)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print(format_senses(report))
    if failures:  # the senses of what could be read are printed; the exit code says some could not
        raise CliError("; ".join(failures))
    return 0
