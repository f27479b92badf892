"""A topic's backfill as a fan-out: the archive re-matched in segments that run apart.

    plan_backfill     record run R of the topic (every segment not started), one task each
    run_segment       read a segment page by page (``segments.read_segment``), write the
                      page's matches tagged with R, record the segment's cursor and counts
    finish_if_complete  once every segment is done: drop the topic's matches R did not
                      write (stale ones), mark R finished

Deployed, the coordinator (``earshot topics --backend aws add|edit``) sends one queue
message per task and the backfill worker function runs them; locally the same tasks run
one after another in-process (``run_backfill``).

Safe to retry: matches are upserts; a segment resumes at its recorded cursor; a done
segment is not read again; dropping stale matches is repeatable, so two workers finishing
together, or a retry after a crash between the drop and the mark, do no harm. Superseded:
a newer run (the query edited again) replaces the record; an older run's worker stops at
its next page (``save_segment_progress`` answers None) and the matches it wrote are not
the newer run's, so the newer run's finish drops them.

Known window: a match that ingest writes for a new episode while a run is in progress is
not tagged with the run; if that episode is not in a segment read after it was stored,
the run's finish drops it, and the next check of a changed episode restores it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field

from earshot.models import BackfillJob, SegmentProgress, Topic
from earshot.store import Store
from earshot.store.archive import TranscriptArchive
from earshot.topics.matching import EpisodeTranscript, compile_query, match_episodes, uses_transcripts
from earshot.topics.segments import PAGE_SIZE, Segment, plan_segments, read_segment


class SegmentTask(BaseModel):
    """The queue message: run segment ``segment`` of ``total_segments`` of run ``run_id``."""

    slug: str
    run_id: str
    segment: int = Field(ge=0)
    total_segments: int = Field(ge=1)


SEGMENT_STATES = ("done", "paused", "superseded")


@dataclass(frozen=True)
class SegmentOutcome:
    """What one run of a task did: ``state`` is ``done``, ``paused`` (stopped for time,
    progress recorded, run it again) or ``superseded`` (a newer run, or no topic)."""

    state: str
    pages: int = 0
    scanned: int = 0
    matched: int = 0
    finished_run: bool = False


def plan_backfill(repo: Store, topic: Topic, *, total_segments: int, now: datetime,
                  run_id: str | None = None) -> tuple[BackfillJob, list[SegmentTask]]:
    """Record a new run of ``topic``'s backfill (replacing any earlier run) and answer
    its tasks, one per segment."""
    run_id = run_id or uuid.uuid4().hex
    job = BackfillJob(slug=topic.slug, run_id=run_id, query=topic.query, search_transcripts=topic.search_transcripts,
                      total_segments=total_segments,
                      segments={s.index: SegmentProgress() for s in plan_segments(total_segments)},
                      started_at=now)
    repo.start_backfill(job)
    return job, [SegmentTask(slug=topic.slug, run_id=run_id, segment=i, total_segments=total_segments)
                 for i in range(total_segments)]


def run_segment(repo: Store, task: SegmentTask, *, now: Callable[[], datetime],
                page_size: int = PAGE_SIZE, should_continue: Callable[[], bool] | None = None,
                archive: TranscriptArchive | None = None) -> SegmentOutcome:
    """Match one segment of the archive against the run's query, page by page.

    ``should_continue`` is asked before each page after the first (a Lambda's time left):
    when it says no, the segment's progress is already recorded and the outcome is
    ``paused``; running the same task again resumes at the cursor. A query that looks in
    transcripts reads each episode's fetched transcript from ``archive``.
    """
    job = repo.get_backfill(task.slug)
    if job is None or job.run_id != task.run_id:
        return SegmentOutcome("superseded")
    progress = job.segments.get(task.segment, SegmentProgress())
    if progress.done:  # a redelivered message: the segment's work is recorded
        return SegmentOutcome("done", finished_run=finish_if_complete(repo, job, now=now()))
    query = compile_query(job.query, search_transcripts=job.search_transcripts)
    reads_transcripts = archive is not None and uses_transcripts(query)
    pages = 0
    for page in read_segment(repo, Segment(task.segment, task.total_segments), cursor=progress.cursor,
                             page_size=page_size):
        matches = []
        for episode, feed_id, podcast in page.episodes:
            transcript = _transcript(repo, archive, feed_id, episode.id) if reads_transcripts and archive else None
            matches += match_episodes(query, [episode], feed_id=feed_id, podcast=podcast,
                                      transcripts={episode.id: transcript} if transcript else None)
        repo.put_run_matches(task.slug, task.run_id, matches)
        progress = SegmentProgress(cursor=page.cursor, scanned=progress.scanned + page.scanned,
                                   matched=progress.matched + len(matches), done=page.cursor is None)
        saved = repo.save_segment_progress(task.slug, task.run_id, task.segment, progress)
        pages += 1
        if saved is None:
            return SegmentOutcome("superseded", pages, progress.scanned, progress.matched)
        job = saved
        if not progress.done and should_continue is not None and not should_continue():
            return SegmentOutcome("paused", pages, progress.scanned, progress.matched)
    return SegmentOutcome("done", pages, progress.scanned, progress.matched,
                          finished_run=finish_if_complete(repo, job, now=now()))


def _transcript(repo: Store, archive: TranscriptArchive, feed_id: str, episode_id: str) -> EpisodeTranscript | None:
    """The episode's fetched transcript, if there is one."""
    state = repo.get_transcript_state(feed_id, episode_id)
    if state is None or state.status != "fetched":
        return None
    cues = archive.get_transcript(feed_id, episode_id)
    return EpisodeTranscript(state.url, cues) if cues else None


def finish_if_complete(repo: Store, job: BackfillJob, *, now: datetime) -> bool:
    """Once every segment of ``job`` is done: drop the matches the run did not write and
    mark it finished. True when this call finished it. Repeatable."""
    if not job.is_complete or job.finished_at is not None:
        return False
    removed = repo.drop_matches_outside_run(job.slug, job.run_id)
    return repo.finish_backfill(job.slug, job.run_id, removed=removed, now=now)


def run_backfill(repo: Store, topic: Topic, *, total_segments: int, now: Callable[[], datetime],
                 page_size: int = PAGE_SIZE, archive: TranscriptArchive | None = None) -> BackfillJob:
    """The whole backfill in this process: plan it, run every segment, answer the
    finished run (the local CLI's way, and the reference the fan-out is tested against)."""
    job, tasks = plan_backfill(repo, topic, total_segments=total_segments, now=now())
    for task in tasks:
        run_segment(repo, task, now=now, page_size=page_size, archive=archive)
    finished = repo.get_backfill(topic.slug)
    assert finished is not None and finished.run_id == job.run_id
    return finished
