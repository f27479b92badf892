"""Digest delivery under SES and DynamoDB faults, through the real handlers.

The digest handler plans the week (one batch of five confirmed readers); the batch's SQS
event is then handed to the real ``digest_sender`` handler again and again, as SQS
redelivers a message whose record the handler reported failed, until it succeeds (five
deliveries at most). Faults are injected at the HTTP boundary of the real boto3 clients
(botocore ``before-send`` hooks, ``tests/support/faults.py``): SES accepting a mail whose
answer is then lost, SES refusing or throttling, no connection at all, DynamoDB throttling
the claim, the subscriber read or the delivery record, DynamoDB losing the answer of the
claim. What the handlers counted is read from the CloudWatch metrics they emit.

The delivery guarantee (docs/email.md) is what every case asserts: each reader ends the
week with exactly one digest, or with a recorded, counted reason why not (the claim's
state ``rejected``, ``unknown`` or ``claimed``; the ``Digest_rejected``,
``Digest_outcome_unknown``, ``Digest_skipped_unfinished`` metrics); never two. And every
mail SES took is counted as sent, except those recorded as ``unknown``.
"""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from earshot import runtime
from earshot.mail.digest import previous_week, week_window
from earshot.mail.subscriptions import address_hash
from earshot.models import ConsentEvent, MatchedEpisode, Subscriber, Topic
from tests.support.aws_stack import REGION, EmbeddedBackend, sample_event
from tests.support.faults import (
    AwsFaults,
    Fault,
    body_has,
    lost_answer,
    refused,
    throttled,
    unreachable,
)

SLUG = "pipelines"
READERS = [f"reader{n}@example.com" for n in range(5)]
FAULTED = READERS[1]
SANDBOX = ("Email address is not verified. The following identities failed the check in region US-EAST-1: "
           + FAULTED)


@pytest.fixture
def week(backend: EmbeddedBackend) -> Iterator[str]:
    """A topic with news last week and five confirmed readers."""
    runtime.reset()
    repo = runtime.store()
    now = datetime.now(UTC)
    repo.create_topic(Topic(slug=SLUG, name="Pipelines", query="pipelines", created_at=now, updated_at=now))
    start, _ = week_window(previous_week(now))
    repo.replace_topic_matches(SLUG, [MatchedEpisode(feed_id="f-1", episode_id="e-1", podcast="Pod", title="Pipelines",
                                                     published=start + timedelta(days=1), reason="title")])
    for address in READERS:
        consent = ConsentEvent(at=now, source="api")
        assert repo.save_subscriber(Subscriber(topic=SLUG, email=address, address_hash=address_hash(address),
                                               status="confirmed", created_at=now, requested=consent,
                                               confirmed=consent))
    yield previous_week(now)


def digests_to() -> Counter[str]:
    """Digests SES took, by recipient."""
    messages = [email.message_from_string(m.raw_data, policy=email.policy.default)
                for m in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages]
    return Counter(str(m["To"]) for m in messages if m["List-Unsubscribe"])


def claim_state(address: str, week: str) -> str | None:
    return runtime.store().get_claim_state(address_hash(address), SLUG, week)


def delivered(backend: EmbeddedBackend, event: dict[str, Any]) -> bool:
    """One delivery of the batch to the sender: True when SQS may delete it. A record the
    handler reports failed, or an invocation error (Powertools raises when every record
    of the event failed), means SQS delivers it again."""
    try:
        response = backend.invoke("digest_sender", event)
    except BatchProcessingError:
        return False
    return not response["batchItemFailures"]


def planned_batch(backend: EmbeddedBackend) -> dict[str, Any]:
    """Plan the week through the digest handler; the one queued batch, as its SQS event."""
    assert backend.invoke("digest", sample_event("digest_scheduled"))["recipients"] == len(READERS)
    event = backend.receive_sqs_event(backend.env["DIGEST_QUEUE_URL"])
    assert event is not None and len(event["Records"]) == 1
    return event


@dataclass
class Case:
    """A fault on one AWS operation, active for the first ``deliveries`` deliveries."""

    operation: str
    fault: Callable[[], Fault]
    match: Callable[[str], bytes | str] | None = None  # reader address -> text the request carries
    times: int | None = None  # per delivery: None = every matching attempt
    deliveries: int = 1
    # what the faulted reader ends with: mails, claim state, and the counted reason (a metric)
    mails: int = 1
    state: str = "sent"
    counted: str = "Digest_sent"
    failed_deliveries: int = 1
    also: tuple[tuple[str, Callable[[], Fault]], ...] = ()  # more faults, same reader, same deliveries


def _to(address: str) -> str:
    return address


def _claim_of(address: str) -> str:
    return f"ADDR#{address_hash(address)}"


CASES: dict[str, Case] = {
    # SES: the answer never came. The mail went (moto has it) and is never sent again.
    "ses-accepted-answer-lost": Case("sesv2.SendEmail", lost_answer, _to, mails=1, state="unknown",
                                     counted="Digest_outcome_unknown", failed_deliveries=0),
    # SES: an internal error. It may or may not have been sent: recorded, not retried.
    "ses-internal-error": Case("sesv2.SendEmail", lambda: refused("InternalFailure", status=500), _to, mails=0,
                               state="unknown", counted="Digest_outcome_unknown", failed_deliveries=0),
    # SES refused this message: final for this reader.
    "ses-rejects-the-message": Case("sesv2.SendEmail", lambda: refused("MessageRejected", "Illegal address"), _to,
                                    mails=0, state="rejected", counted="Digest_rejected", failed_deliveries=0),
    # SES certainly did not send: the claim goes, the batch comes back, one mail in the end.
    "ses-throttles": Case("sesv2.SendEmail", lambda: refused("TooManyRequestsException", status=429), _to),
    "ses-unavailable-503": Case("sesv2.SendEmail", lambda: refused("ServiceUnavailable", status=503), _to),
    "ses-unreachable": Case("sesv2.SendEmail", unreachable, _to),
    "ses-sandbox-refuses-sending": Case("sesv2.SendEmail", lambda: refused("MessageRejected", SANDBOX), _to),
    # DynamoDB throttles the claim (and its token) for every reader, twice: three deliveries.
    "claim-throttled-twice": Case("dynamodb.TransactWriteItems", throttled, deliveries=2, failed_deliveries=2),
    # DynamoDB answered the claim but the answer was lost; the SDK's retry finds the claim
    # it made itself (its token) and the reader is mailed once.
    "claim-answer-lost": Case("dynamodb.TransactWriteItems", lost_answer, _claim_of, times=1, failed_deliveries=0),
    # DynamoDB throttles the subscriber read for one reader (before anything is claimed).
    "subscriber-read-throttled": Case("dynamodb.GetItem", throttled, lambda a: f"SUB#{SLUG}\"", times=None),
    # DynamoDB throttles the delivery record after SES took the mail: the mail went once;
    # the redelivery finds the claim unfinished and does not send again.
    "delivery-record-throttled": Case("dynamodb.UpdateItem", throttled, _claim_of, mails=1, state="claimed",
                                      counted="Digest_skipped_unfinished"),
    # SES throttles and then DynamoDB throttles the claim's release: nothing can tell the
    # claim from a crash mid-send, so the reader is not mailed again, and it is counted.
    "release-throttled-after-refusal": Case("sesv2.SendEmail", lambda: refused("TooManyRequestsException", status=429),
                                            _to, mails=0, state="claimed", counted="Digest_skipped_unfinished",
                                            also=(("dynamodb.DeleteItem", throttled),)),
}


def _case_match(case: Case) -> Callable[[bytes], bool] | None:
    if case.match is None:
        return None
    if case.operation == "dynamodb.GetItem":
        # the subscriber item of the faulted reader: its key names both
        key, sub = _claim_of(FAULTED).encode(), str(case.match(FAULTED)).encode()
        return lambda body: key in body and sub in body
    return body_has(str(case.match(FAULTED)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_reader_ends_with_one_digest_or_a_counted_reason(
    week: str, faults: AwsFaults, metrics_on: Callable[[], Counter[str]], backend: EmbeddedBackend, name: str,
) -> None:
    case = CASES[name]
    event = planned_batch(backend)
    metrics_on()  # what planning counted is not part of this

    # Deliver the same batch until the sender takes it whole, the fault active at first
    failed = 0
    for delivery in range(5):
        faults.clear()
        if delivery < case.deliveries:
            faults.add(case.operation, case.fault(), times=case.times, match=_case_match(case))
            for operation, fault in case.also:
                faults.add(operation, fault(), times=None, match=body_has(_claim_of(FAULTED)))
        if delivered(backend, event):
            break
        failed += 1
    else:
        pytest.fail("the batch never went through")
    counted = metrics_on()

    # Then every other reader has exactly one digest, recorded as sent
    mails = digests_to()
    for address in READERS:
        if address != FAULTED and (case.match is not None):
            assert mails[address] == 1, (address, mails)
            assert claim_state(address, week) == "sent", address
    # and the faulted reader (every reader, for a fault on all of them) ends as the case says
    affected = [FAULTED] if case.match is not None else READERS
    for address in affected:
        assert mails[address] == case.mails, (address, mails)
        assert claim_state(address, week) == case.state, address
    assert max(mails.values()) == 1, "nobody is mailed twice"
    assert failed == case.failed_deliveries
    # and what happened was counted: the faulted readers' reason, and every mail SES took
    # as sent, except those recorded as of unknown outcome
    assert counted[case.counted] >= len(affected), counted
    assert counted["Digest_sent"] == sum(mails[a] for a in READERS if claim_state(a, week) != "unknown"), counted

    # A redelivery of the week's batch afterwards (SQS at-least-once) changes nothing
    faults.clear()
    assert backend.invoke("digest_sender", event) == {"batchItemFailures": []}
    assert digests_to() == mails
    again = metrics_on()
    unfinished = sum(claim_state(a, week) == "claimed" for a in READERS)
    assert (again["Digest_skipped_already_claimed"], again["Digest_skipped_unfinished"]) == (
        len(READERS) - unfinished, unfinished)


def test_a_send_whose_answer_is_lost_is_attempted_once(week: str, faults: AwsFaults,
                                                       backend: EmbeddedBackend) -> None:
    # Given SES takes the mail to the faulted reader and every answer to it is lost
    rule = faults.add("sesv2.SendEmail", lost_answer(), times=None, match=body_has(FAULTED))
    # When the batch is sent
    assert backend.invoke("digest_sender", planned_batch(backend)) == {"batchItemFailures": []}
    # Then the send was made once: no SDK retry repeated it (botocore's default would
    # have made five attempts, five mails)
    assert rule.fired == 1
    assert digests_to()[FAULTED] == 1


def test_a_throttled_send_is_tried_three_times_then_the_batch_comes_back(
    week: str, faults: AwsFaults, backend: EmbeddedBackend,
) -> None:
    # Throttles certainly sent nothing, so the mailer itself tries twice more, then gives up
    rule = faults.add("sesv2.SendEmail", refused("TooManyRequestsException", status=429), times=None,
                      match=body_has(FAULTED))
    event = planned_batch(backend)
    assert not delivered(backend, event)
    assert rule.fired == 3
    assert claim_state(FAULTED, previous_week(datetime.now(UTC))) is None  # released
    # and once SES takes mail again, the redelivered batch mails only who is left
    faults.clear()
    assert backend.invoke("digest_sender", event) == {"batchItemFailures": []}
    assert digests_to() == Counter({address: 1 for address in READERS})


def test_a_failed_claim_leaves_no_unsubscribe_token_behind(week: str, faults: AwsFaults,
                                                           backend: EmbeddedBackend) -> None:
    # Claim and token are one transaction: when DynamoDB refuses it, neither exists
    faults.add("dynamodb.TransactWriteItems", throttled(), times=None)
    assert not delivered(backend, planned_batch(backend))
    table = boto3.client("dynamodb", region_name=REGION)
    keys = [item["pk"]["S"] + " " + item["sk"]["S"]
            for page in table.get_paginator("scan").paginate(TableName=runtime.settings().table_name)
            for item in page["Items"]]
    assert [k for k in keys if k.startswith("TOKEN#") or " SENT#" in k] == []
