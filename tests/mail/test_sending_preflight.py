"""When SES cannot send at all (identity not verified, sending paused, the sandbox), the
digest must neither vanish nor be blamed on its recipients: the run refuses to start and
fails loudly, a send refused for the sender's sake releases its claims and comes back,
and only a refusal of the message itself marks a recipient rejected. Through the real
handlers under moto; plus the week's time zone and the sender's pacing share."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from earshot import observability, runtime
from earshot.errors import SendingUnavailable
from earshot.mail.delivery import plan_week
from earshot.mail.digest import previous_week, week_window
from earshot.mail.subscriptions import address_hash
from earshot.models import ConsentEvent, MatchedEpisode, Subscriber, Topic
from earshot_local.functions import load_function_module as _load_function_module
from tests.support.aws_stack import (
    LOCAL_MAX_SEND_RATE,
    LOCAL_SENDER,
    REGION,
    EmbeddedBackend,
    LambdaContext,
    load_template,
    sample_event,
    set_identity_verified,
)
from tests.support.faults import AwsFaults, body_has, refused

SLUG = "pipelines"
READERS = ["reader0@example.com", "reader1@example.com"]
UNVERIFIED = ("Email address is not verified. The following identities failed the check in region "
              f"US-EAST-1: {LOCAL_SENDER}")


def _confirmed(repo: Any, address: str, now: datetime, topic: str = SLUG) -> None:
    consent = ConsentEvent(at=now, source="api")
    assert repo.save_subscriber(Subscriber(topic=topic, email=address, address_hash=address_hash(address),
                                           status="confirmed", created_at=now, requested=consent, confirmed=consent))


@pytest.fixture
def stack(backend: EmbeddedBackend) -> Iterator[EmbeddedBackend]:
    repo = runtime.store()
    now = datetime.now(UTC)
    repo.create_topic(Topic(slug=SLUG, name="Pipelines", query="pipelines", created_at=now, updated_at=now))
    start, _ = week_window(previous_week(now))
    repo.replace_topic_matches(SLUG, [MatchedEpisode(feed_id="f-1", episode_id="e-1", podcast="Pod", title="Pipelines",
                                           published=start + timedelta(days=1), reason="pipelines in title")])
    for address in READERS:
        _confirmed(repo, address, now)
    yield backend


def claims() -> dict[str, str]:
    """Send claims in the table: address hash -> state."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    items = ddb.scan(TableName=runtime.settings().table_name)["Items"]
    return {i["pk"]["S"].removeprefix("ADDR#"): i["state"]["S"] for i in items if i["sk"]["S"].startswith("SENT#")}


def queued(stack: EmbeddedBackend) -> int:
    attrs = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=stack.env["DIGEST_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


@pytest.mark.filterwarnings("ignore:No application metrics to publish")  # the failed run adds none
def test_digest_run_refuses_to_start_while_the_identity_is_unverified(stack: EmbeddedBackend) -> None:
    # Given the sending identity is not (or no longer) verified
    set_identity_verified(LOCAL_SENDER, False)
    # When the weekly schedule fires, the run fails (the function errors: DigestErrorsAlarm)
    with pytest.raises(SendingUnavailable, match="not verified"):
        stack.invoke("digest", sample_event("digest_scheduled"))
    # before rendering or queueing anything
    week = previous_week(datetime.now(UTC))
    assert queued(stack) == 0 and runtime.store().get_rendered_digest(SLUG, week) is None
    # Once the identity is verified, the same run (Lambda's retry, or a manual re-run) works
    set_identity_verified(LOCAL_SENDER, True)
    assert stack.invoke("digest", sample_event("digest_scheduled"))["recipients"] == len(READERS)
    assert queued(stack) == 1


def test_a_send_refused_for_the_sender_releases_every_claim_and_retries_the_batch(
    stack: EmbeddedBackend, faults: AwsFaults
) -> None:
    stack.invoke("digest", sample_event("digest_scheduled"))
    event = stack.receive_sqs_event(stack.env["DIGEST_QUEUE_URL"])
    sender = _load_function_module("digest_sender")

    # When SES answers MessageRejected "not verified" (an unverified sender, or the sandbox)
    faults.add("sesv2.SendEmail", refused("MessageRejected", UNVERIFIED), times=None)
    observability.metrics.clear_metrics()
    try:
        # the batch fails as a whole (one record, so the invocation errors: retried by SQS)
        with pytest.raises(BatchProcessingError):
            sender.handler(event, LambdaContext(function_name="earshot-digest_sender"))
        # and counts the metric DigestSendingUnavailableAlarm watches
        assert observability.metrics.metric_set["DigestSendingUnavailable"]["Value"] == [1.0]
    finally:
        observability.metrics.clear_metrics()
    # Then no recipient is marked rejected: no claim is left at all
    assert claims() == {}
    # And when SES sends again, the redelivered batch mails everyone once
    faults.clear()
    assert stack.invoke("digest_sender", event) == {"batchItemFailures": []}
    assert sorted(claims().values()) == ["sent", "sent"]


def test_a_message_refused_for_itself_still_marks_only_that_recipient(
    stack: EmbeddedBackend, faults: AwsFaults
) -> None:
    stack.invoke("digest", sample_event("digest_scheduled"))
    event = stack.receive_sqs_event(stack.env["DIGEST_QUEUE_URL"])
    faults.add("sesv2.SendEmail", refused("MessageRejected", "Illegal address"), times=None,
               match=body_has(READERS[0]))
    assert stack.invoke("digest_sender", event) == {"batchItemFailures": []}
    assert claims() == {address_hash(READERS[0]): "rejected", address_hash(READERS[1]): "sent"}


def test_plan_week_covers_the_week_that_just_ended_in_the_digest_zone(stack: EmbeddedBackend) -> None:
    repo, queue = runtime.store(), runtime.digest_queue()
    # Monday 2025-01-13 08:00 in Auckland = Sunday 2025-01-12 19:00 UTC; an episode from
    # Sunday 10:00 UTC (23:00 Auckland) belongs to Auckland's week 2025-W02
    now = datetime(2025, 1, 12, 19, tzinfo=UTC)
    repo.replace_topic_matches("nz", [MatchedEpisode(feed_id="f-2", episode_id="e-nz", podcast="Pod", title="Kia ora",
                                           published=datetime(2025, 1, 12, 10, tzinfo=UTC), reason="title")])
    repo.create_topic(Topic(slug="nz", name="NZ", query="kia", created_at=now, updated_at=now))
    _confirmed(repo, "kiwi@example.com", now, topic="nz")

    auckland = runtime.settings().with_(digest_timezone="Pacific/Auckland")
    result = plan_week(repo, queue, auckland, now=now)
    assert result.week == "2025-W02" and "nz" in result.topics_queued
    # In UTC the same moment is still week 2025-W02, so the digest would cover 2025-W01
    # and find nothing: the week that just ended in Auckland would never be mailed
    assert plan_week(repo, queue, runtime.settings(), now=now).week == "2025-W01"


def test_sender_pacing_share_matches_the_event_source_concurrency() -> None:
    resources = load_template()["Resources"]
    variables = resources["DigestSenderFunction"]["Properties"]["Environment"]["Variables"]
    maximum = resources["DigestQueueEventSource"]["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    assert int(variables["EARSHOT_SENDER_CONCURRENCY"]) == maximum
    # and the handler paces by the setting that variable feeds
    with EmbeddedBackend(extra_env={"EARSHOT_SENDER_CONCURRENCY": variables["EARSHOT_SENDER_CONCURRENCY"]}):
        runtime.paced_mailer.cache_clear()
        try:
            assert runtime.settings().sender_concurrency == maximum
            assert runtime.paced_mailer().pacer.interval_s == pytest.approx(maximum / LOCAL_MAX_SEND_RATE)
        finally:
            runtime.paced_mailer.cache_clear()
