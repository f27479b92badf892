"""Earshot's one settings model, read once from the environment at cold start.

No other module reads ``os.environ``: code asks :func:`get_settings` (Lambda) or
receives a :class:`Settings` (tests, CLI), so every knob has one name, one default and
one validation.
"""

from __future__ import annotations

import functools
import os
from email.utils import parseaddr
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from earshot import __version__

MiB = 1024 * 1024


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    # --- AWS resources (names come from template.yaml via environment variables) ---
    table_name: str = Field("earshot", alias="TABLE_NAME")
    fetch_queue_url: str = Field("", alias="FETCH_QUEUE_URL")
    digest_queue_url: str = Field("", alias="DIGEST_QUEUE_URL")
    confirmation_queue_url: str = Field("", alias="CONFIRMATION_QUEUE_URL")
    # Publishers' transcripts: their queue (empty: episodes' transcripts are not fetched)
    # and the bucket their text lives in (earshot.store.archive).
    transcript_queue_url: str = Field("", alias="TRANSCRIPT_QUEUE_URL")
    transcript_bucket: str = Field("", alias="TRANSCRIPT_BUCKET")
    backfill_queue_url: str = Field("", alias="BACKFILL_QUEUE_URL")
    region: str = Field("us-east-1", alias="AWS_REGION")

    # --- fetching (fetcher.py) ---
    user_agent: str = Field(
        f"Earshot/{__version__} (+https://github.com/earshot-podcasts/earshot; podcast topic digests)",
        alias="EARSHOT_USER_AGENT",
    )
    connect_timeout_s: float = Field(10.0, alias="EARSHOT_CONNECT_TIMEOUT_S", gt=0)
    total_timeout_s: float = Field(30.0, alias="EARSHOT_TOTAL_TIMEOUT_S", gt=0)
    max_redirects: int = Field(5, alias="EARSHOT_MAX_REDIRECTS", ge=0, le=20)
    max_body_bytes: int = Field(15 * MiB, alias="EARSHOT_MAX_BODY_BYTES", gt=0)
    # SSRF guard: loopback/private addresses are refused unless allowed here. The deployed
    # stack never sets these; the local CLI allows loopback for the user's own feeds.
    allow_private_addresses: bool = Field(False, alias="EARSHOT_ALLOW_PRIVATE_ADDRESSES")
    allowed_hosts: Annotated[tuple[str, ...], Field(alias="EARSHOT_ALLOWED_HOSTS")] = ()
    # Feeds given as file paths (file:// URLs) are read only where this allows it: the
    # local CLI on the user's own machine, never a deployed function.
    allow_local_files: bool = Field(False, alias="EARSHOT_ALLOW_LOCAL_FILES")

    # --- parsing (ingest/parser.py) ---
    # "auto": the fast path for well-formed RSS 2.0, feedparser for whatever it declines;
    # "feedparser": feedparser for every feed (to compare the two on one's own feeds).
    parser: Literal["auto", "feedparser"] = Field("auto", alias="EARSHOT_PARSER")

    # --- transcripts (earshot.transcripts) ---
    # A transcript body cap well under the feed cap: a three-hour word-by-word JSON
    # transcript is ~3 MiB; more is not a transcript worth reading.
    transcript_max_bytes: int = Field(4 * MiB, alias="EARSHOT_TRANSCRIPT_MAX_BYTES", gt=0)
    # Fetches of one transcript before its failure is final (retries back off 1, 5, 15 min).
    transcript_max_attempts: int = Field(4, alias="EARSHOT_TRANSCRIPT_MAX_ATTEMPTS", ge=1, le=10)

    # --- worker concurrency ---
    worker_threads: int = Field(8, alias="EARSHOT_WORKER_THREADS", ge=1, le=64)
    # Politeness (ingest/politeness.py): requests in flight to one host from Earshot as a
    # whole (every process and Lambda on one store). A host starts at the first, grows up
    # to the ceiling while it answers fast and cleanly, and drops to 1 on 429/503/timeouts.
    max_requests_per_host: int = Field(2, alias="EARSHOT_MAX_REQUESTS_PER_HOST", ge=1)
    host_concurrency_ceiling: int = Field(6, alias="EARSHOT_HOST_CONCURRENCY_CEILING", ge=1, le=16)
    # How long a host slot lease lasts: a killed worker's slot is free again after this.
    host_lease_s: float = Field(120.0, alias="EARSHOT_HOST_LEASE_S", ge=1)
    # The deployed worker hands a check back to the queue (with a delay) after waiting this
    # long for a slot of a host whose slots other workers hold.
    host_wait_s: float = Field(10.0, alias="EARSHOT_HOST_WAIT_S", ge=0)

    # --- observability (observability.py) ---
    # Share of feeds whose routine checks (parsed, not modified, unchanged) write the
    # "feed refreshed" log line; failed checks always do. Log ingestion is billed by the
    # byte and this line is written per check (template CheckLogSampleRate).
    check_log_sample_rate: float = Field(1.0, alias="EARSHOT_CHECK_LOG_SAMPLE_RATE", ge=0, le=1)
    # Count failed checks by error family too (FeedError_<family> metrics). Each family
    # with a failure in an hour is a custom metric billed for that hour; off, failures are
    # counted in Feeds_error and broken down from their log lines (always written).
    feed_error_metrics: bool = Field(True, alias="EARSHOT_FEED_ERROR_METRICS")
    # --- backfill fan-out (topics/backfill.py): segments of the archive read at once ---
    backfill_segments: int = Field(32, alias="EARSHOT_BACKFILL_SEGMENTS", ge=1, le=64)  # bounds.MAX_BACKFILL_SEGMENTS
    # Items a segment reads per page (a DynamoDB Scan ``Limit``); its cursor is recorded after each.
    backfill_page_size: int = Field(500, alias="EARSHOT_BACKFILL_PAGE_SIZE", ge=1, le=10_000)

    # --- scheduling policy (schedule.py) ---
    due_shards: int = Field(4, alias="EARSHOT_DUE_SHARDS", ge=1, le=64)
    min_interval_s: int = Field(3600, alias="EARSHOT_MIN_INTERVAL_S", ge=60)
    max_interval_s: int = Field(86400, alias="EARSHOT_MAX_INTERVAL_S", ge=60)
    max_backoff_s: int = Field(7 * 86400, alias="EARSHOT_MAX_BACKOFF_S", ge=60)

    # --- mail (digest.py, mailer.py) ---
    sender: str = Field("Earshot <digest@earshot.example>", alias="EARSHOT_SENDER")
    # The SES identity (verified domain or address) the sender sends as; empty: the
    # sender address's domain. Checked before every digest run (mailer.ensure_can_send).
    sender_identity: str = Field("", alias="EARSHOT_SENDER_IDENTITY")
    configuration_set: str = Field("earshot", alias="SES_CONFIGURATION_SET")
    # Base of every link Earshot builds. Empty (the deployed API without a custom
    # domain): the API uses each request's own domain (earshot.web.links).
    public_base_url: str = Field("http://localhost:3000", alias="EARSHOT_PUBLIC_BASE_URL")
    unsubscribe_mailto: str = Field("unsubscribe@earshot.example", alias="EARSHOT_UNSUBSCRIBE_MAILTO")
    send_empty_digests: bool = Field(False, alias="EARSHOT_SEND_EMPTY_DIGESTS")
    # Confirmation mails per address (across topics) in any 24 hours (a rolling window).
    max_confirmations_per_24h: int = Field(3, alias="EARSHOT_MAX_CONFIRMATIONS_PER_24H", ge=1)
    # IANA zone the weekly digest's schedule runs in (template DigestTimezone); the week a
    # digest covers is the previous Monday-to-Monday week in this zone (digest.py).
    digest_timezone: str = Field("UTC", alias="DIGEST_TIMEZONE")
    # Concurrent digest senders (template: the digest queue event source's
    # MaximumConcurrency); each paces itself to 1/N of the account's SES send rate.
    sender_concurrency: int = Field(2, alias="EARSHOT_SENDER_CONCURRENCY", ge=1, le=1000)
    # Recipients per digest queue message (DigestBatch allows up to 500 address hashes).
    digest_batch_size: int = Field(50, alias="EARSHOT_DIGEST_BATCH_SIZE", ge=1, le=500)

    # --- podcast directories (earshot.directory) ---
    # Endpoints are settings so tests point them at loopback fakes (allowed where private
    # addresses are: allow_private_addresses or allowed_hosts).
    apple_search_url: str = Field("https://itunes.apple.com/search", alias="EARSHOT_APPLE_SEARCH_URL")
    # Apple's Search API is "limited to approximately 20 calls per minute".
    apple_calls_per_minute: float = Field(20.0, alias="EARSHOT_APPLE_CALLS_PER_MINUTE", gt=0)
    podcastindex_url: str = Field("https://api.podcastindex.org/api/1.0", alias="EARSHOT_PODCASTINDEX_URL")
    # The Podcast Index's free key and secret: set directly locally; deployed, both come
    # from the SSM parameter named below (a SecureString "KEY:SECRET"), never the template.
    podcastindex_key: str = Field("", alias="EARSHOT_PODCASTINDEX_KEY")
    podcastindex_secret: str = Field("", alias="EARSHOT_PODCASTINDEX_SECRET", repr=False)
    podcastindex_parameter: str = Field("", alias="EARSHOT_PODCASTINDEX_PARAMETER")
    podcastindex_calls_per_minute: float = Field(60.0, alias="EARSHOT_PODCASTINDEX_CALLS_PER_MINUTE", gt=0)
    # How long a directory's answer is reused, and the cap on a directory answer's size.
    directory_cache_ttl_s: int = Field(7 * 86400, alias="EARSHOT_DIRECTORY_CACHE_TTL_S", ge=0)
    directory_max_body_bytes: int = Field(4 * MiB, alias="EARSHOT_DIRECTORY_MAX_BODY_BYTES", gt=0)
    # Discovery: search terms per topic, results per directory call, feeds checked, and
    # the recent episodes of each candidate the topic's query is run over.
    discovery_max_terms: int = Field(4, alias="EARSHOT_DISCOVERY_MAX_TERMS", ge=1, le=20)
    discovery_results_per_call: int = Field(25, alias="EARSHOT_DISCOVERY_RESULTS_PER_CALL", ge=1, le=200)
    discovery_max_candidates: int = Field(40, alias="EARSHOT_DISCOVERY_MAX_CANDIDATES", ge=1, le=500)
    discovery_recent_episodes: int = Field(40, alias="EARSHOT_DISCOVERY_RECENT_EPISODES", ge=1, le=1000)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(h.strip().lower() for h in value.split(",") if h.strip())
        return value

    @field_validator("digest_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone: {value!r}") from exc
        return value

    @property
    def digest_zone(self) -> ZoneInfo:
        return ZoneInfo(self.digest_timezone)

    @property
    def sender_address(self) -> str:
        """The bare address of ``sender`` ("Earshot <a@b.org>" -> "a@b.org")."""
        return parseaddr(self.sender)[1]

    @property
    def sender_domain(self) -> str:
        """The domain of the sender's address: Message-ID and List-Id are built on it."""
        return self.sender_address.rpartition("@")[2]

    @property
    def sending_identity(self) -> str:
        """The SES identity to check and send as: ``sender_identity``, else the sender's domain."""
        return self.sender_identity or self.sender_domain

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> "Settings":
        """Build settings from an environment mapping (``os.environ`` by default)."""
        source = dict(os.environ if env is None else env)
        return cls.model_validate({**source, **overrides})

    def with_(self, **changes: object) -> "Settings":
        """A copy with some fields changed (by field name)."""
        return self.model_copy(update=changes)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings.from_env()
