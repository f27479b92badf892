"""Discovery runs: search the directories for a topic, check every candidate, rank, record.

One run, step by step (``docs/discovery.md`` has the numbers of one):

1. search terms from the query (:func:`~earshot.directory.ranking.search_terms`);
2. each directory, each term (cached answers first; a throttled directory is left for the
   rest of the run, its error reported, the others go on);
3. fold the hits into candidates, at most ``discovery_max_candidates``, those listed
   most often first;
4. fetch and parse each candidate the normal way (:func:`earshot.ingest.sources.read_source`:
   the fetcher's caps, timeouts, SSRF guard; at most ``max_requests_per_host`` at once per
   host), fold again by what the feeds say (``podcast:guid``, the final URL), run the
   query over the recent episodes; a feed that cannot be fetched is judged on the Podcast
   Index's copy of its episodes when that directory listed it;
5. rank by :func:`~earshot.directory.ranking.score`, explain each in one line.

For a stored topic (:func:`discover_for_topic`) the candidates with a match are recorded
(``Store.record_candidates``: a rejected or added one is never proposed again), feeds
already followed are left out, and with ``add`` those with at least ``min_matches``
matching episodes are added as feeds, with their provenance.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel

from earshot.directory.clients import SOURCE_NAMES, DirectoryClient, PodcastIndex, Source, directory_clients
from earshot.directory.ranking import (
    Candidate,
    Evidence,
    assess,
    explain,
    fold_hits,
    normalize_feed_url,
    score,
    search_terms,
)
from earshot.errors import (
    DirectoryError,
    DirectoryNotConfigured,
    DirectoryThrottled,
    EarshotError,
    NotFound,
    ParseError,
)
from earshot.ingest.parser import parse_feed
from earshot.ingest.politeness import HostBusy, LeasedSlots
from earshot.ingest.refresh import new_feed
from earshot.ingest.sources import read_source
from earshot.models import DiscoveryCandidate, Episode, FeedProvenance, Topic
from earshot.settings import Settings
from earshot.store import Store
from earshot.topics.query import Query, parse_query

if TYPE_CHECKING:
    import httpx

# Candidate feeds fetched at once (each host still gets at most max_requests_per_host).
CHECK_THREADS = 4


@dataclass
class DiscoveryRun:
    """What one run found and what it cost."""

    terms: list[str]
    candidates: list[DiscoveryCandidate]
    errors: list[str] = field(default_factory=list)
    directory_calls: int = 0
    cache_hits: int = 0
    feed_fetches: int = 0


@dataclass
class _Checked:
    candidate: Candidate
    evidence: Evidence
    final_url: str | None = None
    feed_guid: str | None = None
    feed_title: str = ""
    error: str | None = None
    from_directory: bool = False


def discover(
    query: Query,
    *,
    settings: Settings,
    sources: list[Source],
    client: httpx.Client | None = None,
    cache: Store | None = None,
    now: datetime | None = None,
    clients: list[DirectoryClient] | None = None,
    skip: Callable[[Candidate], bool] | None = None,
) -> DiscoveryRun:
    """Search ``sources`` for ``query``'s terms and rank what they list, best first.
    ``skip`` leaves candidates out before they are fetched (feeds already followed)."""
    now = now or datetime.now(UTC)
    terms = search_terms(query, limit=settings.discovery_max_terms)
    clients = clients or directory_clients(sources, settings, client=client, cache=cache, clock=lambda: now)
    run = DiscoveryRun(terms=terms, candidates=[])
    hits = []
    for directory in clients:
        for term in terms:
            try:
                hits += directory.search(term)
            except (DirectoryThrottled, DirectoryNotConfigured) as exc:
                run.errors.append(str(exc))
                break  # backing off (or no key): the rest of this run does without this directory
            except DirectoryError as exc:
                run.errors.append(f"{exc} (searching {term!r})")
    folded = fold_hits(hits)
    if skip is not None:
        folded = [c for c in folded if not skip(c)]
    # Listed by more terms and directories first: those are checked when the cap bites.
    folded = sorted(folded, key=lambda c: -(len(c.terms) * 2 + len(c.sources) + c.hits))
    folded = folded[:settings.discovery_max_candidates]

    index = next((c for c in clients if isinstance(c, PodcastIndex) and c.is_configured), None)
    # With a database, each candidate's fetch holds one of its host's slots, the leases
    # feed checks take (without one, `earshot discover` alone: its few threads).
    limiter = LeasedSlots(cache, settings) if cache is not None else None

    def check(candidate: Candidate) -> _Checked:
        if limiter is None:
            return _check(candidate, query, settings=settings, client=client, index=index)
        try:
            with limiter.slot(candidate.feed_url):
                return _check(candidate, query, settings=settings, client=client, index=index)
        except HostBusy as busy:
            return _from_directory(candidate, query, settings=settings, index=index, error=str(busy))

    with ThreadPoolExecutor(max_workers=CHECK_THREADS) as pool:
        checked = list(pool.map(check, folded))
    run.feed_fetches = len(folded)
    run.candidates = _rank(_fold_checked(checked), now=now)
    run.directory_calls = sum(c.calls for c in clients)
    run.cache_hits = sum(c.cache_hits for c in clients)
    return run


def _check(candidate: Candidate, query: Query, *, settings: Settings, client: httpx.Client | None,
           index: PodcastIndex | None) -> _Checked:
    try:
        result = read_source(candidate.feed_url, settings=settings, client=client)
        parsed = parse_feed(result.body or b"", url=result.url)
    except EarshotError as exc:
        error = f"{candidate.feed_url} is not a usable feed: {exc}" if isinstance(exc, ParseError) else str(exc)
        return _from_directory(candidate, query, settings=settings, index=index, error=error)
    title = parsed.feed.title or candidate.title
    evidence = assess(query, parsed.episodes, podcast=title, recent=settings.discovery_recent_episodes)
    return _Checked(candidate, evidence, final_url=result.url, feed_guid=parsed.feed.podcast_guid, feed_title=title)


def _from_directory(candidate: Candidate, query: Query, *, settings: Settings, index: PodcastIndex | None,
                    error: str) -> _Checked:
    """Judge a feed that could not be fetched on the Podcast Index's copy, if it has one."""
    empty = Evidence(0, 0, None, ())
    if index is None or candidate.podcastindex_id is None:
        return _Checked(candidate, empty, error=error)
    try:
        items = index.episodes_by_feed_id(candidate.podcastindex_id, limit=settings.discovery_recent_episodes)
    except DirectoryError:
        return _Checked(candidate, empty, error=error)
    episodes = []
    for n, item in enumerate(items):
        published = item.get("datePublished")
        episodes.append(Episode(
            id=str(item.get("id", n)), title=str(item.get("title") or ""), summary=str(item.get("description") or ""),
            published=datetime.fromtimestamp(published, UTC) if isinstance(published, int) else None))
    evidence = assess(query, episodes, podcast=candidate.title, recent=settings.discovery_recent_episodes)
    return _Checked(candidate, evidence, error=error, from_directory=True)


def _fold_checked(checked: list[_Checked]) -> list[_Checked]:
    """Fold again by what the feeds said about themselves: one podcast behind two listed
    URLs (a redirect, a mirror) keeps the better evidence."""
    by_key: dict[str, _Checked] = {}
    out: list[_Checked] = []
    for item in checked:
        keys = [f"url:{normalize_feed_url(item.final_url or item.candidate.feed_url)}"]
        guid = item.feed_guid or item.candidate.podcast_guid
        if guid:
            keys.append(f"guid:{guid.lower()}")
        same = next((by_key[k] for k in keys if k in by_key), None)
        if same is None:
            out.append(item)
            same = item
        else:
            better, other = (same, item) if same.evidence.matches >= item.evidence.matches else (item, same)
            better.candidate.absorb(other.candidate)
            if better is item:
                out[out.index(same)] = item
            same = better
        for k in keys:
            by_key[k] = same
    return out


def _rank(checked: list[_Checked], *, now: datetime) -> list[DiscoveryCandidate]:
    out = []
    for item in checked:
        c, ev = item.candidate, item.evidence
        guid = item.feed_guid or c.podcast_guid
        out.append(DiscoveryCandidate(
            key=f"guid:{guid.lower()}" if guid else f"url:{normalize_feed_url(c.feed_url)}",
            feed_url=c.feed_url, title=item.feed_title or c.title, podcast_guid=guid,
            sources=c.sources, terms=c.terms, checked=ev.checked, matches=ev.matches,
            latest_match_at=ev.latest_match_at, share=round(ev.share, 3), score=score(ev, now=now),
            examples=list(ev.examples), error=item.error, found_at=now,
            explanation=explain(ev, error=item.error, from_directory=item.from_directory),
        ))
    return sorted(out, key=lambda c: (-c.score, -c.matches, c.error is not None, c.feed_url))


# ---------------------------------------------------------------- stored topics
@dataclass
class TopicDiscovery:
    run: DiscoveryRun
    proposed: list[DiscoveryCandidate]
    added: list[DiscoveryCandidate] = field(default_factory=list)
    already_followed: int = 0  # directory listings of feeds the store has
    already_decided: int = 0  # listings of candidates added or rejected before


def _matcher(urls: set[str], guids: set[str]) -> Callable[[Candidate], bool]:
    return lambda c: bool(c.urls & urls) or bool(c.podcast_guid and c.podcast_guid.lower() in guids)


def followed(repo: Store) -> Callable[[Candidate], bool]:
    """A predicate: is this candidate a feed the store already has (by URL or guid)?"""
    feeds = list(repo.list_feeds())
    return _matcher({normalize_feed_url(f.url) for f in feeds},
                    {f.podcast_guid.lower() for f in feeds if f.podcast_guid})


def decided(repo: Store, slug: str) -> Callable[[Candidate], bool]:
    """A predicate: was this candidate added or rejected for the topic before?"""
    done = [c for c in repo.list_candidates(slug) if c.status != "proposed"]
    return _matcher({normalize_feed_url(c.feed_url) for c in done},
                    {c.podcast_guid.lower() for c in done if c.podcast_guid})


def discover_for_topic(
    repo: Store,
    topic: Topic,
    *,
    settings: Settings,
    sources: list[Source],
    client: httpx.Client | None = None,
    now: datetime | None = None,
    add: bool = False,
    min_matches: int | None = None,
) -> TopicDiscovery:
    """Discover for a stored topic, record its candidates, and add the strong ones if asked."""
    now = now or datetime.now(UTC)
    is_followed, is_decided = followed(repo), decided(repo, topic.slug)
    skipped = {"followed": 0, "decided": 0}

    def skip(candidate: Candidate) -> bool:
        """Feeds already followed, and candidates decided before, are not fetched again."""
        for reason, test in (("followed", is_followed), ("decided", is_decided)):
            if test(candidate):
                skipped[reason] += 1
                return True
        return False

    run = discover(parse_query(topic.query), settings=settings, sources=sources, client=client, cache=repo, now=now,
                   skip=skip)
    proposed = repo.record_candidates(topic.slug, [c for c in run.candidates if c.matches > 0])
    result = TopicDiscovery(run=run, proposed=proposed, already_followed=skipped["followed"],
                            already_decided=skipped["decided"])
    if add:
        threshold = min_matches if min_matches is not None else topic.discover_min_matches
        for candidate in proposed:
            if candidate.matches >= threshold and add_candidate(repo, topic.slug, candidate, now=now):
                result.added.append(candidate)
    return result


def add_candidate(repo: Store, slug: str, candidate: DiscoveryCandidate, *, now: datetime) -> bool:
    """Add a candidate as a feed (the door ``feeds add`` uses: a new feed, checked at once),
    with its provenance, and mark it added. False if the store already had the feed."""
    feed = new_feed(candidate.feed_url, now).model_copy(update={
        "title": candidate.title, "podcast_guid": candidate.podcast_guid,
        "provenance": FeedProvenance(sources=candidate.sources, terms=candidate.terms, topic=slug, added_at=now),
    })
    added = repo.add_feed(feed)
    repo.decide_candidate(slug, candidate.key, "added", now=now)
    return added


def proposed_candidates(repo: Store, slug: str) -> list[DiscoveryCandidate]:
    """A topic's candidates waiting for a decision, best first (numbered from 1 in the CLI)."""
    return [c for c in repo.list_candidates(slug) if c.status == "proposed"]


def pick_candidates(repo: Store, slug: str, picks: list[str]) -> list[DiscoveryCandidate]:
    """Candidates by number (as ``topics candidates`` lists them) or by feed URL."""
    waiting = proposed_candidates(repo, slug)
    every = repo.list_candidates(slug)
    chosen = []
    for pick in picks:
        if pick.isdigit() and 1 <= int(pick) <= len(waiting):
            chosen.append(waiting[int(pick) - 1])
            continue
        found = next((c for c in every if normalize_feed_url(c.feed_url) == normalize_feed_url(pick)), None)
        if found is None:
            raise NotFound(f"topic {slug} has no candidate {pick} (see `earshot topics candidates {slug}`)")
        chosen.append(found)
    return chosen


def source_names(sources: list[Source]) -> str:
    return ", ".join(SOURCE_NAMES[s] for s in sources)


# ---------------------------------------------------------------- the weekly run
class DiscoveryRequest(BaseModel):
    """The scheduler's payload (template.yaml ``Input``); ``topic`` runs one topic only."""

    source: str = "earshot.scheduler"
    topic: str | None = None


class TopicOutcome(BaseModel):
    topic: str
    proposed: int = 0
    added: list[str] = []
    directory_calls: int = 0
    feed_fetches: int = 0
    errors: list[str] = []


class DiscoveryResult(BaseModel):
    topics: list[TopicOutcome] = []
    not_started: list[str] = []


def discover_topics(
    repo: Store,
    *,
    settings: Settings,
    client: httpx.Client | None = None,
    only: str | None = None,
    now: datetime | None = None,
    should_start: Callable[[], bool] = lambda: True,
) -> DiscoveryResult:
    """One discovery run per topic: candidates recorded, and added where the topic says
    ``discover_auto_add``. A topic whose run fails is recorded with its error and the next
    goes on; topics ``should_start`` stops (the invocation's time is running out) are
    listed as not started, for the next week."""
    # Each topic read whole: a listing may carry only what the store's index projects
    # (DynamoDB's type index holds no discovery settings).
    slugs = [only] if only else [t.slug for t in repo.list_topics()]
    sources: list[Source] = ["apple", "podcastindex"] if settings.podcastindex_key else ["apple"]
    result = DiscoveryResult()
    for slug in slugs:
        if not should_start():
            result.not_started.append(slug)
            continue
        outcome = TopicOutcome(topic=slug)
        try:
            topic = get_topic_or_fail(repo, slug)
            found = discover_for_topic(repo, topic, settings=settings, sources=sources, client=client, now=now,
                                       add=topic.discover_auto_add)
        except EarshotError as exc:
            outcome.errors.append(str(exc))
        else:
            outcome.proposed = len(found.proposed)
            outcome.added = [c.feed_url for c in found.added]
            outcome.directory_calls = found.run.directory_calls
            outcome.feed_fetches = found.run.feed_fetches
            outcome.errors = found.run.errors
        result.topics.append(outcome)
    return result


def get_topic_or_fail(repo: Store, slug: str) -> Topic:
    topic = repo.get_topic(slug)
    if topic is None:
        raise NotFound(f"no topic {slug!r}")
    return topic
