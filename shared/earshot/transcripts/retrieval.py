"""Fetching an episode's transcript: one straight line per queued job.

:func:`process_transcript_job` is what the transcript worker runs for each message:

1. read the episode and its feed (a job for a removed feed is skipped);
2. choose the transcripts to try, best format first (``choice``);
3. fetch through the fetcher (conditional GET with the stored validators, the
   ``transcript_max_bytes`` cap, the timeouts, the SSRF guard, at most
   ``max_requests_per_host`` at once per host);
4. parse into cues (``cues``) and keep them in the transcript archive (S3 deployed,
   the SQLite file locally), never in the episode's item;
5. record the state beside the episode and re-match the topics that look in
   transcripts (``topics.matching.match_transcript``): the moment reaches the page.

A transcript failing is data, never an exception, and never touches the episode: the
typed error's ``kind`` is recorded on the transcript state. A failure that may pass
(a timeout, a refused connection, 429, 5xx) is retried: the job goes back to the queue
delayed 1, 5, then 15 minutes (SQS's longest delay; a ``Retry-After`` is honoured up to
it) until ``transcript_max_attempts``; any other failure is final at once (404, over the
cap, not a transcript) after the next candidate, if any, failed too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from earshot.errors import (
    ConnectFailed,
    DecodeFailed,
    EarshotError,
    FetchError,
    FetchTimeout,
    HttpStatusError,
    InternalFeedError,
    NoUsableTranscript,
    ProtocolFailed,
    TranscriptError,
    TranscriptHostBusy,
)
from earshot.ingest.politeness import HostBusy, LeasedSlots
from earshot.ingest.sources import read_source
from earshot.models import Cue, Episode, FetchResult, Transcript, TranscriptState
from earshot.settings import Settings
from earshot.store import Store
from earshot.store.archive import TranscriptArchive
from earshot.topics.matching import EpisodeTranscript, match_transcript
from earshot.transcripts.choice import choose
from earshot.transcripts.cues import ParsedTranscript, parse_transcript

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

# Delay before retry n (1-based); the last applies to every later one. SQS holds a
# message back at most 15 minutes.
RETRY_DELAYS_S = (60, 300, 900)
MAX_RETRY_DELAY_S = 900
MAX_ERROR_CHARS = 500

TranscriptResult = Literal["fetched", "not_modified", "retrying", "failed", "skipped"]


class TranscriptJob(BaseModel):
    """The transcript queue's message: which episode, and how many fetches failed so far."""

    feed_id: str
    episode_id: str
    attempt: int = 0


@dataclass(frozen=True)
class TranscriptOutcome:
    feed_id: str
    episode_id: str
    result: TranscriptResult
    url: str | None = None
    format: str | None = None
    error_kind: str | None = None
    error_message: str | None = None
    size_bytes: int = 0
    cue_count: int = 0
    matches: int = 0
    retry_in_s: int | None = None
    attempts: int = 0
    requests: int = 0
    elapsed_s: float = 0.0


def jobs_for(feed_id: str, episodes: Iterable[Episode]) -> list[dict[str, Any]]:
    """Queue messages for the episodes that list a transcript."""
    return [TranscriptJob(feed_id=feed_id, episode_id=e.id).model_dump() for e in episodes if e.transcripts]


def is_retriable(exc: EarshotError) -> bool:
    """A failure that may pass by itself: worth another fetch later."""
    if isinstance(exc, HttpStatusError):
        return exc.status == 429 or exc.status >= 500
    return isinstance(exc, (FetchTimeout, ConnectFailed, ProtocolFailed, DecodeFailed, TranscriptHostBusy))


def retry_delay_s(attempt: int, retry_after_s: float | None = None) -> int:
    """Seconds before fetch number ``attempt + 1`` (``attempt`` fetches failed so far).

    >>> [retry_delay_s(n) for n in (1, 2, 3, 4)], retry_delay_s(1, retry_after_s=120.0)
    ([60, 300, 900, 900], 120)
    """
    delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S)) - 1]
    if retry_after_s:
        delay = max(delay, int(retry_after_s))
    return min(MAX_RETRY_DELAY_S, delay)


def transcript_settings(settings: Settings) -> Settings:
    """The fetcher's settings for a transcript: its own body cap."""
    return settings.with_(max_body_bytes=settings.transcript_max_bytes)


def fetch_transcript(
    transcript: Transcript, *, settings: Settings, client: httpx.Client | None = None,
    etag: str | None = None, last_modified: str | None = None,
) -> tuple[FetchResult, ParsedTranscript | None]:
    """One transcript fetched (conditionally) and parsed; ``None`` for a 304. Failures
    raise their FetchError or TranscriptError kind. Local files are read where the
    settings allow them (the CLI)."""
    result = read_source(transcript.url, settings=transcript_settings(settings), etag=etag,
                         last_modified=last_modified, client=client)
    if result.is_not_modified:
        return result, None
    return result, parse_transcript(result.body or b"", media_type=transcript.type,
                                    content_type=result.content_type)


@contextmanager
def _slot(limiter: LeasedSlots | None, url: str) -> Iterator[None]:
    """One of the host's request slots around a fetch; a host whose slots stay taken is a
    retriable transcript failure (nothing was fetched)."""
    with ExitStack() as stack:
        if limiter is not None:
            try:
                stack.enter_context(limiter.slot(url))
            except HostBusy as busy:
                raise TranscriptHostBusy(str(busy)) from None
        yield


def process_transcript_job(
    job: TranscriptJob, *, repo: Store, archive: TranscriptArchive, settings: Settings,
    client: httpx.Client | None = None, now: datetime | None = None, limiter: LeasedSlots | None = None,
) -> TranscriptOutcome:
    """Fetch, parse, archive and match one episode's transcript (see the module docstring)."""
    now = now or datetime.now(UTC)
    started = time.monotonic()
    episode = repo.get_episode(job.feed_id, job.episode_id)
    feed = repo.get_feed(job.feed_id)
    if episode is None or feed is None or not episode.transcripts:
        return TranscriptOutcome(job.feed_id, job.episode_id, "skipped")
    previous = repo.get_transcript_state(job.feed_id, job.episode_id)
    candidates = choose(episode.transcripts)
    if not candidates:
        error = NoUsableTranscript(f"no http(s) transcript among {len(episode.transcripts)} listed")
        return _record_failure(repo, job, episode.transcripts[0].url, error, now, settings, started, requests=0)
    failure: EarshotError | None = None
    tried_url = candidates[0].url
    requests = 0
    for candidate in candidates:
        tried_url = candidate.url
        same = previous is not None and previous.url == candidate.url and previous.status == "fetched"
        try:
            requests += 1
            with _slot(limiter, candidate.url):
                result, parsed = fetch_transcript(
                    candidate, settings=settings, client=client,
                    etag=previous.etag if same and previous else None,
                    last_modified=previous.last_modified if same and previous else None)
            cues: Sequence[Cue] | None
            if parsed is None:  # 304: the archived cues stand
                cues = archive.get_transcript(job.feed_id, job.episode_id)
                if cues is None:  # archived text gone (lifecycle): fetch it whole
                    requests += 1
                    with _slot(limiter, candidate.url):
                        result, parsed = fetch_transcript(candidate, settings=settings, client=client)
            if parsed is not None:
                cues = parsed.cues
                archive.put_transcript(job.feed_id, job.episode_id, parsed.cues)
            assert cues is not None
            state = TranscriptState(
                feed_id=job.feed_id, episode_id=job.episode_id, status="fetched", url=candidate.url,
                format=parsed.format if parsed else (previous.format if previous else None),
                etag=result.etag or (previous.etag if same and previous and parsed is None else None),
                last_modified=result.last_modified or (previous.last_modified if same and previous and parsed is None
                                                      else None),
                cue_count=len(cues), has_times=any(c.start_s is not None for c in cues),
                size_bytes=len(result.body) if result.body is not None else (previous.size_bytes if previous else 0),
                fetched_at=now, warnings=list(parsed.warnings) if parsed else (previous.warnings if previous else []),
            )
            repo.save_transcript_state(state)
            matches = match_transcript(repo, feed, episode, EpisodeTranscript(candidate.url, cues))
            return TranscriptOutcome(
                job.feed_id, job.episode_id, "fetched" if parsed is not None else "not_modified",
                url=candidate.url, format=state.format, size_bytes=state.size_bytes, cue_count=len(cues),
                matches=matches, requests=requests, elapsed_s=round(time.monotonic() - started, 3))
        except (FetchError, TranscriptError) as exc:
            failure = exc
            if is_retriable(exc):
                break  # the best choice failed for now: try it again later, not a worse one
        except Exception as exc:  # a bug on one transcript's input must not stop the batch
            logger.exception("unexpected error fetching the transcript %s", candidate.url)
            failure = InternalFeedError(f"{type(exc).__name__}: {exc}")
    assert failure is not None
    return _record_failure(repo, job, tried_url, failure, now, settings, started, requests=requests)


def _record_failure(
    repo: Store, job: TranscriptJob, url: str, error: EarshotError, now: datetime, settings: Settings,
    started: float, *, requests: int,
) -> TranscriptOutcome:
    attempts = job.attempt + 1
    retry_in_s: int | None = None
    if is_retriable(error) and attempts < settings.transcript_max_attempts:
        retry_in_s = retry_delay_s(attempts, getattr(error, "retry_after_s", None))
    state = TranscriptState(
        feed_id=job.feed_id, episode_id=job.episode_id, status="retrying" if retry_in_s else "failed", url=url,
        attempts=attempts, next_attempt_at=now + timedelta(seconds=retry_in_s) if retry_in_s else None,
        last_error_kind=error.kind, last_error_message=str(error)[:MAX_ERROR_CHARS],
    )
    repo.save_transcript_state(state)
    return TranscriptOutcome(
        job.feed_id, job.episode_id, state.status, url=url, error_kind=error.kind,
        error_message=state.last_error_message, retry_in_s=retry_in_s, attempts=attempts, requests=requests,
        elapsed_s=round(time.monotonic() - started, 3))


def process_transcript_jobs(
    jobs: list[TranscriptJob], *, repo: Store, archive: TranscriptArchive, settings: Settings,
    client: httpx.Client | None = None, now: datetime | None = None,
) -> list[TranscriptOutcome]:
    """A batch of jobs on a thread pool, at most ``max_requests_per_host`` per host; the
    outcomes in job order. Only infrastructure failures (the store) raise."""
    if not jobs:
        return []
    limiter = LeasedSlots(repo, settings)
    workers = max(1, min(settings.worker_threads, len(jobs)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="transcript") as pool:
        futures = [pool.submit(process_transcript_job, job, repo=repo, archive=archive, settings=settings,
                               client=client, now=now, limiter=limiter) for job in jobs]
        return [f.result() for f in futures]


def retry_jobs(outcomes: Iterable[TranscriptOutcome]) -> dict[int, list[dict[str, Any]]]:
    """Jobs to queue again, grouped by their delay in seconds."""
    out: dict[int, list[dict[str, Any]]] = {}
    for o in outcomes:
        if o.result == "retrying" and o.retry_in_s:
            out.setdefault(o.retry_in_s, []).append(
                TranscriptJob(feed_id=o.feed_id, episode_id=o.episode_id, attempt=o.attempts).model_dump())
    return out
