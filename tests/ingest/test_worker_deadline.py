"""The fetch worker never starts a check it may not finish: 10 checks of up to 30 s each,
a few per host, do not fit a 120 s function. Once less than one check's total timeout
plus a margin remains (the Lambda context's remaining time), no further check starts;
those records are handed back as batch item failures, untouched, for SQS to redeliver.
Through the real handler with a fake Lambda context."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from earshot import runtime
from earshot.ingest.refresh import FeedCheck, new_feed
from tests.support.aws_stack import REGION, EmbeddedBackend, LambdaContext, load_handler
from tests.support.feedserver import FeedServer, Serve

RSS = (b"<?xml version='1.0'?><rss version='2.0'><channel><title>Clock</title><item><title>Tick</title>"
       b"<guid>t1</guid></item></channel></rss>")
TOTAL_TIMEOUT_S = 30.0  # the deployed fetch deadline (Settings.total_timeout_s)


@pytest.fixture
def stack(feed_server: FeedServer) -> Iterator[EmbeddedBackend]:
    allowed = ",".join(feed_server.authorities)
    # one thread, one request per host: checks start strictly one after another
    with EmbeddedBackend(extra_env={"EARSHOT_ALLOWED_HOSTS": allowed, "EARSHOT_WORKER_THREADS": "1",
                                    "EARSHOT_TOTAL_TIMEOUT_S": str(TOTAL_TIMEOUT_S)}) as backend:
        yield backend


@dataclass
class ClockedContext(LambdaContext):
    """A Lambda context whose remaining time is scripted: one value per call, then the last."""

    remaining_ms: list[int] = field(default_factory=list)
    calls: int = 0

    def get_remaining_time_in_millis(self) -> int:
        self.calls += 1
        return self.remaining_ms[min(self.calls, len(self.remaining_ms)) - 1]


def batch(stack: EmbeddedBackend, feed_server: FeedServer, n: int) -> tuple[dict, list[str]]:
    feeds = []
    for i in range(n):
        feed = new_feed(feed_server.route(f"/f{i}.xml", Serve(RSS)), datetime.now(UTC) - timedelta(minutes=1))
        runtime.store().add_feed(feed)
        feeds.append(feed)
    queue_url = stack.settings.fetch_queue_url
    boto3.client("sqs", region_name=REGION).send_message_batch(QueueUrl=queue_url, Entries=[
        {"Id": str(i), "MessageBody": FeedCheck.from_state(f).model_dump_json()} for i, f in enumerate(feeds)])
    event = stack.receive_sqs_event(queue_url)
    assert event is not None and len(event["Records"]) == n
    return event, [f.feed_id for f in feeds]


def test_no_check_starts_when_the_deadline_is_near(stack: EmbeddedBackend, feed_server: FeedServer) -> None:
    event, feed_ids = batch(stack, feed_server, 10)
    # 35 s left: less than one check's 30 s plus the 10 s margin
    context = ClockedContext(function_name="earshot-fetch_worker", remaining_ms=[35_000])
    response = load_handler("fetch_worker")(event, context)
    # Every record is handed back, nothing was fetched, no feed was touched
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == {r["messageId"] for r in event["Records"]}
    assert not any(feed_server.requests_to(f"/f{i}.xml") for i in range(10))
    assert all(runtime.store().get_feed(f).last_checked_at is None for f in feed_ids)


def test_checks_stop_starting_once_the_deadline_nears(stack: EmbeddedBackend, feed_server: FeedServer) -> None:
    event, feed_ids = batch(stack, feed_server, 10)
    # Plenty of time for the first three checks, then 39.9 s left
    context = ClockedContext(function_name="earshot-fetch_worker", remaining_ms=[119_000, 90_000, 60_000, 39_900])
    response = load_handler("fetch_worker")(event, context)
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    ids = [r["messageId"] for r in event["Records"]]
    # the one thread takes the records in order: three were checked, seven handed back
    assert failed == set(ids[3:])
    checked = [runtime.store().get_feed(f) for f in feed_ids]
    assert [f.last_checked_at is not None for f in checked] == [True] * 3 + [False] * 7
    assert all(f.status == "active" and f.episode_count == 1 for f in checked[:3])


def test_with_time_to_spare_every_check_runs(stack: EmbeddedBackend, feed_server: FeedServer) -> None:
    event, feed_ids = batch(stack, feed_server, 3)
    response = load_handler("fetch_worker")(event, ClockedContext(function_name="w", remaining_ms=[120_000]))
    assert response == {"batchItemFailures": []}
    assert all(runtime.store().get_feed(f).episode_count == 1 for f in feed_ids)
