"""Refreshing feeds: the ingest path for one feed, and a concurrent batch of them.

:func:`refresh_feed` is a straight line of steps (Miniflux's ``RefreshFeed`` shape):

1. conditional GET with the stored validators (``fetcher``);
2. 304, or a body whose SHA-256 equals the last one: record the check, parse nothing;
3. parse and normalize (``parser.parse_in_batches``): the episodes come a few hundred
   at a time, so a feed of 30,000 episodes is never held as 30,000 objects;
4. for each batch, give each episode the id that keeps stored episodes where they are
   (``earshot.identity.StoredIdKeeper``), match, then store new and changed episodes
   (``store``); never delete — feeds truncate. Across batches only small aggregates are
   kept: the new episodes' ids, counts, the newest dates for the cadence;
5. update the feed's state and ``next_check_at`` from one policy (``schedule``), last:
   a check cut short before this step is done again in full by the next one.

A feed failing is data, not an exception: the typed error's ``kind`` and message are
recorded on the feed, the error counter rises and the next check backs off. Only
infrastructure failures (DynamoDB refusing a write) propagate, so SQS retries them.

:func:`refresh_feeds` runs a batch on a thread pool, each host's requests within the
slots :mod:`earshot.ingest.politeness` leases for it across every worker (2 at first, up
to 6 while the host answers fast and cleanly, 1 when it pushes back). Given
``should_start``, it asks that before each fetch begins (after the feed's host slot is
free); a check it may not start ends in :class:`NotStarted` and leaves the feed
untouched, so the caller can hand it back to the queue (the worker does this near its
Lambda deadline).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import random
from collections.abc import Callable, Collection
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

from earshot import bounds
from earshot.errors import FeedError, FeedGone, HttpStatusError, InternalFeedError, InvalidUrl
from earshot.identity import StoredIdKeeper
from earshot.ingest import schedule
from earshot.ingest.parser import BatchedFeed, parse_in_batches
from earshot.ingest.politeness import HostScheduler, SlotStats
from earshot.ingest.sources import read_source
from earshot.models import WARNING_KINDS, Episode, FeedState, FeedStatus, FetchResult, RefreshOutcome
from earshot.settings import Settings
from earshot.store import Store, feed_id_for
from earshot.urls import checked_feed_url

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

# Called with the feed, then one batch's new episodes and its changed ones (already stored
# under the same id), before that batch is stored: once per batch with any, so several
# times for a big feed (topic matching and transcript jobs hook in here).
NewEpisodesHook = Callable[[FeedState, list[Episode], list[Episode]], object]


class FeedCheck(BaseModel):
    """The fetch queue's message: everything the worker needs to check one feed.

    The dispatcher builds it from the ``due`` index projection, so the worker reads
    nothing from DynamoDB before fetching.
    """

    feed_id: bounds.Key
    url: bounds.FeedUrl
    title: bounds.Title = ""
    status: FeedStatus = "active"
    etag: bounds.Validator = None
    last_modified: bounds.Validator = None
    body_sha256: bounds.OptionalKey = None
    error_count: int = 0
    interval_s: int | None = None
    episode_count: int = 0

    @classmethod
    def from_state(cls, feed: FeedState) -> "FeedCheck":
        return cls.model_validate(feed.model_dump(include=set(cls.model_fields)))

    def to_state(self) -> FeedState:
        return FeedState.model_validate(self.model_dump())


def new_feed(url: str, now: datetime, *, allow_files: bool = True) -> FeedState:
    """A feed to be checked at once, or :class:`InvalidUrl` when its URL may not be stored
    (``earshot.urls``: every way a feed is added builds it here). ``file:`` URLs name the
    local CLI's own feed files (only where ``settings.allow_local_files`` are they ever
    read); ``allow_files=False`` refuses them too."""
    url = checked_feed_url(url, allow_files=allow_files)
    return FeedState(feed_id=feed_id_for(url), url=url, created_at=now, next_check_at=now)


def refresh_feed(
    check: FeedCheck,
    *,
    repo: Store,
    settings: Settings,
    client: httpx.Client | None = None,
    now: datetime | None = None,
    on_new_episodes: NewEpisodesHook | None = None,
    limiter: FetchSlot | None = None,
    rng: random.Random | None = None,
) -> RefreshOutcome:
    """Check one feed and store what changed. Feed failures come back as data."""
    now = now or datetime.now(UTC)
    previous = check.to_state()  # what the check started from: unchanged attributes are not rewritten
    feed = check.to_state()
    feed.last_checked_at = now
    try:
        # 1. conditional GET (files only where the settings allow local sources)
        with limiter.slot(check.url) if limiter else nullcontext():
            result = read_source(
                check.url, settings=settings, etag=check.etag, last_modified=check.last_modified,
                client=client,
            )
        feed.last_status = result.status
        moved_warnings = _follow_permanent_redirect(feed, result)

        # 2. not modified, or the same bytes again: nothing to parse
        body_sha256 = hashlib.sha256(result.body).hexdigest() if result.body is not None else None
        if result.is_not_modified or body_sha256 == check.body_sha256:
            _record_success(feed, result, now, settings, interval_s=check.interval_s)
            if body_sha256:
                feed.body_sha256 = body_sha256
            if moved_warnings:
                _record_warnings(feed, moved_warnings)
            feed.last_result = "not_modified" if result.is_not_modified else "unchanged"
            repo.save_feed_state(feed, previous=previous)
            return _outcome(feed, feed.last_result)

        # 3. parse and normalize; every stored value meets its bound (earshot.bounds), and
        # what a bound had to cut becomes one typed warning on the feed
        with bounds.recording() as cuts:
            parsed = parse_in_batches(result.body or b"", url=result.url, parser=settings.parser)
        result = result.model_copy(update={"body": None})  # parsed: the body (up to the cap) can go
    except NotStarted:
        raise  # nothing was fetched or recorded: the caller hands the check back
    except FeedGone as exc:
        return _record_gone(feed, previous, exc, repo)
    except FeedError as exc:
        return _record_failure(feed, previous, exc, now, repo, settings, rng)
    except Exception as exc:  # a bug on one feed's input must not poison the queue
        logger.exception("unexpected error refreshing %s", check.url)
        error = InternalFeedError(f"{type(exc).__name__}: {exc}")
        return _record_failure(feed, previous, error, now, repo, settings, rng)

    # 4-5. match, store new and changed episodes batch by batch, then the feed's state, as
    # one unit: one SQLite transaction locally; on DynamoDB the order makes a retry repair
    # a partial write (the feed's body hash is saved last, so the next check parses again;
    # episodes not yet stored are new again, so they are matched again, and each batch is
    # matched before it is stored). Infrastructure errors propagate, so the check is retried.
    with parsed, repo.atomic():
        stored = repo.episode_hashes(feed.feed_id)
        if not stored and repo.get_feed(feed.feed_id) is None:
            # Nothing stored yet: a first check, or the feed was removed while this check
            # was in flight (one read, only then). A removed feed gets nothing written.
            return _outcome(feed, "removed")
        # What the feed says about itself, before matching: matches record the podcast.
        feed.title = parsed.feed.title or feed.title
        feed.podcast_guid = parsed.feed.podcast_guid
        feed.author, feed.link = parsed.feed.author, parsed.feed.link
        tally = _store_batches(feed, parsed, stored, repo, now, on_new_episodes)
        interval_s = schedule.cadence_interval_s(tally.newest, settings)
        _record_success(feed, result, now, settings, interval_s=interval_s, ttl_minutes=parsed.feed.ttl_minutes)
        feed.body_sha256 = body_sha256
        feed.episode_count = len(stored) + len(tally.new_ids)
        _record_warnings(feed, moved_warnings + bounds.warnings_for(cuts) + parsed.warnings)
        if tally.new_ids:
            feed.last_new_episode_at = now
        feed.last_result = "parsed"
        repo.save_feed_state(feed, previous=previous)
    return _outcome(feed, "parsed", new_ids=tally.new_ids, changed=tally.changed, seen=tally.seen)


class _Tally:
    """What a refresh keeps across batches: small, whatever the feed's size."""

    def __init__(self) -> None:
        self.new_ids: list[str] = []
        self.changed = 0
        self.seen = 0
        self.newest: list[datetime] = []  # the newest dates, as many as the cadence reads (a min-heap)

    def add_dates(self, episodes: list[Episode]) -> None:
        for episode in episodes:
            if episode.published is None:
                continue
            if len(self.newest) < schedule.CADENCE_WINDOW:
                heapq.heappush(self.newest, episode.published)
            elif episode.published > self.newest[0]:
                heapq.heapreplace(self.newest, episode.published)


def _store_batches(
    feed: FeedState, parsed: BatchedFeed, stored: dict[str, str], repo: Store, now: datetime,
    on_new_episodes: NewEpisodesHook | None,
) -> _Tally:
    """Diff, match and store the parsed episodes a batch at a time.

    Ids first follow the stored episodes (an item stored before its guid was shared, or
    while it was, keeps the id it was stored under), so nothing is stored twice or re-keyed.
    """
    keeper = StoredIdKeeper(parsed.id_choices, stored, parsed.id_choices.keys(),
                            lambda ids: _stored_episodes(repo, feed.feed_id, ids))
    tally = _Tally()
    for batch in parsed.batches():
        _store_batch(feed, keeper.keep(batch), stored, repo, now, on_new_episodes, tally)
    _store_batch(feed, [episode for _, episode in keeper.settle()], stored, repo, now, on_new_episodes, tally)
    return tally


def _stored_episodes(repo: Store, feed_id: str, episode_ids: Collection[str]) -> list[Episode]:
    return [episode for episode_id in sorted(episode_ids)
            if (episode := repo.get_episode(feed_id, episode_id)) is not None]


def _store_batch(
    feed: FeedState, episodes: list[Episode], stored: dict[str, str], repo: Store, now: datetime,
    on_new_episodes: NewEpisodesHook | None, tally: _Tally,
) -> None:
    new = [e for e in episodes if e.id not in stored]
    changed = [e for e in episodes if e.id in stored and stored[e.id] != e.content_hash]
    if on_new_episodes and (new or changed):
        on_new_episodes(feed, new, changed)
    _store_episodes(feed, new, changed, repo, now)
    tally.new_ids += [e.id for e in new]
    tally.changed += len(changed)
    tally.seen += len(episodes)
    tally.add_dates(episodes)


def _follow_permanent_redirect(feed: FeedState, result: FetchResult) -> list[str]:
    """Move the feed to the URL it moved to for good (301/308, RFC 9110 §15.4.2), when
    that URL may be stored; otherwise keep asking the old one, and say so (typed warning)."""
    if not result.permanent_redirect_url or result.permanent_redirect_url == feed.url:
        return []
    try:
        feed.url = checked_feed_url(result.permanent_redirect_url)
    except InvalidUrl as exc:
        return [f"url_not_kept: the feed moved permanently to a URL Earshot does not store ({exc}); "
                "the old URL is still checked"]
    return []


def _record_warnings(feed: FeedState, warnings: list[str]) -> None:
    """The check's warnings on the feed (the model keeps the first ten, each clipped),
    with the typed kinds among them (a typed warning starts with its kind)."""
    feed.parse_warnings = warnings
    feed.warning_kinds = [kind for kind in WARNING_KINDS if any(w.startswith(f"{kind}:") for w in warnings)]


def _store_episodes(feed: FeedState, new: list[Episode], changed: list[Episode], repo: Store, now: datetime) -> None:
    """Write new and changed episodes; nothing is ever deleted (feeds truncate their lists)."""
    if new:
        repo.put_new_episodes(feed.feed_id, new, now)
    if changed:
        repo.update_changed_episodes(feed.feed_id, changed, now)


def _record_success(
    feed: FeedState, result: FetchResult, now: datetime, settings: Settings, *,
    interval_s: int | None, ttl_minutes: int | None = None,
) -> None:
    feed.status = "active"
    feed.etag = result.etag or (feed.etag if result.is_not_modified else None)
    feed.last_modified = result.last_modified or (feed.last_modified if result.is_not_modified else None)
    feed.error_count = 0
    feed.last_error_kind = feed.last_error_message = None
    feed.interval_s = interval_s or settings.max_interval_s
    feed.next_check_at = schedule.next_check_after_success(
        now, interval_s=feed.interval_s, settings=settings, ttl_minutes=ttl_minutes,
        cache_max_age_s=result.cache_max_age_s, retry_after_s=result.retry_after_s,
    )


def _record_failure(
    feed: FeedState, previous: FeedState, exc: FeedError, now: datetime, repo: Store, settings: Settings,
    rng: random.Random | None,
) -> RefreshOutcome:
    feed.status = feed.last_result = "error"
    feed.error_count += 1
    _record_error(feed, exc)
    if isinstance(exc, HttpStatusError):
        feed.last_status = exc.status
    retry_after_s = getattr(exc, "retry_after_s", None)
    feed.next_check_at = schedule.next_check_after_error(
        now, error_count=feed.error_count, settings=settings, retry_after_s=retry_after_s, rng=rng,
    )
    repo.save_feed_state(feed, previous=previous)
    return _outcome(feed, "error", error=exc)


def _record_gone(feed: FeedState, previous: FeedState, exc: FeedGone, repo: Store) -> RefreshOutcome:
    """410 Gone: keep the feed and its episodes, stop checking it (it leaves the due index)."""
    feed.status = feed.last_result = "gone"
    feed.last_status = 410
    _record_error(feed, exc)
    feed.next_check_at = None
    repo.save_feed_state(feed, previous=previous)
    return _outcome(feed, "gone", error=exc)


def _record_error(feed: FeedState, exc: FeedError) -> None:
    """The typed error on the feed: its stable kind and a bounded message."""
    feed.last_error_kind = exc.kind
    feed.last_error_message = str(exc)[:500]


def _outcome(
    feed: FeedState, result: str, *, new_ids: list[str] | None = None, changed: int = 0,
    seen: int = 0, error: FeedError | None = None,
) -> RefreshOutcome:
    new_ids = new_ids or []
    return RefreshOutcome(
        feed_id=feed.feed_id, url=feed.url, result=result, status=feed.last_status,
        new_episodes=len(new_ids), changed_episodes=changed, episodes_seen=seen,
        error_kind=error.kind if error else None, error_message=str(error) if error else None,
        next_check_at=feed.next_check_at, new_episode_ids=new_ids,
    )


class NotStarted(Exception):
    """A check was never started because ``should_start`` said no (nothing was fetched
    or stored for it)."""


class FetchSlot(Protocol):
    """What a check wraps its request in (the host scheduler's probe, see ``politeness``)."""

    def slot(self, url: str) -> AbstractContextManager[None]: ...


def refresh_feeds(
    checks: list[FeedCheck],
    *,
    repo: Store,
    settings: Settings,
    client: httpx.Client | None = None,
    on_new_episodes: NewEpisodesHook | None = None,
    now: datetime | None = None,
    should_start: Callable[[], bool] | None = None,
    defer_after_s: float | None = None,
    stats: SlotStats | None = None,
) -> list[Future[RefreshOutcome]]:
    """Start refreshing ``checks`` concurrently; one future per check, in order.

    Requests to each host stay within the slots the host scheduler leases for it
    (``politeness``). Callers wait on each future: a future raises only for
    infrastructure failures, :class:`NotStarted` for a check ``should_start`` refused
    just before its fetch, and :class:`~earshot.ingest.politeness.HostBusy` for a check
    whose host stayed busy longer than ``defer_after_s`` (None: wait, serving other hosts
    meanwhile).
    """
    def job(check: FeedCheck) -> Callable[[FetchSlot], RefreshOutcome]:
        def run(probe: FetchSlot) -> RefreshOutcome:
            if should_start is not None and not should_start():
                raise NotStarted(check.url)
            return refresh_feed(check, repo=repo, settings=settings, client=client, now=now,
                                on_new_episodes=on_new_episodes, limiter=probe)
        return run

    scheduler = HostScheduler(store=repo, settings=settings, workers=min(settings.worker_threads, len(checks)),
                              defer_after_s=defer_after_s, stats=stats)
    return scheduler.submit_all([(check.url, job(check)) for check in checks])
