"""The deployed path, under moto: the fetch worker queues a transcript job per new episode
that lists one, the transcript worker (the real handler, fed SQS events as the event
source would) fetches it over loopback, keeps the text in S3 and its state in DynamoDB,
and a retry goes back to the queue delayed."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from earshot import runtime
from earshot.ingest.refresh import new_feed
from earshot.models import Topic
from earshot.store.archive import object_key
from earshot.store.port import feed_id_for
from earshot_local.functions import sample_event
from tests.support.aws_stack import REGION, EmbeddedBackend
from tests.support.feedserver import FeedServer, Serve, running_feed_server

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"


def _feed(transcript_url: str) -> bytes:
    return f"""<?xml version="1.0"?><rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0">
<channel><title>Midstream Minute</title>
<item><title>Weekly markets</title><guid>ep-142</guid><pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate>
<enclosure url="https://media.example/142.mp3" type="audio/mpeg"/>
<podcast:transcript url="{transcript_url}" type="application/json"/></item>
<item><title>No transcript</title><guid>ep-141</guid><pubDate>Tue, 17 Nov 2026 10:00:00 GMT</pubDate></item>
</channel></rss>""".encode()


@pytest.fixture
def stack_and_server() -> Iterator[tuple[EmbeddedBackend, FeedServer]]:
    with running_feed_server() as server, EmbeddedBackend(
        extra_env={"EARSHOT_ALLOWED_HOSTS": ",".join(server.authorities), "EARSHOT_TOTAL_TIMEOUT_S": "2"}
    ) as stack:
        yield stack, server


def test_new_episodes_transcripts_are_fetched_on_their_own_queue_into_s3(
    stack_and_server: tuple[EmbeddedBackend, FeedServer],
) -> None:
    stack, server = stack_and_server
    repo = runtime.store()
    now = datetime.now(UTC)
    repo.create_topic(Topic(slug="mlp", name="MLPs", query="MLP", search_transcripts=True, created_at=now,
                            updated_at=now))
    transcript = server.route("/142.json", Serve((FIXTURES / "podcasting20.json").read_bytes(),
                                                 headers={"Content-Type": "application/json"}))
    feed_url = server.route("/feed.xml", Serve(_feed(transcript)))
    repo.add_feed(new_feed(feed_url, now))

    # The fetch worker stores both episodes and queues one transcript job; it fetches no transcript
    stack.invoke("dispatcher", {**sample_event("dispatcher_scheduled"), "force": True})
    stack.drain_queue("fetch_worker", stack.settings.fetch_queue_url)
    assert server.requests_to("/142.json") == []
    assert repo.count_matches("mlp") == 0
    # The transcript worker fetches it, keeps the text in S3 and matches the moment
    [response] = stack.drain_queue("transcript_worker", stack.settings.transcript_queue_url)
    assert response == {"batchItemFailures": []}
    feed_id = feed_id_for(feed_url)
    state = repo.get_transcript_state(feed_id, "ep-142")
    assert state is not None and (state.status, state.format, state.cue_count) == ("fetched", "json", 10)
    blob = boto3.client("s3", region_name=REGION).get_object(Bucket=stack.settings.transcript_bucket,
                                                             Key=object_key(feed_id, "ep-142"))["Body"].read()
    assert json.loads(gzip.decompress(blob))["cues"][5] == [754.1, 754.6, "Ann", "MLPs"]
    [match] = repo.list_matches("mlp")
    assert match.moment is not None and match.moment.start_seconds == 754
    # No transcript text sits in a DynamoDB item
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=stack.settings.table_name)["Items"]
    assert not [i for i in items if "distributions" in json.dumps(i) and not i["sk"]["S"].startswith("MATCH#")]


def test_a_retriable_failure_is_requeued_delayed_and_recorded(
    stack_and_server: tuple[EmbeddedBackend, FeedServer],
) -> None:
    stack, server = stack_and_server
    repo = runtime.store()
    now = datetime.now(UTC)
    transcript = server.route("/busy.json", Serve(b"", status=500))
    feed_url = server.route("/feed.xml", Serve(_feed(transcript)))
    repo.add_feed(new_feed(feed_url, now))
    stack.invoke("dispatcher", {**sample_event("dispatcher_scheduled"), "force": True})
    stack.drain_queue("fetch_worker", stack.settings.fetch_queue_url)
    stack.drain_queue("transcript_worker", stack.settings.transcript_queue_url)
    state = repo.get_transcript_state(feed_id_for(feed_url), "ep-142")
    assert state is not None and (state.status, state.last_error_kind, state.attempts) == ("retrying", "http_500", 1)
    # the job is back on the queue, held back a minute (not visible yet)
    sqs = boto3.client("sqs", region_name=REGION)
    attributes = sqs.get_queue_attributes(QueueUrl=stack.settings.transcript_queue_url,
                                          AttributeNames=["ApproximateNumberOfMessagesDelayed",
                                                          "ApproximateNumberOfMessages"])["Attributes"]
    assert attributes == {"ApproximateNumberOfMessagesDelayed": "1", "ApproximateNumberOfMessages": "0"}
