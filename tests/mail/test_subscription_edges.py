"""Subscribing at its edges, through the real handlers: the ``api`` function answers and
queues, the ``confirmations`` function mails (its queue drained like the SQS event source),
``bounces`` applies SES feedback, ``digest`` and ``digest_sender`` mail the week. Time is
the handlers' clock (``earshot.runtime.use(clock=...)``); SES refusals are injected at the
HTTP boundary (``tests/support/faults.py``).

- the same answer, after the same work, for an address in every state, whatever SES says;
- repeated requests cannot grow an address's record or make it unconfirmable;
- at most three confirmation mails in any 24 hours (a rolling window, not a calendar day),
  and what the owner can do when a stranger used them up;
- an address that bounced or complained gets no confirmation mail from anyone's request;
- a complaint stops every topic of the address;
- the same flow in local mode (SQLite, outbox, the serve command's background mailer).
"""

from __future__ import annotations

import copy
import email
import email.policy
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from earshot import runtime
from earshot.mail import tokens
from earshot.mail.digest import previous_week, week_window
from earshot.mail.subscriptions import MAX_HISTORY, address_hash
from earshot.models import MatchedEpisode, Topic
from earshot_local.outbox import read_eml
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import LocalSettings
from earshot_local.web import confirmation_worker
from tests.support.aws_stack import REGION, EmbeddedBackend, invoke_as_event_source, sample_event
from tests.support.faults import AwsFaults, refused

SLUG, OTHER = "mlp-finance", "pipelines"
TOKEN_RE = re.compile(r"token=([A-Za-z0-9_-]{43})")
SANDBOX = "Email address is not verified. The following identities failed the check in region US-EAST-1: {}"


class Clock:
    """The handlers' clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def stack(backend: EmbeddedBackend) -> Iterator[EmbeddedBackend]:
    """Two topics with news last week."""
    runtime.reset()
    repo = runtime.store()
    now = datetime.now(UTC)
    start, _ = week_window(previous_week(now))
    for slug in (SLUG, OTHER):
        repo.create_topic(Topic(slug=slug, name=slug.title(), query="x", created_at=now, updated_at=now))
        repo.replace_topic_matches(slug, [MatchedEpisode(feed_id="f-1", episode_id=f"e-{slug}", podcast="Pod",
                                                         title="News", published=start + timedelta(days=1),
                                                         reason="title")])
    yield backend


@pytest.fixture
def clock(stack: EmbeddedBackend) -> Iterator[Clock]:
    moving = Clock(datetime.now(UTC))
    runtime.use(clock=moving)
    yield moving
    runtime.use()


def api_subscribe(stack: EmbeddedBackend, address: str, topic: str = SLUG) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("api_subscribe"))
    event["body"] = json.dumps({"email": address, "topic": topic})
    return stack.invoke("api", event)


def subscribe(stack: EmbeddedBackend, address: str, topic: str = SLUG) -> dict[str, Any]:
    """The API's answer, then the confirmation mailer's turn."""
    response = api_subscribe(stack, address, topic)
    stack.send_confirmations()
    return response


def comparable(response: dict[str, Any]) -> tuple[Any, ...]:
    return (response["statusCode"], response.get("body"), json.dumps(response.get("headers"), sort_keys=True),
            json.dumps(response.get("multiValueHeaders"), sort_keys=True), response.get("isBase64Encoded"))


def mails_to(address: str, kind: str = "") -> list[EmailMessage]:
    out = [email.message_from_string(m.raw_data, policy=email.policy.default)
           for m in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages]
    out = [m for m in out if m["To"] == address]  # type: ignore[misc]
    if kind == "confirm":
        return [m for m in out if not m["List-Unsubscribe"]]
    if kind == "digest":
        return [m for m in out if m["List-Unsubscribe"]]
    return out


def token_in(message: EmailMessage) -> str:
    match = TOKEN_RE.search(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert match
    return match[1]


def confirm(stack: EmbeddedBackend, token: str) -> int:
    event = copy.deepcopy(sample_event("api_confirm_post"))
    event["body"] = f"token={token}"
    event["queryStringParameters"], event["rawQueryString"] = {}, ""
    return int(stack.invoke("api", event)["statusCode"])


def unsubscribe(stack: EmbeddedBackend, address: str, topic: str = SLUG) -> None:
    token, record = tokens.issue_token("unsubscribe", topic=topic, address_hash=address_hash(address),
                                       now=runtime.now())
    runtime.store().put_token(record)  # as a digest would carry it
    event = copy.deepcopy(sample_event("api_unsubscribe_post"))
    event["body"] = f"token={token}&List-Unsubscribe=One-Click"
    assert stack.invoke("api", event)["statusCode"] == 200


def subscribe_and_confirm(stack: EmbeddedBackend, address: str, topic: str = SLUG) -> None:
    subscribe(stack, address, topic)
    assert confirm(stack, token_in(mails_to(address, "confirm")[-1])) == 200
    assert status_of(address, topic) == "confirmed"


def status_of(address: str, topic: str = SLUG) -> str:
    sub = runtime.store().get_subscriber(address_hash(address), topic)
    return sub.status if sub else "none"


def stored_item(address: str, topic: str = SLUG) -> dict[str, Any]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    key = {"pk": {"S": f"ADDR#{address_hash(address)}"}, "sk": {"S": f"SUB#{topic}"}}
    return dict(ddb.get_item(TableName=runtime.settings().table_name, Key=key)["Item"])


def ses_event(name: str, address: str, topic: str) -> dict[str, Any]:
    event = copy.deepcopy(sample_event(name))
    detail = event["detail"]
    for recipient in (detail.get("bounce") or detail.get("complaint") or {}).get(
            "bouncedRecipients" if name == "ses_bounce" else "complainedRecipients", []):
        recipient["emailAddress"] = address
    detail["mail"]["tags"]["topic"] = [topic]
    return event


def run_digest(stack: EmbeddedBackend) -> None:
    stack.invoke("digest", sample_event("digest_scheduled"))
    assert all(not r["batchItemFailures"] for r in stack.drain_queue("digest_sender", stack.env["DIGEST_QUEUE_URL"]))


# ------------------------------------------------------------------ the same answer, the same work
def test_every_state_gets_the_same_answer_after_the_same_work_even_when_ses_refuses(
    stack: EmbeddedBackend, faults: AwsFaults,
) -> None:
    # Given addresses in every state an address can be in
    new, waiting, member, leaver, gone, capped = (f"{s}@example.org" for s in
                                                  ("new", "waiting", "member", "leaver", "gone", "capped"))
    subscribe(stack, waiting)
    subscribe_and_confirm(stack, member)
    subscribe_and_confirm(stack, leaver)
    unsubscribe(stack, leaver)
    subscribe_and_confirm(stack, gone)
    stack.invoke("bounces", ses_event("ses_bounce", gone, SLUG))
    for _ in range(3):
        subscribe(stack, capped)
    assert [status_of(a) for a in (waiting, member, leaver, gone, capped)] == [
        "pending", "confirmed", "unsubscribed", "bounced", "pending"]
    # and SES refusing every mail now (the sandbox: the recipient is not verified)
    refusal = faults.add("sesv2.SendEmail", refused("MessageRejected", SANDBOX.format("them")), times=None)

    # When each asks to subscribe
    answers, work = {}, {}
    for address in (new, waiting, member, leaver, gone, capped):
        before = Counter(faults.requests)
        answers[address] = comparable(api_subscribe(stack, address))
        work[address] = Counter(faults.requests) - before

    # Then the answers are identical, and so is the work behind them: one topic read and one
    # queued message, nothing about the address, no mail (so the time taken cannot tell)
    assert len(set(answers.values())) == 1, answers
    assert answers[new][0] == 202
    assert all(w == work[new] for w in work.values()), work
    assert work[new] == Counter({"dynamodb.GetItem": 1, "sqs.SendMessageBatch": 1})
    assert refusal.fired == 0

    # And the mailing, after the answer, meets the refusal: the requests stay queued
    stack.send_confirmations()
    assert refusal.fired >= 1
    assert [status_of(a) for a in (new, waiting, member, leaver, gone)] == [
        "pending", "pending", "confirmed", "pending", "bounced"]


def test_a_request_ses_refuses_is_retried_and_mailed_once_when_sending_works_again(
    stack: EmbeddedBackend, faults: AwsFaults,
) -> None:
    address = "later@example.org"
    faults.add("sesv2.SendEmail", refused("MessageRejected", SANDBOX.format(address)), times=None)
    assert api_subscribe(stack, address)["statusCode"] == 202
    queue = stack.env["CONFIRMATION_QUEUE_URL"]
    for _ in range(3):  # redelivered while SES still refuses: the cap counts it once
        event = stack.receive_sqs_event(queue)
        assert event is not None
        response = invoke_as_event_source("confirmations", event)
        assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [event["Records"][0]["messageId"]]
        _visible_again(queue, event)
    faults.clear()
    assert stack.send_confirmations()[0] == {"batchItemFailures": []}
    assert len(mails_to(address, "confirm")) == 1
    # two more requests still get their mails: the three refused deliveries counted as one
    subscribe(stack, address)
    subscribe(stack, address)
    assert len(mails_to(address, "confirm")) == 3


def _visible_again(queue_url: str, event: dict[str, Any]) -> None:
    """The visibility timeout passing: SQS hands the messages out again."""
    sqs = boto3.client("sqs", region_name=REGION)
    for record in event["Records"]:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0)


# ------------------------------------------------------------------ no request grows a record
def test_repeated_requests_cannot_grow_the_record_or_stop_its_confirmation(stack: EmbeddedBackend) -> None:
    victim = "victim@example.org"
    # Given a stranger asks for the victim's subscription over and over
    for _ in range(10):
        assert subscribe(stack, victim)["statusCode"] == 202
    size_after_10 = len(json.dumps(stored_item(victim)))
    for _ in range(140):
        assert api_subscribe(stack, victim)["statusCode"] == 202
    stack.send_confirmations()
    # Then the record has not grown: asking again changes no status, so nothing is appended
    sub = runtime.store().get_subscriber(address_hash(victim), SLUG)
    assert [h.status for h in sub.history] == ["pending"]
    assert len(json.dumps(stored_item(victim))) <= size_after_10 + 20  # timestamps may differ in width
    # and the victim's inbox got three confirmation mails, each of which still works
    mails = mails_to(victim, "confirm")
    assert len(mails) == 3
    assert confirm(stack, token_in(mails[0])) == 200
    assert status_of(victim) == "confirmed"
    # and more requests leave the confirmed subscription alone
    assert subscribe(stack, victim)["statusCode"] == 202
    assert status_of(victim) == "confirmed"


def test_history_keeps_the_latest_changes_only(stack: EmbeddedBackend, clock: Clock) -> None:
    # Subscribing, confirming and unsubscribing, day after day: each step is a real change
    address = "cycler@example.org"
    for _ in range(8):
        subscribe_and_confirm(stack, address)
        unsubscribe(stack, address)
        clock.at += timedelta(hours=25)
    sub = runtime.store().get_subscriber(address_hash(address), SLUG)
    assert len(sub.history) == MAX_HISTORY
    assert sub.history[-1].status == "unsubscribed" and sub.history[-1].at == clock.at - timedelta(hours=25)


# ------------------------------------------------------------------ the confirmation cap
def test_the_cap_is_a_rolling_24_hours_not_a_calendar_day(stack: EmbeddedBackend, clock: Clock) -> None:
    address = "night@example.org"
    clock.at = datetime(2026, 11, 26, 23, 59, 30, tzinfo=UTC)
    for _ in range(3):
        subscribe(stack, address)
    # a minute later it is another UTC day, but the same 24 hours
    clock.at += timedelta(minutes=1)
    for topic in (SLUG, OTHER, SLUG):
        assert subscribe(stack, address, topic)["statusCode"] == 202
    assert len(mails_to(address, "confirm")) == 3
    # 24 hours after the first three, the window has room again
    clock.at = datetime(2026, 11, 27, 23, 59, 31, tzinfo=UTC)
    subscribe(stack, address, OTHER)
    assert len(mails_to(address, "confirm")) == 4


def test_when_a_stranger_used_up_the_cap_the_owner_still_holds_working_links(
    stack: EmbeddedBackend, clock: Clock,
) -> None:
    owner = "owner@example.org"
    # Given a stranger asked three times for the owner's address
    for _ in range(3):
        subscribe(stack, owner, SLUG)
    # When the owner asks for another topic within the 24 hours, no mail can come
    assert subscribe(stack, owner, OTHER)["statusCode"] == 202
    mails = mails_to(owner, "confirm")
    assert len(mails) == 3
    # Then the stranger's three mails are in the owner's inbox and each link works
    assert confirm(stack, token_in(mails[1])) == 200 and status_of(owner, SLUG) == "confirmed"
    # And 24 hours after the stranger's first request, the owner's own request is mailed
    clock.at += timedelta(hours=24, seconds=1)
    subscribe(stack, owner, OTHER)
    later = mails_to(owner, "confirm")
    assert len(later) == 4 and confirm(stack, token_in(later[-1])) == 200
    assert status_of(owner, OTHER) == "confirmed"


# ------------------------------------------------------------------ stopped addresses
@pytest.mark.parametrize("event_name, stopped", [("ses_bounce", "bounced"), ("ses_complaint", "complained")])
def test_a_stopped_address_gets_no_confirmation_from_anyones_request(
    stack: EmbeddedBackend, event_name: str, stopped: str,
) -> None:
    address, fresh = "stopped@example.org", "fresh@example.org"
    subscribe_and_confirm(stack, address)
    assert stack.invoke("bounces", ses_event(event_name, address, SLUG))["topics_changed"] == [SLUG]
    mails_before = len(mails_to(address))
    # When a third party subscribes the address, to its old topic and to a new one
    answers = {comparable(subscribe(stack, address, topic)) for topic in (SLUG, OTHER)}
    # Then the answer is the one anybody gets, and the address gets no mail
    assert answers == {comparable(subscribe(stack, fresh))}
    assert len(mails_to(address)) == mails_before
    assert status_of(address, SLUG) == stopped and status_of(address, OTHER) == "none"


def test_a_complaint_stops_every_topic_of_the_address(stack: EmbeddedBackend) -> None:
    address = "annoyed@example.org"
    subscribe_and_confirm(stack, address, SLUG)
    subscribe_and_confirm(stack, address, OTHER)
    # When the reader marks the digest of one topic as spam
    changed = stack.invoke("bounces", ses_event("ses_complaint", address, SLUG))["topics_changed"]
    # Then no topic mails the address again
    assert sorted(changed) == sorted([SLUG, OTHER])
    assert status_of(address, SLUG) == status_of(address, OTHER) == "complained"
    sub = runtime.store().get_subscriber(address_hash(address), OTHER)
    assert sub.history[-1].detail == f"complaint about {SLUG}: abuse"
    run_digest(stack)
    assert mails_to(address, "digest") == []


# ------------------------------------------------------------------ local mode
def _local(tmp_path: Path) -> LocalRuntime:
    local = LocalRuntime(LocalSettings(EARSHOT_DB=tmp_path / "earshot.db", EARSHOT_OUTBOX=tmp_path / "outbox"))
    now = datetime.now(UTC)
    local.store.create_topic(Topic(slug=SLUG, name="MLPs", query="MLP", created_at=now, updated_at=now))
    return local


def _local_subscribe(local: LocalRuntime, address: str) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("api_subscribe"))
    event["body"] = json.dumps({"email": address, "topic": SLUG})
    return dict(local.invoke("api", event))


def test_local_mode_answers_first_and_mails_after(tmp_path: Path) -> None:
    with _local(tmp_path) as local:
        assert _local_subscribe(local, "me@example.org")["statusCode"] == 202
        assert local.mailer.messages() == [] and local.confirmation_queue.depth() == 1
        assert local.send_confirmations() == [{"batchItemFailures": []}]
        (path, message), = local.mailer.messages()
        assert message["To"] == "me@example.org" and "confirmation" in path.name
        token = token_in(read_eml(path))
        event = copy.deepcopy(sample_event("api_confirm_post"))
        event["body"] = f"token={token}"
        assert local.invoke("api", event)["statusCode"] == 200


def test_serve_mails_queued_confirmations_in_the_background(tmp_path: Path) -> None:
    with _local(tmp_path) as local:
        stop = threading.Event()
        worker = threading.Thread(target=confirmation_worker, args=(local, stop), kwargs={"poll_s": 0.05})
        worker.start()
        try:
            assert _local_subscribe(local, "bg@example.org")["statusCode"] == 202
            _wait_for(lambda: len(local.mailer.messages()) == 1)
        finally:
            stop.set()
            worker.join(timeout=5)
        assert local.confirmation_queue.depth() == 0


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = threading.Event()
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        deadline.wait(0.05)
    pytest.fail("condition not met in time")
