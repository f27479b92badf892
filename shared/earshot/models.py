"""Earshot's domain models (pydantic v2), one per thing that crosses a boundary.

Stored-item shapes (DynamoDB attribute maps) live in ``repository``; HTTP and event
shapes live beside their handlers. These are the domain: what the code reasons about.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from earshot.identity import IdChoice


class Transcript(BaseModel):
    """A ``<podcast:transcript>`` (Podcasting 2.0): where a transcript lives and its type."""

    model_config = ConfigDict(frozen=True)
    url: str
    type: str | None = None
    language: str | None = None
    rel: str | None = None


class Chapters(BaseModel):
    """A ``<podcast:chapters>`` (Podcasting 2.0) reference."""

    model_config = ConfigDict(frozen=True)
    url: str
    type: str | None = None


class Episode(BaseModel):
    """One normalized feed entry."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="see earshot.identity: the guid (else enclosure URL, else link, else hash of "
                                "title+date), made distinct where items share it")
    feed_id: str | None = None
    guid: str | None = None
    title: str = ""
    published: datetime | None = Field(None, description="UTC, tz-aware")
    duration_seconds: int | None = None
    audio_url: str | None = None
    audio_type: str | None = None
    audio_length: int | None = None
    link: str | None = None
    summary: str = Field("", description="plain text: HTML stripped, entities decoded")
    summary_html: str = Field("", description="sanitized HTML")
    image: str | None = None
    episode: int | None = None
    season: int | None = None
    transcripts: tuple[Transcript, ...] = ()
    chapters: Chapters | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_hash(self) -> str:
        """Hash of everything the feed said about this episode; changes mean 'update it'."""
        payload = self.model_dump(mode="json", exclude={"feed_id", "content_hash"})
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    @property
    def has_transcript(self) -> bool:
        return bool(self.transcripts)


class FeedInfo(BaseModel):
    """Channel-level facts a feed states about itself."""

    model_config = ConfigDict(frozen=True)
    title: str = ""
    link: str | None = None
    description: str = ""
    image: str | None = None
    language: str | None = None
    author: str | None = None
    podcast_guid: str | None = Field(None, description="<podcast:guid> (Podcasting 2.0)")
    ttl_minutes: int | None = Field(None, description="RSS <ttl>")
    generator: str | None = None
    format: str | None = Field(None, description="rss20, atom10, ... as feedparser names it")


class ParsedFeed(BaseModel):
    """The result of parsing one feed document."""

    feed: FeedInfo
    episodes: list[Episode]
    warnings: list[str] = []
    id_choices: dict[str, IdChoice] = Field(
        default_factory=dict, exclude=True,
        description="episode id -> the ids the identity rule allows it (earshot.identity.keep_stored_ids)",
    )


FeedStatus = Literal["active", "error", "gone"]


class FeedState(BaseModel):
    """What Earshot remembers about a feed between checks (one DynamoDB item)."""

    feed_id: str
    url: str
    status: FeedStatus = "active"
    title: str = ""
    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None
    last_status: int | None = None
    last_checked_at: datetime | None = None
    next_check_at: datetime | None = None
    interval_s: int | None = Field(None, description="adaptive check interval from the feed's cadence")
    last_result: str | None = Field(None, description="parsed | not_modified | unchanged | error | gone")
    error_count: int = 0
    last_error_kind: str | None = None
    last_error_message: str | None = None
    podcast_guid: str | None = None
    author: str | None = Field(None, description="the channel's author, as the feed states it")
    link: str | None = Field(None, description="the channel's web page")
    episode_count: int = 0
    created_at: datetime | None = None
    last_new_episode_at: datetime | None = None
    parse_warnings: list[str] | None = Field(
        None, description="the last parse's warnings ([] for none); None: not parsed by this check, kept as stored"
    )


class FetchResult(BaseModel):
    """What one conditional GET produced (errors are raised as ``FetchError`` instead)."""

    status: int
    url: str = Field(description="the URL finally answered, after redirects")
    body: bytes | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    cache_max_age_s: int | None = None
    retry_after_s: float | None = None
    permanent_redirect_url: str | None = Field(
        None, description="new URL when every redirect hop was 301/308 (persist it)"
    )
    elapsed_s: float = 0.0

    @property
    def is_not_modified(self) -> bool:
        return self.status == 304


RefreshResult = Literal["parsed", "not_modified", "unchanged", "error", "gone", "removed"]


class RefreshOutcome(BaseModel):
    """What refreshing one feed did; the worker aggregates these into metrics."""

    feed_id: str
    url: str
    result: RefreshResult
    status: int | None = None
    new_episodes: int = 0
    changed_episodes: int = 0
    episodes_seen: int = 0
    error_kind: str | None = None
    error_message: str | None = None
    next_check_at: datetime | None = None
    new_episode_ids: list[str] = []


# ================================================================ subscriptions
# (digest subscriptions; see earshot.mail.subscriptions for the state machine)

SubscriptionStatus = Literal["pending", "confirmed", "unsubscribed", "bounced", "complained"]


class ConsentEvent(BaseModel):
    """Who asked, when and how: kept for the subscribe request and for the confirmation."""

    model_config = ConfigDict(frozen=True)
    at: datetime
    source: str = Field(description="api, web-form, confirm-page, one-click, ses-bounce, ...")
    ip: str | None = None
    user_agent: str | None = None


class StatusChange(BaseModel):
    model_config = ConfigDict(frozen=True)
    at: datetime
    status: SubscriptionStatus
    source: str
    detail: str | None = None


class Subscriber(BaseModel):
    """One address's subscription to one topic (one DynamoDB item)."""

    topic: str
    email: str
    address_hash: str = Field(description="sha256 of the normalized address: the item key")
    status: SubscriptionStatus = "pending"
    created_at: datetime
    requested: ConsentEvent = Field(description="the latest subscribe request")
    confirmed: ConsentEvent | None = Field(None, description="the double opt-in: consent proper")
    history: list[StatusChange] = []
    version: int = Field(0, description="optimistic lock: each write expects the version it read")


# ===================================================================== topics
# A topic and the per-topic snapshot of a matched episode. The snapshot carries what the
# topic page, the topic RSS feed and the digest need, so none of them reads episodes.


class Topic(BaseModel):
    """What a subscriber follows: a named query (see ``docs/topics.md``)."""

    slug: str = Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
    name: str = Field(min_length=1)
    query: str = Field(min_length=1)
    description: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


class TranscriptMoment(BaseModel):
    """Where in an episode's audio its transcript matched a topic: the page offers
    "play from" there. Nothing sets one yet (Earshot matches titles and descriptions, not
    transcript text); a matcher that reads transcripts fills ``MatchedEpisode.moment``
    and the page shows the control with no other change."""

    model_config = ConfigDict(frozen=True)

    start_seconds: int = Field(ge=0, description="offset into the audio where the matching words start")
    text: str = Field("", description="the transcript words that matched, plain text")


class MatchedEpisode(BaseModel):
    """One episode (one feed's listing of it) that matched a topic, with the reason why."""

    model_config = ConfigDict(frozen=True)

    feed_id: str
    episode_id: str
    podcast: str = Field("", description="the feed's title")
    # What identifies the podcast behind the feed (``earshot.topics.stats.podcast_groups``):
    # two feeds of one podcast (an old and a new URL, a mirror) count as one in stats.
    podcast_guid: str | None = Field(None, description="the feed's <podcast:guid>")
    podcast_author: str | None = Field(None, description="the feed's author")
    podcast_link: str | None = Field(None, description="the feed's web page")
    guid: str | None = None
    title: str = ""
    published: datetime | None = None
    duration_seconds: int | None = None
    summary: str = Field("", description="plain text")
    has_transcript: bool = False
    audio_url: str | None = None
    audio_type: str | None = None
    audio_length: int | None = None
    link: str | None = None
    image: str | None = None
    reason: str = Field("", description='e.g. MLPs in title; "midstream" in description')
    moment: TranscriptMoment | None = Field(None, description="where the transcript matched, if it did")


TokenPurpose = Literal["confirm", "unsubscribe"]


class TokenRecord(BaseModel):
    """What is stored for a confirmation or unsubscribe token (never the token itself;
    see ``earshot.mail.tokens``)."""

    model_config = ConfigDict(frozen=True)

    token_hash: str
    purpose: TokenPurpose
    topic: str
    address_hash: str
    created_at: datetime
    expires_at: datetime


# ================================================================== backfills
# A topic's archive re-match, split into segments that run apart (deployed: one SQS
# message each). Its record says how far each segment got, so a retried segment resumes
# at its cursor and the topic shows progress.


class SegmentProgress(BaseModel):
    """How far one segment of a backfill got (``cursor`` None and not done: not started)."""

    cursor: str | None = None
    scanned: int = Field(0, ge=0, description="episodes read so far")
    matched: int = Field(0, ge=0, description="matches written so far")
    done: bool = False


class BackfillJob(BaseModel):
    """One run of a topic's backfill. A newer run (the query edited again) replaces it,
    and the older run's workers stop at their next page."""

    slug: str
    run_id: str
    query: str
    total_segments: int = Field(ge=1)
    segments: dict[int, SegmentProgress]
    started_at: datetime
    finished_at: datetime | None = None
    removed: int = Field(0, ge=0, description="stale matches dropped once every segment finished")

    @property
    def done_segments(self) -> int:
        return sum(1 for s in self.segments.values() if s.done)

    @property
    def is_complete(self) -> bool:
        """Every segment finished (stale matches may still be waiting to be dropped)."""
        return self.done_segments == self.total_segments

    @property
    def scanned(self) -> int:
        return sum(s.scanned for s in self.segments.values())

    @property
    def matched(self) -> int:
        return sum(s.matched for s in self.segments.values())

    @property
    def percent(self) -> int:
        """Finished segments in percent (floored: 100 only when all are done)."""
        return self.done_segments * 100 // self.total_segments

    @property
    def status(self) -> str:
        """``backfilling 37 %`` while running, ``backfilled`` once finished."""
        return "backfilled" if self.finished_at is not None else f"backfilling {self.percent} %"
