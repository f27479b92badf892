"""Earshot's domain models (pydantic v2), one per thing that crosses a boundary.

Stored-item shapes (DynamoDB attribute maps) live in ``repository``; HTTP and event
shapes live beside their handlers. These are the domain: what the code reasons about.

Every string field of a stored model has a bound from :mod:`earshot.bounds` (its type
says how long it may be and what happens past that); ``tests/test_bounds.py`` fails on
one without.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from earshot.bounds import (
    MAX_BACKFILL_SEGMENTS,
    MAX_CANDIDATE_EXAMPLES,
    MAX_EMAIL_CHARS,
    MAX_HISTORY,
    MAX_QUERY_CHARS,
    MAX_SENSES,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    MAX_TRANSCRIPTS,
    MAX_WARNINGS,
    Bound,
    Cursor,
    DirectoryNames,
    EpisodeId,
    FeedUrl,
    Guid,
    Key,
    Label,
    Message,
    OptionalKey,
    OptionalMessage,
    OptionalTitle,
    RequiredUrl,
    SearchTerms,
    Summary,
    SummaryHtml,
    Title,
    Url,
    UserAgent,
    Validator,
    Warnings,
    WarningText,
)
from earshot.identity import IdChoice, churn_free_url


class Transcript(BaseModel):
    """A ``<podcast:transcript>`` (Podcasting 2.0): where a transcript lives and its type."""

    model_config = ConfigDict(frozen=True)
    url: RequiredUrl
    type: Label = None
    language: Label = None
    rel: Label = None


class Chapters(BaseModel):
    """A ``<podcast:chapters>`` (Podcasting 2.0) reference."""

    model_config = ConfigDict(frozen=True)
    url: RequiredUrl
    type: Label = None


class Episode(BaseModel):
    """One normalized feed entry."""

    model_config = ConfigDict(frozen=True)

    id: EpisodeId = Field(description="see earshot.identity: the guid (else enclosure URL, else link, else hash "
                                      "of title+date), made distinct where items share it")
    feed_id: OptionalKey = None
    guid: Guid = Field(None, description="as the feed wrote it; one too long to store is its digest")
    title: Title = ""
    published: datetime | None = Field(None, description="UTC, tz-aware")
    duration_seconds: int | None = None
    audio_url: Url = None
    audio_type: Label = None
    audio_length: int | None = None
    link: Url = None
    summary: Summary = Field("", description="plain text: HTML stripped, entities decoded")
    summary_html: SummaryHtml = Field("", description="sanitized HTML")
    image: Url = None
    episode: int | None = None
    season: int | None = None
    transcripts: Annotated[tuple[Transcript, ...], Bound(max_items=MAX_TRANSCRIPTS)] = ()
    chapters: Chapters | None = None

    @field_validator("transcripts", mode="after")
    @classmethod
    def _drop_unlinked_transcripts(cls, value: tuple[Transcript, ...]) -> tuple[Transcript, ...]:
        # A transcript whose URL was too long to store was left without one: drop it.
        return value if all(t.url for t in value) else tuple(t for t in value if t.url)

    @field_validator("chapters", mode="after")
    @classmethod
    def _drop_unlinked_chapters(cls, value: Chapters | None) -> Chapters | None:
        return value if value is None or value.url else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_hash(self) -> str:
        """Hash of what the feed says about this episode; a different hash means "store it
        again". Media URLs count without their query and tracking prefixes
        (:func:`earshot.identity.churn_free_url`): hosts put per-request tokens there, and
        a token that rotates on every fetch is not a change (docs/reliability.md)."""
        payload = self.model_dump(mode="json", exclude={"feed_id", "content_hash"})
        for name in ("audio_url", "image"):
            payload[name] = churn_free_url(payload[name])
        for reference in [*payload["transcripts"], payload["chapters"] or {}]:
            if reference:
                reference["url"] = churn_free_url(reference["url"])
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    @property
    def has_transcript(self) -> bool:
        return bool(self.transcripts)


class FeedInfo(BaseModel):
    """Channel-level facts a feed states about itself."""

    model_config = ConfigDict(frozen=True)
    title: Title = ""
    link: Url = None
    description: Summary = ""
    image: Url = None
    language: Label = None
    author: OptionalTitle = None
    podcast_guid: Label = Field(None, description="<podcast:guid> (Podcasting 2.0)")
    ttl_minutes: int | None = Field(None, description="RSS <ttl>")
    generator: Label = None
    format: Label = Field(None, description="rss20, atom10, ... as feedparser names it")


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
# Typed warnings: the feed was stored, but not all of it as the publisher wrote it.
# oversized_field: a value past its bound (earshot.bounds) was clipped, digested or left out;
# url_not_kept: the feed moved permanently to a URL Earshot refuses to store
# (earshot.urls), so the old URL is still checked.
WarningKind = Literal["oversized_field", "url_not_kept"]
WARNING_KINDS: tuple[WarningKind, ...] = ("oversized_field", "url_not_kept")


class FeedProvenance(BaseModel):
    """Where a feed came from when discovery added it: which directory, which search term,
    for which topic, when (``earshot topics discover --add``, the discovery function)."""

    model_config = ConfigDict(frozen=True)
    sources: DirectoryNames = Field(description="the directories that listed it: apple, podcastindex")
    terms: SearchTerms = Field(description="the search terms that found it")
    topic: Key = Field(description="the topic it was discovered for")
    added_at: datetime


class FeedState(BaseModel):
    """What Earshot remembers about a feed between checks (one DynamoDB item).

    Assignments are validated too: the refresh fills a state field by field, and each
    value must meet its bound on the way in."""

    model_config = ConfigDict(validate_assignment=True)

    feed_id: Key
    url: FeedUrl = Field(description="checked by earshot.urls.checked_feed_url before it is stored")
    status: FeedStatus = "active"
    title: Title = ""
    etag: Validator = None
    last_modified: Validator = None
    body_sha256: OptionalKey = None
    last_status: int | None = None
    last_checked_at: datetime | None = None
    next_check_at: datetime | None = None
    interval_s: int | None = Field(None, description="adaptive check interval from the feed's cadence")
    last_result: Label = Field(None, description="parsed | not_modified | unchanged | error | gone")
    error_count: int = 0
    last_error_kind: OptionalKey = None
    last_error_message: OptionalMessage = None
    podcast_guid: Label = None
    author: OptionalTitle = Field(None, description="the channel's author, as the feed states it")
    link: Url = Field(None, description="the channel's web page")
    episode_count: int = 0
    created_at: datetime | None = None
    last_new_episode_at: datetime | None = None
    parse_warnings: Warnings = Field(
        None, description="the last parse's warnings ([] for none); None: not parsed by this check, kept as stored"
    )
    warning_kinds: Annotated[list[WarningKind] | None, Bound(max_items=len(WARNING_KINDS))] = Field(
        None, description="the typed kinds among the last parse's warnings (oversized_field, url_not_kept)"
    )
    provenance: FeedProvenance | None = Field(None, description="how the feed was found, when a directory found it")


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
    source: Key = Field(description="api, web-form, confirm-page, one-click, ses-bounce, ...")
    ip: Label = None
    user_agent: UserAgent = None


class StatusChange(BaseModel):
    model_config = ConfigDict(frozen=True)
    at: datetime
    status: SubscriptionStatus
    source: Key
    detail: OptionalMessage = None


class Subscriber(BaseModel):
    """One address's subscription to one topic (one DynamoDB item)."""

    topic: Key
    email: str = Field(max_length=MAX_EMAIL_CHARS)
    address_hash: Key = Field(description="sha256 of the normalized address: the item key")
    status: SubscriptionStatus = "pending"
    created_at: datetime
    requested: ConsentEvent = Field(description="the latest subscribe request")
    confirmed: ConsentEvent | None = Field(None, description="the double opt-in: consent proper")
    history: Annotated[list[StatusChange], Bound(max_items=MAX_HISTORY, keep_last=True)] = []
    version: int = Field(0, description="optimistic lock: each write expects the version it read")


# ===================================================================== topics
# A topic and the per-topic snapshot of a matched episode. The snapshot carries what the
# topic page, the topic RSS feed and the digest need, so none of them reads episodes.


class LeftOut(BaseModel):
    """Episodes a topic's query leaves out because they are another sense of its main
    term (``earshot.topics.senses``): the page says "24 episodes about neural, network,
    perceptron are not included"."""

    term: Message = Field(description="the query's main term, e.g. MLP")
    label: Message = Field(description="the other sense's most distinctive words")
    episodes: int = Field(ge=0, description="that sense's episodes the query does not match")


class Topic(BaseModel):
    """What a subscriber follows: a named query (see ``docs/topics.md``)."""

    slug: str = Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
    name: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    description: str = Field("", max_length=MAX_SUMMARY_CHARS)
    search_transcripts: bool = Field(
        False, description="unfielded terms also look in publishers' transcripts (transcript: always does)")
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # Discovery (earshot.directory): the weekly run records candidates for every topic;
    # with auto_add, those with at least discover_min_matches matching recent episodes
    # are added as feeds, otherwise they wait for approval.
    discover_auto_add: bool = False
    discover_min_matches: int = Field(3, ge=1)
    left_out: Annotated[list[LeftOut], Bound(max_items=MAX_SENSES)] = Field(default_factory=list,
                                    description="other senses of the main term, as of the last add/edit")
    # The validator of the topic's page and feed (earshot.web.topics): the store gives it
    # a fresh value after every change of the topic or of its matches, so a conditional
    # request is answered from this one item. Set by the store; what a caller passes is
    # ignored. Empty on a topic no change has touched since it was introduced.
    revision: OptionalKey = Field(None, description="a fresh value after every change of the topic or its "
                                                    "matches (set by the store)")
    revised_at: datetime | None = Field(None, description="when the store last set revision")


class TranscriptMoment(BaseModel):
    """Where in an episode's audio its transcript matched a topic: the page and the digest
    offer "play from" there (a Media Fragments ``#t=`` link). Set by matching when a term
    was found in a transcript with times (``earshot.topics.query``)."""

    model_config = ConfigDict(frozen=True)

    start_seconds: int = Field(ge=0, description="offset into the audio where the matching words start")
    text: Message = Field("", description="the transcript words that matched, plain text")


class MatchedEpisode(BaseModel):
    """One episode (one feed's listing of it) that matched a topic, with the reason why."""

    model_config = ConfigDict(frozen=True)

    feed_id: Key
    episode_id: EpisodeId
    podcast: Title = Field("", description="the feed's title")
    # What identifies the podcast behind the feed (``earshot.topics.stats.podcast_groups``):
    # two feeds of one podcast (an old and a new URL, a mirror) count as one in stats.
    podcast_guid: Label = Field(None, description="the feed's <podcast:guid>")
    podcast_author: OptionalTitle = Field(None, description="the feed's author")
    podcast_link: Url = Field(None, description="the feed's web page")
    guid: Guid = None
    title: Title = ""
    published: datetime | None = None
    duration_seconds: int | None = None
    summary: Summary = Field("", description="plain text")
    has_transcript: bool = False
    audio_url: Url = None
    audio_type: Label = None
    audio_length: int | None = None
    link: Url = None
    image: Url = None
    reason: Message = Field("", description='e.g. MLPs in title; "midstream" in description')
    moment: TranscriptMoment | None = Field(None, description="where the transcript matched, if it did")
    transcript_url: Url = Field(None, description="the publisher's transcript that was searched")


TokenPurpose = Literal["confirm", "unsubscribe"]


class TokenRecord(BaseModel):
    """What is stored for a confirmation or unsubscribe token (never the token itself;
    see ``earshot.mail.tokens``)."""

    model_config = ConfigDict(frozen=True)

    token_hash: Key
    purpose: TokenPurpose
    topic: Key
    address_hash: Key
    created_at: datetime
    expires_at: datetime


# ================================================================= discovery
CandidateStatus = Literal["proposed", "added", "rejected"]


class CandidateExample(BaseModel):
    """A matching episode of a candidate feed, as evidence."""

    model_config = ConfigDict(frozen=True)
    title: Title
    published: datetime | None = None
    reason: Message = ""


class DiscoveryCandidate(BaseModel):
    """A feed a directory proposed for a topic, checked against the topic's query."""

    key: FeedUrl = Field(description="what folds duplicates: podcast:guid when known, else the normalized feed URL")
    feed_url: FeedUrl
    title: Title = ""
    podcast_guid: Guid = None
    sources: DirectoryNames = Field(default_factory=list, description="apple, podcastindex")
    terms: SearchTerms = Field(default_factory=list, description="the search terms that found it")
    checked: int = Field(0, description="recent episodes the query was run over")
    matches: int = Field(0, description="how many of them match")
    latest_match_at: datetime | None = None
    share: float = Field(0.0, description="matches / checked")
    score: float = 0.0
    examples: Annotated[list[CandidateExample], Bound(max_items=MAX_CANDIDATE_EXAMPLES)] = Field(default_factory=list)
    explanation: Message = ""
    error: OptionalMessage = Field(None, description="why the feed could not be checked, in words")
    status: CandidateStatus = "proposed"
    found_at: datetime | None = None
    decided_at: datetime | None = None


# ================================================================ transcripts
# Publishers' transcripts (<podcast:transcript>): what is fetched, parsed and matched.
# See earshot.transcripts for the pipeline.


class Cue(NamedTuple):
    """One stretch of a transcript: seconds into the audio (None when the format has no
    times: HTML without ``<time>``, plain text), who speaks if said, and the plain text."""

    start_s: float | None
    end_s: float | None
    speaker: str | None
    text: str


TranscriptStatus = Literal["fetched", "retrying", "failed"]


class TranscriptState(BaseModel):
    """What Earshot knows about one episode's transcript (one stored record beside the
    episode; the text itself lives in the transcript archive). A failure is data here:
    the episode is stored and matched on its title and description regardless."""

    feed_id: Key
    episode_id: EpisodeId
    status: TranscriptStatus
    url: RequiredUrl = Field(description="the transcript chosen (or last tried)")
    format: Label = Field(None, description="json | vtt | srt | html | text, as parsed")
    attempts: int = Field(0, ge=0, description="fetches tried since the last success")
    next_attempt_at: datetime | None = Field(None, description="when a retrying transcript is tried again")
    last_error_kind: Label = None
    last_error_message: OptionalMessage = None
    etag: Validator = None
    last_modified: Validator = None
    cue_count: int = 0
    size_bytes: int = Field(0, description="the transcript body as fetched")
    has_times: bool = False
    fetched_at: datetime | None = None
    warnings: Annotated[list[WarningText], Bound(max_items=MAX_WARNINGS)] = []
# ================================================================== backfills
# A topic's archive re-match, split into segments that run apart (deployed: one SQS
# message each). Its record says how far each segment got, so a retried segment resumes
# at its cursor and the topic shows progress.


class SegmentProgress(BaseModel):
    """How far one segment of a backfill got (``cursor`` None and not done: not started)."""

    cursor: Cursor = None
    scanned: int = Field(0, ge=0, description="episodes read so far")
    matched: int = Field(0, ge=0, description="matches written so far")
    done: bool = False


class BackfillJob(BaseModel):
    """One run of a topic's backfill. A newer run (the query edited again) replaces it,
    and the older run's workers stop at their next page."""

    slug: Key
    run_id: Key
    query: str = Field(max_length=MAX_QUERY_CHARS)
    search_transcripts: bool = Field(False, description="the topic's switch when the run began")
    total_segments: int = Field(ge=1, le=MAX_BACKFILL_SEGMENTS)
    segments: Annotated[dict[int, SegmentProgress], Bound(max_items=MAX_BACKFILL_SEGMENTS)]
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
