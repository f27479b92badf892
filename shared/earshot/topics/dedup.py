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

The cluster's representative listing comes from the podcast that published it first (the
original publisher); within that podcast, its newest version.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
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


@dataclass(frozen=True)
class Cluster:
    """One episode as a listener sees it, with every listing that was folded into it."""

    representative: MatchedEpisode
    listings: tuple[MatchedEpisode, ...]

    @property
    def feed_ids(self) -> set[str]:
        return {item.feed_id for item in self.listings}

    @property
    def also_in(self) -> int:
        """How many other podcasts carry this episode."""
        return len(self.feed_ids) - 1

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


def cluster_episodes(items: Iterable[MatchedEpisode]) -> list[Cluster]:
    """Fold duplicate listings into clusters, newest first.

    Candidates are bucketed by normalized title and by enclosure, so only listings that
    share one are compared (not every pair).
    """
    listings: list[MatchedEpisode] = list(items)
    parent = list(range(len(listings)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    by_enclosure: dict[str, list[int]] = defaultdict(list)
    by_title: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(listings):
        if (enclosure := normalize_enclosure(item.audio_url)) is not None:
            by_enclosure[enclosure].append(i)
        if title := normalize_title(item.title):
            by_title[title].append(i)
    for group in by_enclosure.values():
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
    clusters = [Cluster(_representative(group), tuple(group)) for group in members.values()]
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
