"""The storage port: every read and write Earshot makes, named by what it means.

The domain (refresh, matching, topics, subscriptions, delivery) sees only :class:`Store`.
Two adapters implement it and one contract suite (``tests/store/test_contract.py``) runs
every behaviour below against both, so they cannot drift:

- :class:`earshot.store.dynamodb.DynamoStore` — deployed: the single-table design;
- ``earshot_local.sqlite_store.SqliteStore`` — local: one SQLite file (not in the layer).

Operations are named queries (``due_feeds``, ``claim_send``), never generic get/put: each
adapter uses its database well (DynamoDB keys and conditional writes; SQLite indexes,
transactions and ``INSERT ... ON CONFLICT``).

Promises every adapter keeps:

- episodes are never deleted because a feed dropped them (only ``delete_feed`` removes
  a feed's episodes, with the feed); a changed episode keeps its ``first_seen_at``;
- conditional writes answer ``False`` instead of overwriting (``add_feed``,
  ``create_topic``, ``save_subscriber``'s optimistic lock, ``claim_send``,
  ``put_rendered_digest``, ``delete_token``);
- ``claim_send`` stores the claim and its unsubscribe token together or not at all, and
  answers ``True`` again to the caller that holds the claim (a write repeated after a
  lost answer is not mistaken for someone else's claim);
- the confirmation-mail window of an address holds at most ``limit`` entries: no request
  can grow it;
- ``due_feeds`` yields due feeds most overdue first; a gone feed is never due;
- ``list_matches`` is newest first, undated episodes last;
- a discovery candidate once decided (added, rejected) keeps its decision: a later run
  never proposes it again; a directory answer past its ``expires_at`` is never returned;
- a backfill run's progress is only written for the topic's current run
  (``save_segment_progress``), and ``delete_topic`` removes the run with the topic;
- at most ``limit`` leases of one host's slots are live at once (``acquire_host_slot``):
  a lease takes one of the slots ``0 .. limit-1``, so whatever limits the callers pass,
  the host never has more live leases than the largest of them; a lease that is not
  released lapses at ``expires_at`` (a killed worker holds nothing for long);
- a topic's ``revision`` (the validator of its page and feed) takes a fresh value, with
  ``revised_at``, on every write that changes the topic or its matches: ``create_topic``,
  ``save_topic``, and each match write that writes or drops at least one match
  (``replace_*_matches``, ``put_run_matches``, ``drop_matches_outside_run``,
  ``delete_feed``). Set after the match writes it covers, never before, so a reader that
  sees the new value reads at least those matches; never reused (random), so a topic
  removed and added again cannot repeat an old one;
- ``atomic()`` groups one feed's writes. SQLite commits them in one transaction;
  DynamoDB writes are each durable, and the refresh orders its writes (per batch of
  episodes its matches, then the episodes; the feed's state last) so a retried check
  repairs a partial one.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from earshot.models import (
    BackfillJob,
    CandidateStatus,
    DiscoveryCandidate,
    Episode,
    FeedState,
    MatchedEpisode,
    SegmentProgress,
    Subscriber,
    TokenRecord,
    Topic,
    TranscriptState,
)


def feed_id_for(url: str) -> str:
    """Stable feed id for a URL (the id survives later 301s; the URL attribute moves).

    >>> feed_id_for("https://example.com/feed.xml")
    'f-7a775db75c1d6d17'
    """
    return "f-" + hashlib.sha256(url.strip().encode()).hexdigest()[:16]


def iso(dt: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, sortable as a string.

    >>> iso(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    '2026-01-02T03:04:05Z'
    """
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# A feed's state after a check replaces these even with nothing (a validator the server
# stopped sending is forgotten, an error is cleared); every other field an update leaves
# empty keeps its stored value (a check does not carry ``created_at``, say).
CLEARED_WHEN_EMPTY = ("etag", "last_modified", "body_sha256", "last_error_kind", "last_error_message",
                      "last_status", "next_check_at")


def merge_feed_state(stored: FeedState, update: FeedState) -> FeedState:
    """The feed state ``save_feed_state`` leaves behind (both adapters keep this rule)."""
    data = stored.model_dump()
    for name, value in update.model_dump().items():
        if value not in (None, "") or name in CLEARED_WHEN_EMPTY:
            data[name] = value
    return FeedState.model_validate(data)


def new_revision() -> str:
    """A fresh topic revision (see the promises above): random, so never reused."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class EpisodePage:
    """One page of a segment of the archive: its episodes (each with ``feed_id`` set)
    and where the next page starts (None: the segment is finished). A page may be empty
    while the segment goes on (DynamoDB counts the items it read, not those it kept)."""

    episodes: list[Episode]
    cursor: str | None


@dataclass(frozen=True)
class HostLease:
    """One of a host's request slots, held by one worker until released or ``expires_at``."""

    host: str
    slot: int
    holder: str  # unique per lease: only its holder can release it
    expires_at: datetime

    def seconds_left(self, now: datetime) -> float:
        return (self.expires_at - now).total_seconds()


def lease_expiry_s(now: datetime, lease_s: float) -> int:
    """Epoch second a lease taken at ``now`` lapses (rounded up: a lease never ends early).

    >>> lease_expiry_s(datetime(2026, 1, 1, tzinfo=UTC), 0.5)
    1767225601
    """
    return math.ceil(now.timestamp() + lease_s)


class Store(ABC):
    """Everything Earshot stores. Adapters are thread-safe."""

    #: identifies the database (a table name, a file path): caches are kept per store
    name: str

    # ------------------------------------------------------------------ feeds
    @abstractmethod
    def add_feed(self, feed: FeedState) -> bool:
        """Insert a feed; False if it already exists (nothing changes then)."""

    @abstractmethod
    def get_feed(self, feed_id: str) -> FeedState | None: ...

    @abstractmethod
    def save_feed_state(self, feed: FeedState, *, previous: FeedState | None = None) -> None:
        """Write a feed's state after a check (see :func:`merge_feed_state`). Never
        creates a feed that is gone from the store. ``previous`` (the state the check started from) lets an adapter skip
        rewriting what did not change."""

    @abstractmethod
    def list_feeds(self) -> Iterator[FeedState]:
        """Every feed, whole."""

    @abstractmethod
    def delete_feed(self, feed_id: str) -> bool:
        """Remove a feed, its episodes and its matches in every topic; False if there was
        no such feed. The feed's own item goes last, so an interrupted removal can be run
        again."""

    @abstractmethod
    def due_feeds(self, now: datetime, *, include_not_due: bool = False) -> Iterator[FeedState]:
        """Feeds whose next check has passed (every checkable feed with
        ``include_not_due``), most overdue first. At least the fields of a fetch check
        (``FeedCheck``) are filled in."""

    # --------------------------------------------------------------- episodes
    @abstractmethod
    def episode_hashes(self, feed_id: str) -> dict[str, str]:
        """episode id -> content hash for every stored episode of a feed."""

    @abstractmethod
    def put_new_episodes(self, feed_id: str, episodes: list[Episode], now: datetime) -> None: ...

    @abstractmethod
    def update_changed_episodes(self, feed_id: str, episodes: list[Episode], now: datetime) -> None:
        """Overwrite changed episodes, keeping their ``first_seen_at``."""

    @abstractmethod
    def list_episodes(self, feed_id: str) -> list[Episode]: ...

    @abstractmethod
    def iter_all_episodes(self) -> Iterator[Episode]:
        """Every stored episode (topic backfill; never on the ingest path)."""

    @abstractmethod
    def episode_segment(self, segment: int, total_segments: int, *, cursor: str | None = None,
                        limit: int = 500) -> EpisodePage:
        """One page (at most ``limit`` episodes) of segment ``segment`` of
        ``total_segments``, starting at ``cursor`` (None: the segment's start). The
        segments of one ``total_segments`` split the archive: every episode is in exactly
        one, a feed's episodes in the same one. DynamoDB: a parallel Scan (``Segment`` /
        ``TotalSegments``); SQLite: ranges of the (hashed) feed ids."""

    @abstractmethod
    def get_feeds(self, feed_ids: Iterable[str]) -> dict[str, FeedState]:
        """The stored feeds among ``feed_ids`` (missing ones are left out)."""

    # -------------------------------------------------------------- backfills
    @abstractmethod
    def start_backfill(self, job: BackfillJob) -> None:
        """Record a new backfill run of a topic, replacing any earlier run."""

    @abstractmethod
    def get_backfill(self, slug: str) -> BackfillJob | None: ...

    @abstractmethod
    def save_segment_progress(self, slug: str, run_id: str, segment: int,
                              progress: SegmentProgress) -> BackfillJob | None:
        """Record one segment's progress and answer the run as now stored; None (nothing
        written) when ``run_id`` is no longer the topic's run (replaced, or the topic is
        gone): that segment's worker should stop."""

    @abstractmethod
    def finish_backfill(self, slug: str, run_id: str, *, removed: int, now: datetime) -> bool:
        """Mark the run finished; False if ``run_id`` is no longer the topic's run."""

    # ----------------------------------------------------------------- topics
    @abstractmethod
    def create_topic(self, topic: Topic) -> bool:
        """Insert a topic; False if the slug is taken."""

    @abstractmethod
    def save_topic(self, topic: Topic) -> bool:
        """Overwrite an existing topic; False if it was removed meanwhile."""

    @abstractmethod
    def get_topic(self, slug: str) -> Topic | None: ...

    @abstractmethod
    def list_topics(self) -> list[Topic]: ...

    @abstractmethod
    def delete_topic(self, slug: str) -> bool:
        """Delete a topic and its matches; False if there was no such topic."""

    # ---------------------------------------------------------------- matches
    @abstractmethod
    def list_matches(self, slug: str, *, limit: int | None = None) -> list[MatchedEpisode]:
        """A topic's matches, newest first (undated last)."""

    @abstractmethod
    def count_matches(self, slug: str) -> int: ...

    @abstractmethod
    def replace_feed_matches(self, slug: str, feed_id: str, episode_ids: Iterable[str],
                             matches: list[MatchedEpisode]) -> int:
        """After re-matching ``episode_ids`` of one feed: their matches become exactly
        ``matches``. Returns how many earlier matches were dropped."""

    @abstractmethod
    def replace_topic_matches(self, slug: str, matches: list[MatchedEpisode]) -> int:
        """After re-matching the archive: the topic's matches become exactly ``matches``.
        Returns how many earlier matches were dropped."""

    @abstractmethod
    def put_run_matches(self, slug: str, run_id: str, matches: list[MatchedEpisode]) -> None:
        """Write (or rewrite) matches found by backfill run ``run_id``, tagged with it."""

    @abstractmethod
    def drop_matches_outside_run(self, slug: str, run_id: str) -> int:
        """Delete the topic's matches that run ``run_id`` did not write (stale ones, once
        every segment of the run has finished); returns how many. Repeatable."""

    # ------------------------------------------------------------ subscribers
    @abstractmethod
    def get_subscriber(self, address_hash: str, topic: str) -> Subscriber | None: ...

    @abstractmethod
    def save_subscriber(self, sub: Subscriber) -> bool:
        """Write if nobody wrote it since it was read (optimistic lock on ``version``); the
        stored version becomes ``sub.version + 1``. False on a conflict."""

    @abstractmethod
    def subscriptions_of_address(self, address_hash: str) -> list[Subscriber]: ...

    @abstractmethod
    def confirmed_subscribers(self, topic: str) -> Iterator[Subscriber]: ...

    @abstractmethod
    def count_confirmation_mail(self, address_hash: str, request_id: str, *, now: datetime, window: timedelta,
                                limit: int) -> bool:
        """Count one confirmation mail for ``request_id`` in the rolling ``window`` that
        ends at ``now``. True when counted, or when ``request_id`` was already counted in
        the window (a retried request is one mail, not two); False, with nothing counted,
        when ``limit`` mails were counted in the window. Mails older than the window are
        forgotten, so an address's record never holds more than ``limit`` entries."""

    # ----------------------------------------------------------------- tokens
    @abstractmethod
    def put_token(self, record: TokenRecord) -> None: ...

    @abstractmethod
    def get_token(self, token_hash: str) -> TokenRecord | None: ...

    @abstractmethod
    def delete_token(self, token_hash: str) -> bool:
        """False if it was already gone (a single-use token used twice)."""

    # ------------------------------------------------------ digest send claims
    @abstractmethod
    def claim_send(self, address_hash: str, topic: str, week: str, *, now: datetime, expires_at: int,
                   token: TokenRecord) -> bool:
        """Claim the right to mail this address this week's digest and store ``token``
        (the digest's unsubscribe token) in one atomic write: both or neither. False if
        claimed before by anyone else; True again for a claim made with this same token
        (the caller's own write, repeated after its answer was lost)."""

    @abstractmethod
    def finish_claim(self, address_hash: str, topic: str, week: str, *, state: str, now: datetime,
                     message_id: str | None = None, detail: str | None = None) -> None:
        """Record how a claimed send ended: ``sent`` (with the message id), ``rejected``
        (refused for this recipient) or ``unknown`` (no answer: it may have gone)."""

    @abstractmethod
    def release_claim(self, address_hash: str, topic: str, week: str) -> None:
        """Drop a claim still in state ``claimed`` (SES certainly sent nothing)."""

    @abstractmethod
    def get_claim_state(self, address_hash: str, topic: str, week: str) -> str | None:
        """``claimed``, ``sent``, ``rejected``... or None when unclaimed."""

    # -------------------------------------------------------- rendered digests
    @abstractmethod
    def put_rendered_digest(self, topic: str, week: str, payload: bytes, *, expires_at: int) -> bool:
        """Store unless one exists (a re-run keeps the first). False if one existed."""

    @abstractmethod
    def get_rendered_digest(self, topic: str, week: str) -> bytes | None: ...

    # ------------------------------------------------------------ transcripts
    # The state of an episode's transcript (the text is in the TranscriptArchive):
    # removed with its feed, like the episode.
    @abstractmethod
    def get_episode(self, feed_id: str, episode_id: str) -> Episode | None: ...

    @abstractmethod
    def save_transcript_state(self, state: TranscriptState) -> None:
        """Write (or replace) an episode's transcript state."""

    @abstractmethod
    def get_transcript_state(self, feed_id: str, episode_id: str) -> TranscriptState | None: ...

    @abstractmethod
    def iter_transcript_states(self) -> Iterator[TranscriptState]:
        """Every transcript state (topic backfill; never on the ingest path)."""

    # -------------------------------------------------------------- host slots
    @abstractmethod
    def acquire_host_slot(self, host: str, *, limit: int, lease_s: float, now: datetime) -> HostLease | None:
        """Lease one of ``host``'s request slots ``0 .. limit-1`` until ``now + lease_s``;
        None when all of them are held by live leases (the caller defers, never waits
        here). Slots whose lease has lapsed are free."""

    @abstractmethod
    def release_host_slot(self, lease: HostLease, *, now: datetime) -> None:
        """Give a slot back; a lease that lapsed and was taken by another is left alone."""

    # ------------------------------------------------------------ transactions
    @abstractmethod
    def atomic(self) -> AbstractContextManager[None]:
        """Group one feed's writes (see the module docstring)."""

    # -------------------------------------------------------------- discovery
    @abstractmethod
    def get_directory_answer(self, key: str, *, now: datetime) -> str | None:
        """A cached directory answer (its JSON text), or None when there is none or it
        expired by ``now``."""

    @abstractmethod
    def put_directory_answer(self, key: str, payload: str, *, expires_at: int) -> None:
        """Cache a directory answer until ``expires_at`` (epoch seconds; DynamoDB's TTL)."""

    @abstractmethod
    def record_candidates(self, slug: str, candidates: list[DiscoveryCandidate]) -> list[DiscoveryCandidate]:
        """Record one discovery run's candidates for a topic. A candidate already decided
        (added or rejected) keeps its decision and record; an undecided one takes the new
        evidence. Returns the candidates of this run that are (still) proposed."""

    @abstractmethod
    def list_candidates(self, slug: str) -> list[DiscoveryCandidate]:
        """A topic's candidates, every status, best score first."""

    @abstractmethod
    def decide_candidate(self, slug: str, key: str, status: CandidateStatus, *, now: datetime) -> bool:
        """Set a candidate's status (added, rejected, or back to proposed); False if the
        topic has no such candidate."""
