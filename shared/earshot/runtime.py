"""Process-wide services for the Lambda handlers, built once per cold start.

Deployed, each service is the AWS adapter of its port: :class:`~earshot.store.Store` on
DynamoDB, queues on SQS, the mailer on SES, the transcript archive on S3. Clients are built lazily (first use), so tests
can start moto before anything touches AWS.

A host process that runs the same handlers on other adapters (the local runtime in
``earshot_local``) installs them with :func:`use`; the handlers never know the difference.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx

from earshot.ingest.politeness import forget_paces
from earshot.mail.mailer import Mailer, MailerPort, Pacer, ses_client, ses_send_client
from earshot.queue import Queue, QueuePort
from earshot.settings import Settings, get_settings
from earshot.store import Store
from earshot.store.archive import S3TranscriptArchive, TranscriptArchive
from earshot.store.dynamodb import DynamoStore
from earshot.topics.matching import clear_topic_cache

_installed: dict[str, Any] = {}


def use(*, settings: Settings | None = None, store: Store | None = None, fetch_queue: QueuePort | None = None,
        digest_queue: QueuePort | None = None, confirmation_queue: QueuePort | None = None,
        mailer: MailerPort | None = None, clock: Callable[[], datetime] | None = None,
        transcript_queue: QueuePort | None = None, transcript_archive: TranscriptArchive | None = None,
        backfill_queue: QueuePort | None = None) -> None:
    """Install adapters in place of the AWS ones (for this process, until :func:`reset`);
    ``clock`` replaces the wall clock the handlers read through :func:`now`."""
    reset()
    for name, value in (("settings", settings), ("store", store), ("fetch_queue", fetch_queue),
                        ("digest_queue", digest_queue), ("confirmation_queue", confirmation_queue),
                        ("mailer", mailer), ("clock", clock), ("transcript_queue", transcript_queue),
                        ("transcript_archive", transcript_archive), ("backfill_queue", backfill_queue)):
        if value is not None:
            _installed[name] = value


def now() -> datetime:
    """The current time (UTC), as the handlers see it."""
    clock: Callable[[], datetime] | None = _installed.get("clock")
    return clock() if clock else datetime.now(UTC)


def settings() -> Settings:
    """The one way handlers and routes reach settings."""
    return _installed.get("settings") or get_settings()


def store() -> Store:
    return _installed.get("store") or _dynamo_store()


def _queue(name: str, url: str) -> QueuePort:
    installed: QueuePort | None = _installed.get(name)
    return installed or _sqs_queue(url)


def fetch_queue() -> QueuePort:
    return _queue("fetch_queue", settings().fetch_queue_url)


def digest_queue() -> QueuePort:
    return _queue("digest_queue", settings().digest_queue_url)


def confirmation_queue() -> QueuePort:
    """Where the API leaves subscribe requests for the confirmation mailer."""
    return _queue("confirmation_queue", settings().confirmation_queue_url)


def transcript_queue() -> QueuePort | None:
    """Where new episodes' transcripts wait for the transcript worker; None where
    transcripts are not fetched (no queue installed or configured)."""
    if "transcript_queue" not in _installed and not settings().transcript_queue_url:
        return None
    return _queue("transcript_queue", settings().transcript_queue_url)


def transcript_archive() -> TranscriptArchive:
    """Where transcript text lives (S3 deployed)."""
    installed: TranscriptArchive | None = _installed.get("transcript_archive")
    return installed or _s3_archive()


def backfill_queue() -> QueuePort:
    """Where a topic's backfill leaves one message per segment for the backfill workers."""
    return _queue("backfill_queue", settings().backfill_queue_url)


def mailer() -> MailerPort:
    """The mailer for one-off mails (confirmations); digests add pacing on top."""
    return _installed.get("mailer") or _ses_mailer()


@functools.cache
def paced_mailer() -> MailerPort:
    """The digest sender's mailer, built once per container: each of the
    ``sender_concurrency`` concurrent senders (the event source's MaximumConcurrency in
    template.yaml) takes an equal share of the account's send rate (GetAccount, read once)."""
    paced = copy.copy(mailer())  # the shared mailer stays unpaced
    paced.pacer = Pacer(paced.max_send_rate() / settings().sender_concurrency)
    return paced


@functools.cache
def _dynamo_store() -> DynamoStore:
    s = settings()
    return DynamoStore(s.table_name, client=boto3.client("dynamodb", region_name=s.region), due_shards=s.due_shards)


@functools.cache
def _sqs_queue(url: str) -> Queue:
    return Queue(url, client=_sqs_client())


@functools.cache
def _s3_archive() -> S3TranscriptArchive:
    s = settings()
    return S3TranscriptArchive(s.transcript_bucket, client=boto3.client("s3", region_name=s.region))


@functools.cache
def _sqs_client() -> Any:
    return boto3.client("sqs", region_name=settings().region)


@functools.cache
def _ses_mailer() -> Mailer:
    s = settings()
    return Mailer(ses_client(s.region), send_client=ses_send_client(s.region), configuration_set=s.configuration_set,
                  sender=s.sender)


@functools.cache
def http_client(for_settings: Settings | None = None) -> httpx.Client:
    """The process's pooled client (one per settings, kept across invocations), with a
    connection for each of the settings' ``worker_threads``: a run with more threads
    than the process settings say passes its own settings, or its threads would queue
    for connections (and that wait would count as the hosts' latency, which their pace
    reads as the hosts slowing down)."""
    from earshot.ingest.fetcher import make_client

    return make_client(for_settings or settings())


def directory_settings() -> Settings:
    """Settings for the directory clients: deployed, the Podcast Index's key and secret
    come from the SSM SecureString ``podcastindex_parameter`` names ("KEY:SECRET"), read
    once per container; never from a template parameter or a plain variable."""
    s = settings()
    if s.podcastindex_key or not s.podcastindex_parameter:
        return s
    key, _, secret = _ssm_secret(s.podcastindex_parameter).partition(":")
    return s.with_(podcastindex_key=key.strip(), podcastindex_secret=secret.strip())


@functools.cache
def _ssm_secret(name: str) -> str:
    answer = boto3.client("ssm", region_name=settings().region).get_parameter(Name=name, WithDecryption=True)
    return str(answer["Parameter"]["Value"])


def reset() -> None:
    """Forget every cached and installed service (tests and the local runtime call this)."""
    _installed.clear()
    for cached in (paced_mailer, _dynamo_store, _sqs_queue, _sqs_client, _ses_mailer, http_client, _s3_archive,
                   ses_client, ses_send_client, _ssm_secret):
        cached.cache_clear()
    clear_topic_cache()
    forget_paces()
    get_settings.cache_clear()
