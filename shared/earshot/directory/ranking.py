"""From a topic's query to ranked candidate feeds: pure functions, no I/O.

- :func:`search_terms`: what to type into a directory, from the query's positive words
  and phrases (never a negated one: searching "-pony" for "pony" finds the ponies).
- :func:`normalize_feed_url` and :func:`fold_hits`: one candidate per podcast, however
  many directories and terms listed it (same feed URL after normalization, or same
  ``podcast:guid``).
- :func:`assess`: run the query over a candidate's recent episodes; the evidence is
  how many match, how recently, and what share of the feed; :func:`score` turns it into
  one number and :func:`explain` into one line of words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from earshot.directory.clients import DirectoryHit
from earshot.models import CandidateExample, Episode
from earshot.templating import date_text
from earshot.topics.query import And, Document, Not, Or, Query, Term

# Matches older than this weigh less (a feed that matched years ago may have moved on).
RECENCY_HALF_LIFE_DAYS = 365.0
EXAMPLES_KEPT = 3


def search_terms(query: Query, *, limit: int) -> list[str]:
    """The query's positive words and phrases, in the order written, without repeats.

    >>> from earshot.topics.query import parse_query
    >>> search_terms(parse_query('"master limited partnership" OR (MLP midstream -pony -"neural net")'), limit=5)
    ['master limited partnership', 'MLP', 'midstream']
    >>> search_terms(parse_query('title:MLP -(pony OR brony) duration:>20m'), limit=5)
    ['MLP']
    """
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, Not):
            return
        if isinstance(node, Term):
            text = " ".join(node.words)
            if text.lower() not in {t.lower() for t in found}:
                found.append(text)
        elif isinstance(node, (And, Or)):
            for child in node.children:
                walk(child)

    walk(query.root)
    return found[:limit]


def normalize_feed_url(url: str) -> str:
    """What two listings of one feed share: no scheme, lowercase host without ``www.`` or a
    default port, no fragment, no trailing slash.

    >>> normalize_feed_url("HTTPS://www.Example.com:443/feed/?format=rss#top")
    'example.com/feed?format=rss'
    >>> normalize_feed_url("http://example.com/feed") == normalize_feed_url("https://example.com/feed/")
    True
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = parts.port
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    return urlunsplit(("", netloc, parts.path.rstrip("/"), parts.query, "")).removeprefix("//")


@dataclass(eq=False)  # identity: folding tracks which candidate object absorbed which
class Candidate:
    """Hits folded into one podcast, before and after its feed is checked."""

    feed_url: str
    title: str = ""
    podcast_guid: str | None = None
    sources: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    urls: set[str] = field(default_factory=set)  # normalized URLs it is known by
    hits: int = 0
    podcastindex_id: str | None = None
    episode_titles: list[str] = field(default_factory=list)  # episodes the directory matched

    @property
    def key(self) -> str:
        return f"guid:{self.podcast_guid.lower()}" if self.podcast_guid else f"url:{normalize_feed_url(self.feed_url)}"

    def absorb(self, other: Candidate) -> None:
        self.sources += [s for s in other.sources if s not in self.sources]
        self.terms += [t for t in other.terms if t not in self.terms]
        self.urls |= other.urls
        self.hits += other.hits
        self.title = self.title or other.title
        self.podcast_guid = self.podcast_guid or other.podcast_guid
        self.podcastindex_id = self.podcastindex_id or other.podcastindex_id
        self.episode_titles += [t for t in other.episode_titles if t not in self.episode_titles]


def _from_hit(hit: DirectoryHit) -> Candidate:
    return Candidate(
        feed_url=hit.feed_url, title=hit.title, podcast_guid=hit.podcast_guid, sources=[hit.source],
        terms=[hit.term], urls={normalize_feed_url(hit.feed_url)}, hits=1,
        podcastindex_id=hit.directory_id if hit.source == "podcastindex" else None,
        episode_titles=[hit.episode_title] if hit.episode_title else [],
    )


def fold(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Merge candidates that share a normalized URL or a podcast guid; first seen first.

    >>> hits = [DirectoryHit(source="apple", term="MLP", feed_url="https://a.example/feed"),
    ...         DirectoryHit(source="podcastindex", term="MLP", feed_url="http://a.example/feed/", podcast_guid="g1"),
    ...         DirectoryHit(source="podcastindex", term="midstream", feed_url="https://b.example/rss",
    ...                      podcast_guid="G1")]
    >>> [(c.feed_url, c.sources, c.terms) for c in fold_hits(hits)]
    [('https://a.example/feed', ['apple', 'podcastindex'], ['MLP', 'midstream'])]
    """
    out: list[Candidate] = []
    by_url: dict[str, Candidate] = {}
    by_guid: dict[str, Candidate] = {}
    for candidate in candidates:
        guid = (candidate.podcast_guid or "").lower()
        same = [c for c in (*(by_url.get(u) for u in candidate.urls), by_guid.get(guid) if guid else None) if c]
        if not same:
            out.append(candidate)
            target = candidate
        else:
            target = same[0]
            for other in dict.fromkeys([candidate, *same[1:]]):
                if other is not target:
                    target.absorb(other)
                    if other in out:
                        out.remove(other)
        for url in target.urls:
            by_url[url] = target
        if target.podcast_guid:
            by_guid[target.podcast_guid.lower()] = target
    return out


def fold_hits(hits: Iterable[DirectoryHit]) -> list[Candidate]:
    return fold(_from_hit(h) for h in hits)


@dataclass(frozen=True)
class Evidence:
    """What the topic's query found in a candidate's recent episodes."""

    checked: int
    matches: int
    latest_match_at: datetime | None
    examples: tuple[CandidateExample, ...]

    @property
    def share(self) -> float:
        return self.matches / self.checked if self.checked else 0.0


def assess(query: Query, episodes: list[Episode], *, podcast: str, recent: int) -> Evidence:
    """Run ``query`` over the ``recent`` newest episodes (undated ones last)."""
    newest = sorted(episodes, key=lambda e: e.published or datetime.min.replace(tzinfo=UTC), reverse=True)[:recent]
    matched: list[tuple[Episode, str]] = []
    for episode in newest:
        result = query.evaluate(Document.from_episode(episode, podcast=podcast))
        if result.matched:
            matched.append((episode, result.reason))
    dated = [e.published for e, _ in matched if e.published]
    examples = tuple(CandidateExample(title=e.title, published=e.published, reason=reason)
                     for e, reason in matched[:EXAMPLES_KEPT])
    return Evidence(len(newest), len(matched), max(dated) if dated else None, examples)


def score(evidence: Evidence, *, now: datetime) -> float:
    """Matching recent episodes, weighted by the share of the feed that matches (a feed
    about the topic over one that mentions it) and by recency (halved per year since the
    latest match). No match scores 0.

    >>> now = datetime(2026, 12, 1, tzinfo=UTC)
    >>> score(Evidence(40, 9, datetime(2026, 11, 20, tzinfo=UTC), ()), now=now)
    10.8
    >>> score(Evidence(40, 9, datetime(2024, 11, 20, tzinfo=UTC), ()), now=now)
    2.7
    """
    if not evidence.matches:
        return 0.0
    if evidence.latest_match_at is None:  # undated matches: counted as three years old
        age_days = 3 * RECENCY_HALF_LIFE_DAYS
    else:
        age_days = max(0.0, (now - evidence.latest_match_at).total_seconds() / 86400)
    recency: float = 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS)
    return round(evidence.matches * (1 + evidence.share) * recency, 2)


def explain(evidence: Evidence, *, error: str | None = None, from_directory: bool = False) -> str:
    """One line: ``9 of the last 40 episodes match; latest 13 May 2025: 'MLPs into year-end'``.

    >>> explain(Evidence(40, 0, None, ()))
    'none of the last 40 episodes match'
    >>> explain(Evidence(0, 0, None, ()), error="HTTP 404 Not Found from https://a.example/feed")
    'could not be checked: HTTP 404 Not Found from https://a.example/feed'
    """
    if error and not evidence.checked:
        return f"could not be checked: {error}"
    last = f"the last {evidence.checked} episode{'s' if evidence.checked != 1 else ''}"
    if not evidence.matches:
        line = f"none of {last} match{'es' if evidence.checked == 1 else ''}"
    else:
        line = f"{evidence.matches} of {last} match{'es' if evidence.matches == 1 else ''}"
        latest = next((e for e in evidence.examples if e.published == evidence.latest_match_at), None)
        if latest is None and evidence.examples:
            latest = evidence.examples[0]
        if latest is not None:
            when = f" {date_text(latest.published)}" if latest.published else ""
            line += f"; latest{when}: '{latest.title}'"
    if from_directory:
        line += f" (the Podcast Index's copy; the feed itself: {error})" if error else " (the Podcast Index's copy)"
    return line
