"""Topic commands: ``topics add|list|show|edit|remove|page`` (stored topics, on the chosen
backend) and the offline ``match`` / ``report`` (files or URLs, no AWS needed).

``match`` prints one JSON object per matching episode::

    {"podcast": ..., "guid": ..., "title": ..., "published": "2026-11-24T11:00:00Z", "reason": ...}

With ``--transcripts`` it reads transcripts too (each episode's own, fetched; or the
files and URLs given as ``GUID=SOURCE``), unfielded terms look in them, and a match
found there adds ``"moment": {"start_seconds", "text"}`` and ``"transcript_url"``.

A bad query prints ``error: ...`` and exits 2 (``earshot_local.cli`` contract).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from earshot import runtime
from earshot.errors import EarshotError
from earshot.ingest.parser import parse_feed
from earshot.ingest.sources import read_source
from earshot.models import Episode, MatchedEpisode, Topic, Transcript
from earshot.settings import Settings
from earshot.store import Store, feed_id_for, iso
from earshot.store.archive import TranscriptArchive
from earshot.templating import date_text, duration_text
from earshot.topics.matching import EpisodeTranscript, Podcast, match_episodes
from earshot.topics.pages import render_topic_page
from earshot.topics.query import DEFAULT_FIELDS, TRANSCRIPT_DEFAULT_FIELDS, parse_query
from earshot.topics.service import (
    BackfillResult,
    FanOut,
    add_topic,
    backfill_status,
    edit_topic,
    get_topic,
    list_topics,
    remove_topic,
    topic_report,
)
from earshot.topics.stats import TopicReport, build_report
from earshot.transcripts.choice import choose
from earshot.transcripts.retrieval import fetch_transcript
from earshot_local.cli import discover
from earshot_local.cli.common import ANY_BACKEND, CliError, open_store
from earshot_local.cli.ingest import problem_with
from earshot_local.settings import domain_settings

# The demo's two topics: one acronym, two meanings that both occur in samples/feeds.
# The finance query is the one measured in docs/topics.md (tests/test_labelled_mlp.py).
# Context words are ones the other meanings rarely use ("yield", "units", "energy" and
# "partnership" were tried and dropped: ML, pony and legal episodes use them too).
FINANCE_QUERY = (
    '"master limited partnership" OR (MLP (midstream OR pipeline OR distribution OR K-1 OR '
    'AMLP OR Alerian OR "general partner" OR "limited partners" OR tax OR UBTI OR crude OR '
    '"natural gas" OR LNG OR Permian OR Bakken OR "income investors" OR "C-corp" OR leverage OR '
    'earnings OR buyback OR coverage OR bonds OR "cost of capital" OR tariff OR REIT) '
    '-neural -network -perceptron -transformer -training -"medical-legal" -clinic -pony -fan)'
)
ML_QUERY = (
    '"multilayer perceptron" OR "multi-layer perceptron" OR "MLP-Mixer" OR '
    '(MLP (neural OR network OR perceptron OR "hidden layer" OR "feed-forward" OR transformer OR '
    'backprop OR training OR overfits OR activation OR dropout OR "deep learning" OR '
    '"language model" OR token OR PyTorch OR GPU OR attention OR gradient OR regularization) '
    '-pony -midstream -"medical-legal")'
)
DEMO_TOPICS = (
    ("mlp-finance", "MLPs (master limited partnerships)", FINANCE_QUERY,
     "Master limited partnerships: midstream energy, distributions and K-1s."),
    ("mlp-ml", "MLPs (multilayer perceptrons)", ML_QUERY,
     "Multilayer perceptrons: the feed-forward networks of machine learning."),
)


QUERY_HELP = ("the topic query (docs/topics.md), e.g. 'MLP (midstream OR pipeline) -neural'; "
              "a query that starts with '-' goes as --query='-word ...'")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    topics = sub.add_parser("topics", help="manage topics (stored; re-matched on add/edit)")
    tsub = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")

    p = tsub.add_parser("add", help="add a topic and match every stored episode")
    p.add_argument("slug", help="the topic's id in URLs: lowercase letters, digits and hyphens (mlp-finance)")
    p.add_argument("--name", required=True, help="the topic's title on its page and in digests")
    p.add_argument("--query", required=True, help=QUERY_HELP)
    p.add_argument("--description", default="", help="a sentence under the title on the topic page")
    p.add_argument("--search-transcripts", action="store_true",
                   help="unfielded terms also look in publishers' transcripts (transcript: always does)")
    p.set_defaults(func=cmd_add)

    p = tsub.add_parser("list", help="topics with their queries")
    p.add_argument("--json", action="store_true", help="one JSON object per topic")
    p.set_defaults(func=cmd_list)

    p = tsub.add_parser("show", help="a topic's numbers, best podcasts and latest episodes")
    p.add_argument("slug", help="the topic (see `earshot topics list`)")
    p.add_argument("--json", action="store_true", help="the topic and its report as one JSON object")
    p.set_defaults(func=cmd_show)

    p = tsub.add_parser("edit", help="change a topic; a new query re-matches the archive")
    p.add_argument("slug", help="the topic (see `earshot topics list`)")
    p.add_argument("--name", help="a new title")
    p.add_argument("--query", help=f"a new query: {QUERY_HELP}")
    p.add_argument("--description", help="a new description")
    p.add_argument("--search-transcripts", action=argparse.BooleanOptionalAction, default=None,
                   help="switch searching transcripts on or off for unfielded terms")
    p.set_defaults(func=cmd_edit)

    p = tsub.add_parser("remove", help="delete a topic and its matches")
    p.add_argument("slug", help="the topic (see `earshot topics list`)")
    p.set_defaults(func=cmd_remove)

    p = tsub.add_parser("page", help="write the topic page as one self-contained HTML file")
    p.add_argument("slug", help="the topic (see `earshot topics list`)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.html", help="where to write the page")
    p.set_defaults(func=cmd_page)
    discover.register_topic_actions(tsub)
    for p in tsub.choices.values():
        p.set_defaults(backends=ANY_BACKEND)

    for name, func, text in (("match", cmd_match, "print matching episodes of feeds as JSON lines"),
                             ("report", cmd_report, "a topic page's numbers for feeds, without storing anything")):
        p = sub.add_parser(name, help=f"{text} (files or URLs; no database)")
        p.add_argument("--query", "-q", required=True, help=QUERY_HELP)
        p.add_argument("sources", nargs="+", metavar="SOURCE", help="feed file or http(s) URL")
        p.add_argument("--transcripts", nargs="*", default=None, metavar="GUID=SOURCE",
                       help="search transcripts too: each episode's own (fetched), or the file or URL given "
                            "for an episode's guid; a bare SOURCE when the feeds hold one episode")
        p.add_argument("--now", type=_parse_now, default=None, metavar="DATETIME",
                       help="ISO date-time to compute 'last 12 months' from (default: now)")
        if name == "report":
            p.add_argument("--json", action="store_true", help="the report as JSON (keys in docs/topics.md)")
        p.set_defaults(func=func, backends=None)


def _parse_now(value: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time: {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _now(args: argparse.Namespace) -> datetime:
    return getattr(args, "now", None) or datetime.now(UTC)


# ------------------------------------------------------------------ stored topics
def _archive_of(repo: Store) -> TranscriptArchive | None:
    """Where the store's transcripts are: the local database holds its own; a deployed
    stack's are in its bucket (``TRANSCRIPT_BUCKET``, the stack's TranscriptBucketName
    output; without it a backfill leaves transcripts out)."""
    if isinstance(repo, TranscriptArchive):
        return repo
    return runtime.transcript_archive() if runtime.settings().transcript_bucket else None


def _fan_out(args: argparse.Namespace) -> FanOut | None:
    """Deployed with a backfill queue: the archive is re-matched by the backfill workers
    (one message per segment); otherwise in this process, segment after segment."""
    if getattr(args, "backend", "local") != "aws" or not runtime.settings().backfill_queue_url:
        return None
    return runtime.backfill_queue().send_messages


def _queued(result: BackfillResult) -> str | None:
    job = result.job
    if job is None or job.finished_at is not None:
        return None
    return (f"{job.status}: {job.total_segments} segments queued for the backfill workers "
            f"(`earshot topics --backend aws show {job.slug}` follows it)")


def cmd_add(args: argparse.Namespace) -> int:
    with open_store(args) as repo:
        result = add_topic(repo, args.slug, name=args.name, query=args.query,
                           description=args.description, now=_now(args), fan_out=_fan_out(args),
                           segments=runtime.settings().backfill_segments,
                           search_transcripts=args.search_transcripts, archive=_archive_of(repo))
    queued = _queued(result)
    print(f"added {result.topic.slug}: " + (queued or f"{result.matched} matching episode listings"))
    _warn_senses(result)
    return 0


def _warn_senses(result: BackfillResult) -> None:
    """Say when the query's main term has senses here that the query leaves out."""
    if result.coverage is not None and result.coverage.warning:
        print(f"warning: {result.coverage.warning}", file=sys.stderr)
        for other in result.topic.left_out:
            print(f"  not included: {other.episodes} episodes about {other.label}", file=sys.stderr)


def cmd_edit(args: argparse.Namespace) -> int:
    if args.name is None and args.query is None and args.description is None and args.search_transcripts is None:
        raise CliError("nothing to change: give --name, --query, --description or --[no-]search-transcripts")
    with open_store(args) as repo:
        result = edit_topic(repo, args.slug, name=args.name, query=args.query,
                            description=args.description, now=_now(args), fan_out=_fan_out(args),
                            segments=runtime.settings().backfill_segments,
                            search_transcripts=args.search_transcripts, archive=_archive_of(repo))
    queued = _queued(result)
    print(f"updated {result.topic.slug}: " + (queued or f"{result.matched} matching episode listings"
          + (f", {result.removed} no longer match" if result.removed else "")))
    _warn_senses(result)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    with open_store(args) as repo:
        remove_topic(repo, args.slug)
    print(f"removed {args.slug}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with open_store(args) as repo:
        topics = list_topics(repo)
        running = {t.slug: status for t in topics
                   if (status := backfill_status(repo, t.slug)) not in (None, "backfilled")}
    if args.json:
        for topic in topics:
            print(topic.model_dump_json())
    elif not topics:
        print("no topics yet: earshot topics add SLUG --name NAME --query QUERY")
    for topic in topics if not args.json else ():
        note = f"  ({running[topic.slug]})" if topic.slug in running else ""
        print(f"{topic.slug:<24} {topic.name}{note}\n{'':<24} {topic.query}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_store(args) as repo:
        topic = get_topic(repo, args.slug)
        report = topic_report(repo, args.slug, now=_now(args))
        status = backfill_status(repo, args.slug)
    if args.json:
        print(json.dumps({"topic": topic.model_dump(mode="json"), "report": report.model_dump(mode="json"),
                          "backfill": status}, ensure_ascii=False, indent=2))
    else:
        text = format_report(report, title=f"{topic.name} ({topic.slug})", query=topic.query)
        if status not in (None, "backfilled"):
            text = text.replace("\n", f"\n{status}: the numbers below grow until it is done\n", 1)
        print(text)
    return 0


def cmd_page(args: argparse.Namespace) -> int:
    now = _now(args)
    with open_store(args) as repo:
        topic = get_topic(repo, args.slug)
        report = topic_report(repo, args.slug, now=now)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_topic_page(topic, report, now=now), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def _also_in(count: int) -> str:
    return f"also in {count} podcast{'s' if count != 1 else ''}" if count else ""


def _cadence(report: TopicReport) -> str:
    """The cadence sentence inside a line ("no episodes yet", "1 episode a week over ...")."""
    return report.cadence_text[:1].lower() + report.cadence_text[1:]


def format_report(report: TopicReport, *, title: str, query: str) -> str:
    """The terminal rendering of a topic report."""
    lines = [title, f"query: {query}", ""]
    lines.append(f"{report.episodes} episodes in {report.podcasts} podcasts"
                 f" ({report.duplicates_folded} duplicate listings folded)")
    lines.append(f"average length {duration_text(report.avg_duration_seconds) or 'unknown'};"
                 f" {_cadence(report)}; latest {date_text(report.latest) or 'never'}")
    if report.per_year:
        peak = max(report.per_year.values())
        lines += ["", "per year:"]
        lines += [f"  {year} {'█' * max(1, round(20 * n / peak))} {n}" for year, n in report.per_year.items()]
    if report.best_podcasts:
        lines += ["", "best podcasts:"]
        for i, p in enumerate(report.best_podcasts[:10], 1):
            lines.append(f"  {i}. {p.podcast or 'Untitled podcast'} — {p.counts_text}"
                         + (f", latest {date_text(p.latest)}" if p.latest else ""))
        lines.append(f"  ({report.rank_rule})")
    if report.latest_episodes:
        lines += ["", "latest episodes:"]
    for card in report.latest_episodes:
        badges = [b for b in (duration_text(card.duration_seconds),
                              "transcript" if card.has_transcript else "",
                              _also_in(card.also_in)) if b]
        lines.append(f"  {date_text(card.published):>11}  {card.podcast}: {card.title}"
                     + (f"  [{', '.join(badges)}]" if badges else ""))
        lines.append(f"{'':>15}why: {card.reason}")
    return "\n".join(lines)


# ------------------------------------------------------------------ offline commands
def _match_sources(query_text: str, sources: list[str],
                   transcript_sources: list[str] | None = None) -> list[MatchedEpisode]:
    """Match every episode of every source; a source that fails is reported, the rest go
    on. ``transcript_sources`` (``--transcripts``; [] for each episode's own) adds
    transcripts, and unfielded terms look in them."""
    fields = DEFAULT_FIELDS if transcript_sources is None else TRANSCRIPT_DEFAULT_FIELDS
    query = parse_query(query_text, default_fields=fields)  # a bad query fails before any feed is read
    settings = domain_settings()
    feeds = []
    failures = []
    for source in sources:
        try:
            result = read_source(source, settings=settings)
            feeds.append((result.url, parse_feed(result.body or b"", url=result.url, parser=settings.parser)))
        except EarshotError as exc:
            failures.append(problem_with(source, exc))
    if failures:
        raise CliError("; ".join(failures))
    given = _given_transcripts(transcript_sources, [e for _, parsed in feeds for e in parsed.episodes])
    matches: list[MatchedEpisode] = []
    for url, parsed in feeds:
        transcripts: dict[str, EpisodeTranscript] | None = None
        if transcript_sources is not None:
            transcripts = {}
            for episode in parsed.episodes:
                try:
                    if (found := _read_transcript(episode, given, settings)) is not None:
                        transcripts[episode.id] = found
                except EarshotError as exc:  # the episode is still matched on its title and description
                    print(f"warning: transcript of {episode.title or episode.id!r}: {exc.kind}: {exc}",
                          file=sys.stderr)
        matches += match_episodes(query, parsed.episodes, feed_id=feed_id_for(url), podcast=Podcast.of(parsed.feed),
                                  transcripts=transcripts)
    return matches


def _given_transcripts(transcript_sources: list[str] | None, episodes: list[Episode]) -> dict[str, str]:
    """episode guid (or id) -> transcript source, from ``--transcripts GUID=SOURCE ...``."""
    given: dict[str, str] = {}
    for item in transcript_sources or []:
        guid, sep, source = item.rpartition("=")
        if sep and guid and not guid.startswith(("http:", "https:")) and "://" not in guid:
            given[guid] = source
        elif len(episodes) == 1:
            given[episodes[0].guid or episodes[0].id] = item
        else:
            raise CliError(f"--transcripts {item}: say which episode it is for, as GUID=SOURCE "
                           f"(the feeds hold {len(episodes)} episodes)")
    return given


def _read_transcript(episode: Episode, given: dict[str, str], settings: Settings) -> EpisodeTranscript | None:
    """The transcript given for the episode, else its own best one (fetched), else None."""
    source = given.get(episode.guid or "") or given.get(episode.id)
    candidates = [Transcript(url=source)] if source else choose(episode.transcripts)
    error: EarshotError | None = None
    for candidate in candidates:
        try:
            _, parsed = fetch_transcript(candidate, settings=settings)
        except EarshotError as exc:
            error = error or exc
            continue
        if parsed is not None:
            return EpisodeTranscript(candidate.url, parsed.cues)
    if error is not None:
        raise error
    return None


def cmd_match(args: argparse.Namespace) -> int:
    for m in _match_sources(args.query, args.sources, args.transcripts):
        line = {"podcast": m.podcast, "guid": m.guid, "title": m.title, "published": iso(m.published),
                "reason": m.reason}
        if args.transcripts is not None:
            line["moment"] = m.moment.model_dump(mode="json") if m.moment else None
            line["transcript_url"] = m.transcript_url
        print(json.dumps(line, ensure_ascii=False))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    report = build_report(_match_sources(args.query, args.sources, args.transcripts), now=_now(args))
    if args.json:
        json.dump(report.model_dump(mode="json"), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_report(report, title="report", query=args.query))
    return 0


# ------------------------------------------------------------------ demo
def demo_step(repo: Store, out_dir: Path, *, archive: TranscriptArchive | None = None) -> list[str]:
    """Define the sample topics, backfill them, and write their pages to
    ``out_dir/topics/<slug>.html``; returns lines to print. With the transcript
    ``archive`` the topics search the sample transcripts too, so a match names its moment."""
    now = datetime.now(UTC)
    lines = []
    transcripts = archive is not None
    for slug, name, query, description in DEMO_TOPICS:
        if repo.get_topic(slug) is None:
            result = add_topic(repo, slug, name=name, query=query, description=description, now=now,
                               search_transcripts=transcripts, archive=archive)
        else:
            result = edit_topic(repo, slug, name=name, query=query, description=description, now=now,
                                search_transcripts=transcripts, archive=archive)
        topic: Topic = result.topic
        report = topic_report(repo, slug, now=now)
        path = out_dir / "topics" / f"{slug}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_topic_page(topic, report, now=now), encoding="utf-8")
        podcasts = f"{report.podcasts} podcast{'s' if report.podcasts != 1 else ''}"
        lines.append(f"{slug}: {report.episodes} episodes in {podcasts} "
                     f"({report.duplicates_folded} duplicates folded), {_cadence(report)} -> {path}")
        for card in report.latest_episodes[:3]:
            lines.append(f"    {card.podcast}: {card.title}  [why: {card.reason}]")
    return lines
