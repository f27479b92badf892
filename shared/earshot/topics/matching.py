"""Matching episodes against topics: one straight line from episode to match item.

``match_new_episodes`` is called by the fetch worker after a feed's new or changed
episodes are stored. It must be cheap when nothing needs doing: with no topics (or no
episodes) it makes at most one Query, and the topic list is cached for
``TOPIC_CACHE_TTL_S`` so a warm worker refreshing many feeds reads it once a minute,
not once a feed.

Transcripts arrive later than their episodes (their own queue and worker):
``match_transcript`` re-matches one episode with its transcript's cues against every
topic, and a match found there carries the moment (``MatchedEpisode.moment``).

The same functions serve the offline ``earshot match`` command (no DynamoDB).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from earshot.errors import QueryError
from earshot.models import Cue, Episode, FeedInfo, FeedState, MatchedEpisode, Topic, TranscriptMoment
from earshot.topics.percolator import Percolator
from earshot.topics.query import (
    DEFAULT_FIELDS,
    TRANSCRIPT_DEFAULT_FIELDS,
    Document,
    MatchResult,
    Query,
    parse_query,
)

if TYPE_CHECKING:
    from earshot.store import Store

logger = logging.getLogger(__name__)

TOPIC_CACHE_TTL_S = 60.0


@dataclass(frozen=True)
class Podcast:
    """The feed an episode comes from, as a match records it: its title, and what tells
    whether two feeds are one podcast (see ``earshot.topics.stats.podcast_groups``)."""

    title: str = ""
    guid: str | None = None
    author: str | None = None
    link: str | None = None

    @classmethod
    def of(cls, feed: FeedState | FeedInfo) -> "Podcast":
        return cls(title=feed.title, guid=feed.podcast_guid, author=feed.author, link=feed.link)


@dataclass(frozen=True)
class EpisodeTranscript:
    """An episode's fetched transcript, as matching reads it."""

    url: str
    cues: Sequence[Cue]


def compile_query(text: str, *, search_transcripts: bool) -> Query:
    """A topic's query text, its unfielded terms looking in transcripts too when the
    topic says so (raises QueryError, with the position)."""
    return parse_query(text, default_fields=TRANSCRIPT_DEFAULT_FIELDS if search_transcripts else DEFAULT_FIELDS)


def compile_topic(topic: Topic) -> Query:
    """A stored topic's query (see :func:`compile_query`)."""
    return compile_query(topic.query, search_transcripts=topic.search_transcripts)


def uses_transcripts(query: Query) -> bool:
    """Whether any term of ``query`` looks in transcripts (else they need not be read)."""
    return any("transcript" in term.fields for term in query.terms)


def snapshot(episode: Episode, *, feed_id: str, podcast: str | Podcast, reason: str,
             result: MatchResult | None = None, transcript: EpisodeTranscript | None = None) -> MatchedEpisode:
    """What a match stores about its episode (see ``MatchedEpisode``); a result with a
    transcript hit adds the moment and the transcript's URL."""
    source = podcast if isinstance(podcast, Podcast) else Podcast(title=podcast)
    hit = result.moment if result is not None else None
    moment = TranscriptMoment(start_seconds=int(hit.at_s or 0), text=hit.excerpt) if hit is not None else None
    in_transcript = result is not None and any("transcript" in h.fields for h in result.hits)
    return MatchedEpisode(
        feed_id=feed_id, episode_id=episode.id, podcast=source.title, podcast_guid=source.guid,
        podcast_author=source.author, podcast_link=source.link, guid=episode.guid,
        title=episode.title, published=episode.published, duration_seconds=episode.duration_seconds,
        summary=episode.summary, has_transcript=episode.has_transcript, audio_url=episode.audio_url,
        audio_type=episode.audio_type, audio_length=episode.audio_length, link=episode.link,
        image=episode.image, reason=reason, moment=moment,
        transcript_url=transcript.url if transcript is not None and in_transcript else None,
    )


def match_episodes(
    query: Query, episodes: Iterable[Episode], *, feed_id: str, podcast: str | Podcast,
    transcripts: Mapping[str, EpisodeTranscript] | None = None,
) -> list[MatchedEpisode]:
    """The episodes of one feed that ``query`` matches, each with its reason. ``podcast``
    is the feed's title, or the whole :class:`Podcast` (stats then know its identity);
    ``transcripts`` (episode id -> transcript) are searched where the query says so."""
    title = podcast.title if isinstance(podcast, Podcast) else podcast
    out = []
    for episode in episodes:
        transcript = transcripts.get(episode.id) if transcripts else None
        result = query.evaluate(Document.from_episode(episode, title, transcript.cues if transcript else ()))
        if result.matched:
            out.append(snapshot(episode, feed_id=feed_id, podcast=podcast, reason=result.reason, result=result,
                                transcript=transcript))
    return out


# ----------------------------------------------------------------- topic cache
@dataclass(frozen=True)
class CompiledTopic:
    topic: Topic
    query: Query


class TopicIndex:
    """Every matchable topic, parsed, and filed by the words its query requires
    (:class:`~earshot.topics.percolator.Percolator`)."""

    def __init__(self, compiled: list[CompiledTopic]) -> None:
        self.topics = compiled
        self.percolator = Percolator(compiled, [c.query.root for c in compiled])

    def candidates(self, episode: Episode, podcast: str) -> list[CompiledTopic]:
        """The topics ``episode`` may match (a superset of those it does)."""
        return self.percolator.candidates(Document.from_episode(episode, podcast))


class _TopicCache:
    """Parsed and indexed topics per table, reloaded after ``TOPIC_CACHE_TTL_S`` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, TopicIndex]] = {}

    def get(self, repo: "Store", *, max_age_s: float = TOPIC_CACHE_TTL_S) -> TopicIndex:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(repo.name)
            if entry is not None and now - entry[0] < max_age_s:
                return entry[1]
        index = TopicIndex(compile_topics(repo.list_topics()))
        with self._lock:
            self._entries[repo.name] = (now, index)
        return index

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def compile_topics(topics: Iterable[Topic]) -> list[CompiledTopic]:
    """Parse each topic's query; one that cannot be parsed is logged and left out."""
    compiled = []
    for topic in topics:
        try:
            compiled.append(CompiledTopic(topic, compile_topic(topic)))
        except (QueryError, RecursionError) as exc:
            # Stored before today's limits, or written around them: this topic is
            # skipped (and says why in the log); every other topic is still matched.
            logger.error("topic query cannot be matched", extra={"topic": topic.slug, "error": str(exc)})
    return compiled


_cache = _TopicCache()
clear_topic_cache = _cache.clear


def match_new_episodes(repo: "Store", feed: FeedState, episodes: list[Episode], *,
                       changed_ids: Collection[str] | None = None) -> int:
    """Match a feed's new/changed episodes against the topics; returns matches written.

    Percolation: each episode is evaluated only against the topics its words make
    possible (``TopicIndex.candidates``), so 10,000 topics cost a few dictionary
    look-ups per episode, not 10,000 evaluations. A changed episode may stop matching a
    topic it no longer even mentions: for episodes already stored (changed ones; read
    with one keys-only query) every topic's earlier matches are replaced, so a topic
    never shows stale text; new episodes touch only the topics they match.
    ``changed_ids`` says which of ``episodes`` are stored already when the caller knows
    (the refresh does, batch after batch); None reads the feed's stored ids.
    """
    if not episodes:
        return 0
    index = _cache.get(repo)
    if not index.topics:
        return 0
    podcast = Podcast.of(feed)
    per_topic: dict[int, list[Episode]] = {}
    for episode in episodes:
        for i in index.percolator.candidate_indexes(Document.from_episode(episode, podcast.title)):
            per_topic.setdefault(i, []).append(episode)
    stored: Collection[str] = repo.episode_hashes(feed.feed_id) if changed_ids is None else set(changed_ids)
    changed_ids = [ep.id for ep in episodes if ep.id in stored]
    written = 0
    for i, compiled in enumerate(index.topics):
        candidates = per_topic.get(i, [])
        matches = (match_episodes(compiled.query, candidates, feed_id=feed.feed_id, podcast=podcast)
                   if candidates else [])
        if not matches and not changed_ids:
            continue  # new episodes only, none matching: nothing to write, nothing stale
        # Only changed episodes can have matches that no longer hold; a new episode's
        # matches are written, never looked up (no read of the topic's matches at all).
        repo.replace_feed_matches(compiled.topic.slug, feed.feed_id, changed_ids, matches)
        written += len(matches)
    return written


def match_transcript(repo: "Store", feed: FeedState, episode: Episode, transcript: EpisodeTranscript) -> int:
    """Re-match one episode, now with its transcript, against every topic that looks in
    transcripts; returns matches written. The episode's match in each such topic is
    replaced (a transcript match gains its moment; a topic matched on the title keeps
    the match, now with the moment if the transcript also says it)."""
    written = 0
    for compiled in _cache.get(repo).topics:
        if not uses_transcripts(compiled.query):
            continue  # its matches cannot change: the transcript is not where it looks
        matches = match_episodes(compiled.query, [episode], feed_id=feed.feed_id, podcast=Podcast.of(feed),
                                 transcripts={episode.id: transcript})
        repo.replace_feed_matches(compiled.topic.slug, feed.feed_id, [episode.id], matches)
        written += len(matches)
    return written


def match_every_topic(topics: list[CompiledTopic], episode: Episode, podcast: str) -> list[str]:
    """Slugs of the topics ``episode`` matches, evaluating every topic (no index): the
    reference percolation is checked against, and the bench's baseline."""
    doc = Document.from_episode(episode, podcast)
    return [c.topic.slug for c in topics if c.query.evaluate(doc).matched]


def match_percolated(index: TopicIndex, episode: Episode, podcast: str) -> list[str]:
    """Slugs of the topics ``episode`` matches, evaluating only the index's candidates."""
    doc = Document.from_episode(episode, podcast)
    return [c.topic.slug for c in index.percolator.candidates(doc) if c.query.evaluate(doc).matched]
