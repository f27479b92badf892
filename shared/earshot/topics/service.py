"""The topic service: add, edit, remove, list and show topics, and keep matches current.

Adding or editing a topic backfills it: every stored episode is matched against the
(new) query, matches that no longer hold are removed, so a topic's page always reflects
its current query over the whole archive. The archive is read in segments
(``topics.backfill``): in this process one after another, or, given ``fan_out`` (a
queue's ``send_messages``), as one message per segment for the backfill workers, the
topic then showing ``backfilling 37 %`` until every segment is done. New episodes are
matched at ingest (``matching.match_new_episodes``), their transcripts when fetched
(``matching.match_transcript``). A backfill whose query looks in transcripts reads the
stored ones from the transcript archive (given as ``archive``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from earshot.errors import InvalidTopic, NotFound
from earshot.models import BackfillJob, LeftOut, MatchedEpisode, Topic
from earshot.store import Store
from earshot.store.archive import TranscriptArchive
from earshot.topics.backfill import plan_backfill, run_backfill
from earshot.topics.matching import clear_topic_cache, compile_query, compile_topic
from earshot.topics.query import Query
from earshot.topics.senses import Coverage, SenseDoc, coverage
from earshot.topics.stats import TopicReport, build_report

# Segments of an in-process backfill: pages are read one segment after another, so the
# count only sets how often progress is recorded.
LOCAL_SEGMENTS = 4
# Segments of a fanned-out backfill: the workers that may read the archive at once.
FAN_OUT_SEGMENTS = 32

FanOut = Callable[[list[dict[str, Any]]], int]


@dataclass(frozen=True)
class BackfillResult:
    topic: Topic
    matched: int
    removed: int
    coverage: Coverage | None = None  # the senses of the query's main term (add and a new query)
    #: the run's record (None when nothing was re-matched); ``job.status`` says
    #: ``backfilled`` or, fanned out, ``backfilling 0 %`` until the workers finish
    job: BackfillJob | None = None


def _validated(**fields: object) -> Topic:
    try:
        return Topic.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidTopic(problems) from None


def get_topic(repo: Store, slug: str) -> Topic:
    topic = repo.get_topic(slug)
    if topic is None:
        raise NotFound(f"no topic {slug!r}")
    return topic


def list_topics(repo: Store) -> list[Topic]:
    return sorted(repo.list_topics(), key=lambda t: t.slug)


def add_topic(
    repo: Store, slug: str, *, name: str, query: str, description: str = "", now: datetime,
    search_transcripts: bool = False, archive: TranscriptArchive | None = None,
    fan_out: FanOut | None = None, segments: int | None = None,
) -> BackfillResult:
    """Create a topic and backfill it. Raises QueryError for a bad query (before storing)."""
    # Parsed first: a bad query is refused with its position, before the model's own limits.
    parsed = compile_query(query, search_transcripts=search_transcripts)
    topic = _validated(slug=slug, name=name, query=query, description=description,
                       search_transcripts=search_transcripts, created_at=now, updated_at=now)
    if not repo.create_topic(topic):
        raise InvalidTopic(f"topic {slug!r} already exists (use `topics edit`)")
    clear_topic_cache()
    return record_senses(repo, backfill(repo, topic, parsed, fan_out=fan_out, now=now, segments=segments,
                                        archive=archive), parsed)


def edit_topic(
    repo: Store, slug: str, *, name: str | None = None, query: str | None = None,
    description: str | None = None, now: datetime, search_transcripts: bool | None = None,
    archive: TranscriptArchive | None = None,
    fan_out: FanOut | None = None, segments: int | None = None,
) -> BackfillResult:
    """Change a topic; a changed query (or transcript switch) re-matches the archive and
    drops stale matches."""
    current = get_topic(repo, slug)
    # Parsed first (nothing is stored for a bad query): refused with its position, before
    # the model's own limits.
    parsed = compile_query(current.query if query is None else query, search_transcripts=current.search_transcripts
                           if search_transcripts is None else search_transcripts)
    changes = {k: v for k, v in (("name", name), ("query", query), ("description", description),
                                 ("search_transcripts", search_transcripts)) if v is not None}
    topic = _validated(**{**current.model_dump(), **changes, "updated_at": now})
    if not repo.save_topic(topic):
        raise NotFound(f"no topic {slug!r}")
    clear_topic_cache()
    if (topic.query, topic.search_transcripts) == (current.query, current.search_transcripts):
        return BackfillResult(topic, matched=repo.count_matches(slug), removed=0)
    return record_senses(repo, backfill(repo, topic, parsed, fan_out=fan_out, now=now, segments=segments,
                                        archive=archive), parsed)


def remove_topic(repo: Store, slug: str) -> None:
    if not repo.delete_topic(slug):
        raise NotFound(f"no topic {slug!r}")
    clear_topic_cache()


def backfill(repo: Store, topic: Topic, query: Query | None = None, *, fan_out: FanOut | None = None,
             now: datetime | None = None, segments: int | None = None,
             archive: TranscriptArchive | None = None) -> BackfillResult:
    """Re-match every stored episode against ``topic``; write new matches, drop stale ones.

    In this process (no ``fan_out``) the archive is read segment by segment, a page at a
    time, and the result is final. With ``fan_out`` the run is recorded and one message
    per segment is handed to it; the result then counts nothing yet (see
    ``backfill_status``). A query that looks in transcripts also reads each episode's
    stored transcript from ``archive`` (deployed, the workers use the S3 archive).
    """
    if query is None:
        compile_topic(topic)  # a bad stored query fails here, typed, before any run is recorded
    started = now or datetime.now(UTC)
    if fan_out is not None:
        job, tasks = plan_backfill(repo, topic, total_segments=segments or FAN_OUT_SEGMENTS, now=started)
        fan_out([t.model_dump() for t in tasks])
        return BackfillResult(topic, matched=0, removed=0, job=job)
    job = run_backfill(repo, topic, total_segments=segments or LOCAL_SEGMENTS,
                       now=lambda: datetime.now(UTC) if now is None else started, archive=archive)
    return BackfillResult(topic, matched=job.matched, removed=job.removed, job=job)


def backfill_status(repo: Store, slug: str) -> str | None:
    """``backfilling 37 %`` / ``backfilled`` for the topic's latest run (None: no run recorded)."""
    job = repo.get_backfill(slug)
    return job.status if job is not None else None


def topic_matches(repo: Store, slug: str) -> tuple[Topic, list[MatchedEpisode]]:
    """A topic and all its matched listings, newest first (raises NotFound)."""
    topic = get_topic(repo, slug)
    return topic, repo.list_matches(slug)


def topic_report(
    repo: Store, slug: str, *, now: datetime,
    window: tuple[datetime, datetime] | None = None, latest_limit: int | None = 20,
) -> TopicReport:
    """The topic's report (see ``stats.build_report``); raises NotFound for an unknown slug."""
    _, matches = topic_matches(repo, slug)
    return build_report(matches, now=now, window=window, latest_limit=latest_limit)



def stored_sense_docs(repo: Store) -> list[SenseDoc]:
    """Every stored episode as senses read it (one Scan, as a backfill; feeds of one
    podcast by its ``<podcast:guid>`` or, without one, by title)."""
    podcasts = {feed.feed_id: feed.podcast_guid or feed.title or feed.feed_id for feed in repo.list_feeds()}
    return [SenseDoc(id=e.id, podcast=podcasts[e.feed_id], title=e.title, description=e.summary,
                     published=e.published, duration_seconds=e.duration_seconds)
            for e in repo.iter_all_episodes() if e.feed_id in podcasts]


def record_senses(repo: Store, result: BackfillResult, query: Query) -> BackfillResult:
    """Find the senses of the query's main term in the store and keep, on the topic, the
    ones the query leaves out (its page says so). A second read of the archive, like the
    backfill it follows: adding or editing a topic is rare, never on the ingest path."""
    found = coverage(query, stored_sense_docs(repo))
    left_out = [LeftOut(term=found.term, label=sense.label, episodes=missed)
                for sense, missed in found.left_out] if found else []
    topic = result.topic
    if left_out != topic.left_out:
        topic = topic.model_copy(update={"left_out": left_out})
        repo.save_topic(topic)
    return replace(result, topic=topic, coverage=found)
