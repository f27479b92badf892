"""Podcast-aware dedup: one episode is shown once, however many times it was listed.

Two kinds of duplicate listing are folded (rules in ``docs/topics.md``):

- **Within a feed** — a re-upload: the same episode re-published under a new guid. Same
  normalized title and published within 2 days of each other; durations may differ
  (re-uploads usually fix the audio). The newest version is kept, as the publisher's
  current one.
- **Across feeds** — syndication: the same episode carried by several podcasts. Same
  normalized title, published within 2 days and durations within 5 %; or the same
  enclosure once tracking prefixes (Podtrac, Chartable, Podsights, OP3, ...) and the
  query string are removed. Such a cluster is shown once, "also in N podcasts".

Grouping is transitive (union-find): if A re-uploads X and B syndicates the re-upload,
all three listings are one cluster.

**Podcasts, not feeds.** Several feeds can be one podcast (an old and a new URL, a mirror,
an aggregator's copy): :func:`podcast_groups` says which. Feeds are one podcast when they
share a ``<podcast:guid>``, or when their normalized titles and web pages (links) are
equal and their authors agree (an author missing from one of them does not tell them
apart). Within one podcast, listings with the same episode guid are one episode, and
"also in N podcasts" counts podcasts.

The cluster's representative listing comes from the podcast that published it first (the
original publisher); within that podcast, its newest version.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from earshot.identity import tracking_free_url
from earshot.models import MatchedEpisode
from earshot.topics.query import normalize_text, words_of

MAX_DATE_GAP = timedelta(days=2)
MAX_DURATION_RATIO = 0.05

# Leading episode numbers differ between a show and the network feed that syndicates it:
# "Ep. 88: Midstream 101" is "Midstream 101".
_EPISODE_PREFIX = re.compile(
    r"^\s*(?:(?:episode|ep)\.?\s*#?\s*\d+|#\d+|s\d+\s*e\d+)\s*(?:[:.|\-\u2013\u2014]\s*)?",
    re.IGNORECASE,
)
_REUPLOAD_MARKER = re.compile(
    r"[(\[]\s*(?:re-?upload(?:ed)?|re-?posted?|fixed(?:\s+audio)?|audio\s+fixed|corrected|updated)\s*[)\]]",
    re.IGNORECASE,
)

def normalize_title(title: str, *, keep_numbering: bool = False) -> str:
    """The comparable form of an episode title. A leading episode number is dropped unless
    ``keep_numbering`` (within one feed, "Ep 101: Daily update" and "Ep 102: Daily update"
    are two episodes).

    >>> normalize_title("Ep. 88: Midstream&nbsp;101 &mdash; What is an MLP?")
    'midstream 101 what is an mlp'
    >>> normalize_title("C-corp conversions (re-upload)")
    'c corp conversions'
    >>> normalize_title("Ep 101: Daily update", keep_numbering=True)
    'ep 101 daily update'
    """
    text = _REUPLOAD_MARKER.sub(" ", normalize_text(title or ""))
    if not keep_numbering:
        text = _EPISODE_PREFIX.sub("", text)
    return " ".join(w.text.casefold() for w in words_of(text))


def normalize_enclosure(url: str | None) -> str | None:
    """The publisher's file behind an enclosure URL (:func:`earshot.identity.tracking_free_url`:
    tracking prefixes, scheme and fragment removed, host lowercased), without its query.

    >>> normalize_enclosure("https://dts.podtrac.com/redirect.mp3/Media.Example.com/ep1.mp3?utm=x")
    'media.example.com/ep1.mp3'
    >>> normalize_enclosure("https://op3.dev/e/chtbl.com/track/ABC/https://media.example.com/ep1.mp3")
    'media.example.com/ep1.mp3'
    >>> normalize_enclosure("") is None
    True
    """
    free = tracking_free_url(url)
    if free is None:
        return None
    return free.split("?", 1)[0] or None


# ------------------------------------------------------------------ podcasts
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Any scheme and the "//" of a link, or a scheme-relative link's "//".
_SCHEME_AND_SLASHES = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


def _words(text: str | None) -> str:
    return " ".join(w.text.casefold() for w in words_of(normalize_text(text or "")))


def normalize_author(author: str | None) -> str:
    """The comparable form of a feed's author: the name when there is one, else the address.

    >>> normalize_author("mike@mikedell.com (Mike Dell)"), normalize_author("John Doe <john@example.com>")
    ('mike dell', 'john doe')
    >>> normalize_author("show@homegrownhits.xyz"), normalize_author(None)
    ('show@homegrownhits.xyz', '')
    """
    text = (author or "").strip()
    name = _words(_EMAIL.sub(" ", text))
    if name:
        return name
    address = _EMAIL.search(text)
    return address.group().lower() if address else ""


def normalize_link(link: str | None) -> str:
    """The comparable form of a podcast's web page: no scheme, no ``www.``, no trailing slash.

    >>> normalize_link("https://www.PodcastHelpDesk.com/"), normalize_link("http://podcastindex.org")
    ('podcasthelpdesk.com', 'podcastindex.org')
    """
    rest = _SCHEME_AND_SLASHES.sub("", (link or "").strip())
    rest = rest.split("#", 1)[0].rstrip("/")
    host, _, path = rest.partition("/")
    host = host.lower().removeprefix("www.")
    return f"{host}/{path}" if path else host


@dataclass(frozen=True)
class PodcastFacts:
    """What a feed says about the podcast it carries."""

    title: str
    author: str
    link: str
    guid: str

    @classmethod
    def of(cls, item: MatchedEpisode) -> "PodcastFacts":
        return cls(title=_words(item.podcast), author=normalize_author(item.podcast_author),
                   link=normalize_link(item.podcast_link), guid=(item.podcast_guid or "").strip().lower())


def same_podcast(a: PodcastFacts, b: PodcastFacts) -> bool:
    """Whether two feeds carry one podcast (the rule in the module docstring)."""
    if a.guid and a.guid == b.guid:
        return True
    if not (a.title and a.link) or (a.title, a.link) != (b.title, b.link):
        return False
    return not a.author or not b.author or a.author == b.author


def podcast_groups(items: Iterable[MatchedEpisode]) -> dict[str, str]:
    """feed id -> the podcast it carries, named by the smallest feed id of its group.

    >>> def m(feed, guid=None, title="Show", link="https://show.example", author=None):
    ...     return MatchedEpisode(feed_id=feed, episode_id="e", podcast=title, podcast_guid=guid,
    ...                           podcast_link=link, podcast_author=author)
    >>> podcast_groups([m("f1", guid="g"), m("f2", guid="g", title="Renamed"), m("f3"), m("f4", author="Ann"),
    ...                 m("f5", title="Other"), m("f6", author="Bob", link="https://elsewhere.example")])
    {'f1': 'f1', 'f2': 'f1', 'f3': 'f1', 'f4': 'f1', 'f5': 'f5', 'f6': 'f6'}
    """
    facts: dict[str, PodcastFacts] = {}
    for item in items:
        facts.setdefault(item.feed_id, PodcastFacts.of(item))
    feeds = sorted(facts)
    parent = {f: f for f in feeds}

    def find(f: str) -> str:
        while parent[f] != f:
            parent[f] = parent[parent[f]]
            f = parent[f]
        return f

    buckets: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in feeds:
        for key in (("guid", facts[f].guid), ("title+link", f"{facts[f].title}\n{facts[f].link}")):
            if key[1].strip():
                buckets[key].append(f)
    for group in buckets.values():
        for x, f in enumerate(group):
            for g in group[x + 1:]:
                if same_podcast(facts[f], facts[g]):
                    a, b = sorted((find(f), find(g)))
                    parent[b] = a
    return {f: find(f) for f in feeds}


@dataclass(frozen=True)
class Cluster:
    """One episode as a listener sees it, with every listing that was folded into it."""

    representative: MatchedEpisode
    listings: tuple[MatchedEpisode, ...]
    podcasts: frozenset[str] = frozenset()  # the podcasts (``podcast_groups``) of its listings

    @property
    def feed_ids(self) -> set[str]:
        return {item.feed_id for item in self.listings}

    @property
    def also_in(self) -> int:
        """How many other podcasts carry this episode (feeds of one podcast count once)."""
        return len(self.podcasts or self.feed_ids) - 1

    @property
    def folded(self) -> int:
        """Listings beyond the first (re-uploads and syndicated copies)."""
        return len(self.listings) - 1

    @property
    def published(self) -> datetime | None:
        return self.representative.published


def _within(a: datetime | None, b: datetime | None, gap: timedelta) -> bool:
    return a is not None and b is not None and abs(a - b) <= gap


def _durations_close(a: int | None, b: int | None) -> bool:
    if not a or not b:
        return False  # an unknown duration cannot confirm syndication
    return abs(a - b) <= MAX_DURATION_RATIO * max(a, b)


def is_same_episode(a: MatchedEpisode, b: MatchedEpisode) -> bool:
    """Whether two listings are one episode (the rules in the module docstring)."""
    enclosure_a = normalize_enclosure(a.audio_url)
    if enclosure_a is not None and enclosure_a == normalize_enclosure(b.audio_url):
        return True
    if normalize_title(a.title) != normalize_title(b.title) or not normalize_title(a.title):
        return False
    if not _within(a.published, b.published, MAX_DATE_GAP):
        return False
    if a.feed_id == b.feed_id:
        return normalize_title(a.title, keep_numbering=True) == normalize_title(b.title, keep_numbering=True)
    return _durations_close(a.duration_seconds, b.duration_seconds)


def cluster_episodes(items: Iterable[MatchedEpisode],
                     podcast_of: Mapping[str, str] | None = None) -> list[Cluster]:
    """Fold duplicate listings into clusters, newest first. ``podcast_of`` (feed id ->
    podcast, default :func:`podcast_groups` of the listings) says which feeds are one podcast.

    Candidates are bucketed by normalized title, by enclosure and by (podcast, guid), so
    only listings that share one are compared (not every pair).
    """
    listings: list[MatchedEpisode] = list(items)
    podcast_of = podcast_of if podcast_of is not None else podcast_groups(listings)
    parent = list(range(len(listings)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    by_enclosure: dict[str, list[int]] = defaultdict(list)
    by_guid: dict[tuple[str, str], list[int]] = defaultdict(list)
    by_title: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(listings):
        if (enclosure := normalize_enclosure(item.audio_url)) is not None:
            by_enclosure[enclosure].append(i)
        if item.guid and (guid := item.guid.strip()):
            # Items a publisher gave one guid but earshot.identity told apart have ids
            # "<guid>#<content hash>": that id, stable across a podcast's feeds, is the key.
            key = item.episode_id if item.episode_id.startswith(guid + "#") else guid
            by_guid[(podcast_of.get(item.feed_id, item.feed_id), key)].append(i)
        if title := normalize_title(item.title):
            by_title[title].append(i)
    for group in (*by_enclosure.values(), *by_guid.values()):
        for j in group[1:]:
            union(group[0], j)
    for group in by_title.values():
        for x, i in enumerate(group):
            for j in group[x + 1:]:
                if is_same_episode(listings[i], listings[j]):
                    union(i, j)

    members: dict[int, list[MatchedEpisode]] = defaultdict(list)
    for i, item in enumerate(listings):
        members[find(i)].append(item)
    clusters = [Cluster(_representative(group), tuple(group),
                        frozenset(podcast_of.get(e.feed_id, e.feed_id) for e in group))
                for group in members.values()]
    return sort_newest_first(clusters)


def _timestamp(dt: datetime | None) -> float:
    return dt.timestamp() if dt is not None else float("-inf")


def _representative(group: Sequence[MatchedEpisode]) -> MatchedEpisode:
    original = min(group, key=lambda e: (_timestamp(e.published), e.podcast.casefold(), e.episode_id))
    same_feed = [e for e in group if e.feed_id == original.feed_id]
    return max(same_feed, key=lambda e: (_timestamp(e.published), e.episode_id))


def sort_newest_first(clusters: list[Cluster]) -> list[Cluster]:
    """Newest first; undated episodes last; ties broken by podcast and title for stability."""
    return sorted(
        clusters,
        key=lambda c: (-_timestamp(c.published) if c.published else float("inf"),
                       c.representative.podcast.casefold(), c.representative.title.casefold()),
    )
