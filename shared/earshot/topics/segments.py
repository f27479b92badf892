"""Segments of the archive: any job that must read every stored episode (a topic's
backfill, an analysis over the archive) reads it as ``total`` segments that run apart:
in parallel workers deployed (one queue message each), one after another locally.

A segment is read page by page (``Store.episode_segment``), so a worker holds one page
and never the archive; each page comes with the cursor of the next, which a job records
so that a retried segment resumes where it stopped. Episodes come with their podcast
(the feed's title and identity), looked up once per feed and page, and remembered for a
bounded number of feeds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from earshot.models import Episode
from earshot.store import Store
from earshot.topics.matching import Podcast

PAGE_SIZE = 500  # items a page reads: a DynamoDB Scan page of 500 episodes is ~0.5-1 MB
FEED_MEMORY = 10_000  # feeds whose podcast a reader remembers (a segment's feeds come in runs)


@dataclass(frozen=True)
class Segment:
    """Segment ``index`` of ``total`` (0-based)."""

    index: int
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.total:
            raise ValueError(f"segment {self.index} is not one of 0..{self.total - 1}")


def plan_segments(total: int) -> list[Segment]:
    """The ``total`` segments that together cover the archive."""
    return [Segment(i, total) for i in range(total)]


@dataclass(frozen=True)
class SegmentPage:
    """One page: the episodes whose feed is still stored, with their podcasts; how many
    episodes were read (``scanned``, orphans included); the next page's cursor (None at
    the segment's end)."""

    episodes: list[tuple[Episode, str, Podcast]]  # (episode, feed id, podcast)
    scanned: int
    cursor: str | None


class _Podcasts:
    """Podcasts by feed id, fetched a page's missing feeds at a time, bounded in size."""

    def __init__(self, repo: Store, capacity: int = FEED_MEMORY) -> None:
        self.repo = repo
        self.capacity = capacity
        self._known: OrderedDict[str, Podcast | None] = OrderedDict()

    def of(self, feed_ids: set[str]) -> dict[str, Podcast | None]:
        missing = [fid for fid in feed_ids if fid not in self._known]
        if missing:
            found = self.repo.get_feeds(missing)
            for fid in missing:
                feed = found.get(fid)
                self._known[fid] = Podcast.of(feed) if feed is not None else None
        out = {}
        for fid in feed_ids:
            self._known.move_to_end(fid)
            out[fid] = self._known[fid]
        while len(self._known) > self.capacity:
            self._known.popitem(last=False)
        return out


def read_segment(repo: Store, segment: Segment, *, cursor: str | None = None,
                 page_size: int = PAGE_SIZE) -> Iterator[SegmentPage]:
    """The pages of ``segment`` from ``cursor`` on (None: from its start). Episodes of
    a feed removed meanwhile are counted as read and left out."""
    podcasts = _Podcasts(repo)
    while True:
        page = repo.episode_segment(segment.index, segment.total, cursor=cursor, limit=page_size)
        found = podcasts.of({ep.feed_id for ep in page.episodes if ep.feed_id})
        kept = []
        for episode in page.episodes:
            podcast = found.get(episode.feed_id) if episode.feed_id else None
            if podcast is not None and episode.feed_id is not None:
                kept.append((episode, episode.feed_id, podcast))
        yield SegmentPage(kept, len(page.episodes), page.cursor)
        if page.cursor is None:
            return
        cursor = page.cursor
