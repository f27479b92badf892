"""At-least-once delivery: the same SQS batch twice stores nothing twice, and the weekly
digest run twice for one week (or its sender batches re-delivered) mails nobody twice.
All through the real handlers under moto."""

from __future__ import annotations

import email
import email.policy
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from earshot import runtime
from earshot.mail.digest import previous_week, week_window
from earshot.mail.subscriptions import address_hash
from earshot.models import ConsentEvent, MatchedEpisode, Subscriber, Topic
from tests.hostile.conftest import add_feed, deliver, episodes, make_stack, stored
from tests.support.aws_stack import REGION, EmbeddedBackend, sample_event
from tests.support.feedserver import FeedServer, Serve, running_feed_server

SLUG = "pipelines"


def rss(*guids: str) -> bytes:
    items = "".join(f"<item><title>Pipelines {g}</title><guid>{g}</guid>"
                    f"<pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate></item>" for g in guids)
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>Dup</title>{items}</channel></rss>".encode()


@pytest.fixture
def stack() -> Iterator[tuple[EmbeddedBackend, FeedServer]]:
    with running_feed_server() as server, make_stack(server) as backend:
        yield backend, server


def episode_items() -> Counter[tuple[str, str]]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    keys: Counter[tuple[str, str]] = Counter()
    for page in ddb.get_paginator("scan").paginate(TableName=runtime.settings().table_name):
        for item in page["Items"]:
            if not item["pk"]["S"].startswith("HOST#"):  # host slot leases (politeness), not content
                keys[(item["pk"]["S"], item["sk"]["S"])] += 1
    return keys


def test_same_fetch_batch_delivered_twice_stores_nothing_twice(stack: tuple[EmbeddedBackend, FeedServer]) -> None:
    backend, server = stack
    # Given a topic that matches, two healthy feeds and two failing ones in one batch
    repo = runtime.store()
    now = datetime.now(UTC)
    repo.create_topic(Topic(slug=SLUG, name="Pipelines", query="pipelines", created_at=now, updated_at=now))
    a = add_feed(server.route("/a.xml", Serve(rss("a1", "a2", "a3"))))
    b = add_feed(server.route("/b.xml", Serve(rss("b1"))))
    missing = add_feed(server.url("/missing.xml"))
    html = add_feed(server.route("/page", Serve(b"<html><body>no</body></html>", headers={"Content-Type": "text/html"})))
    batch = [a, b, missing, html]

    # When SQS delivers the very same batch twice (at-least-once)
    first = deliver(backend, batch)
    items_after_first = episode_items()
    matches_after_first = [(m.feed_id, m.episode_id, m.title) for m in repo.list_matches(SLUG)]
    second = deliver(backend, batch)

    # Then the second delivery adds no item, no match, and counts no error twice
    assert first.response == second.response == {"batchItemFailures": []}
    assert episode_items() == items_after_first and max(items_after_first.values()) == 1
    assert [(m.feed_id, m.episode_id, m.title) for m in repo.list_matches(SLUG)] == matches_after_first
    assert len(matches_after_first) == 4
    assert set(episodes(a.feed_id)) == {"a1", "a2", "a3"} and stored(a.feed_id).episode_count == 3
    assert stored(missing.feed_id).error_count == 1 and stored(html.feed_id).error_count == 1


# ------------------------------------------------------------------ digest


def sent_digests() -> Counter[str]:
    """How many digest mails (they carry List-Unsubscribe) each address received."""
    out: Counter[str] = Counter()
    for message in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages:
        parsed = email.message_from_string(getattr(message, "raw_data", ""), policy=email.policy.default)
        if parsed["List-Unsubscribe"]:
            out[str(parsed["To"])] += 1
    return out


@pytest.fixture
def digest_stack() -> Iterator[EmbeddedBackend]:
    with EmbeddedBackend() as backend:
        repo = runtime.store()
        now = datetime.now(UTC)
        repo.create_topic(Topic(slug=SLUG, name="Pipelines", query="pipelines", created_at=now, updated_at=now))
        start, _ = week_window(previous_week(now))
        repo.replace_topic_matches(SLUG, [MatchedEpisode(feed_id="f-1", episode_id="e-1", podcast="Pod", title="Pipelines",
                                               published=start + timedelta(days=1), reason="pipelines in title")])
        for n in range(3):
            address = f"reader{n}@example.com"
            consent = ConsentEvent(at=now, source="api")
            assert repo.save_subscriber(Subscriber(topic=SLUG, email=address, address_hash=address_hash(address),
                                                   status="confirmed", created_at=now, requested=consent,
                                                   confirmed=consent))
        yield backend


def test_digest_run_twice_for_one_week_mails_each_subscriber_once(digest_stack: EmbeddedBackend) -> None:
    backend = digest_stack
    queue_url = backend.env["DIGEST_QUEUE_URL"]
    week = previous_week(datetime.now(UTC))
    event = dict(sample_event("digest_scheduled"), week=week)
    # When the scheduler fires twice (its retry) before any batch is sent, so the queue
    # holds every batch twice, and then each SQS message is also handed over twice
    first, second = backend.invoke("digest", event), backend.invoke("digest", event)
    assert first["recipients"] == second["recipients"] == 3
    while (batch := backend.receive_sqs_event(queue_url)) is not None:
        for _ in range(2):
            assert backend.invoke("digest_sender", batch) == {"batchItemFailures": []}
        backend.delete_messages(queue_url, batch)
    # Then each subscriber has exactly one digest for the week
    assert sent_digests() == Counter({f"reader{n}@example.com": 1 for n in range(3)})


def test_digest_sender_batch_redelivered_after_a_partial_send_mails_nobody_twice(
    digest_stack: EmbeddedBackend,
) -> None:
    backend = digest_stack
    week = previous_week(datetime.now(UTC))
    backend.invoke("digest", dict(sample_event("digest_scheduled"), week=week))
    recipients = [address_hash(f"reader{n}@example.com") for n in range(3)]
    # A first delivery that carried only part of the list, then the whole list re-delivered
    for chunk in (recipients[:1], recipients, recipients):
        event = sample_event("digest_sender_batch")
        event["Records"][0]["body"] = json.dumps({"topic": SLUG, "week": week, "recipients": chunk})
        assert backend.invoke("digest_sender", event) == {"batchItemFailures": []}
    assert sent_digests() == Counter({f"reader{n}@example.com": 1 for n in range(3)})
