"""Subscriptions and the weekly digest, end to end through the real handlers under moto.

Every request goes through ``functions/api`` with an HTTP API v2 event (the shapes in
``events/``), every confirmation mail through ``functions/confirmations`` (the API queues
the request; the queue is drained like the SQS event source), every digest through
``functions/digest`` and ``functions/digest_sender``, and what SES "sent" is read back
from moto's SES backend as raw RFC 5322 messages.
"""

from __future__ import annotations

import copy
import email
import email.policy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from earshot import runtime
from earshot.mail.digest import iso_week, previous_week, week_window
from earshot.mail.subscriptions import address_hash
from earshot.mail.tokens import hash_token
from earshot.models import MatchedEpisode, Topic
from tests.support.aws_stack import EmbeddedBackend, sample_event

SLUG = "mlp-finance"
EVIL_TITLE = 'MLPs <script>alert("x")</script> & "pipes"\r\nBcc: evil@attacker.example'
TOKEN_RE = re.compile(r"token=([A-Za-z0-9_-]{43})")


# ------------------------------------------------------------------ helpers
@pytest.fixture
def stack(backend: EmbeddedBackend) -> Iterator[EmbeddedBackend]:
    """The embedded backend with a topic that has news last week and this week."""
    runtime.reset()
    repo = runtime.store()
    now = datetime.now(UTC)
    repo.create_topic(Topic(slug=SLUG, name="MLPs & midstream", query="MLP", created_at=now, updated_at=now))
    last_start, _ = week_window(previous_week(now))
    this_start, _ = week_window(iso_week(now))
    repo.replace_topic_matches(SLUG, [
        _match("e-last", EVIL_TITLE, last_start + timedelta(days=2), audio="javascript:alert(1)"),
        _match("e-this", "MLPs this week", this_start + (now - this_start) / 2),
        _match("e-old", "MLPs in 2019", datetime(2019, 5, 1, tzinfo=UTC)),
    ])
    yield backend


def _match(episode_id: str, title: str, published: datetime, *, audio: str = "https://cdn.example/a.mp3") -> MatchedEpisode:
    return MatchedEpisode(feed_id="f-pipes", episode_id=episode_id, podcast="Pipeline <b>Pod</b>", title=title,
                          published=published, duration_seconds=1830, summary="Midstream <i>news</i>\r\nline two",
                          has_transcript=True, audio_url=audio, reason="MLPs in title")


def http(name: str, *, token: str | None = None, body: str | None = None, query: dict[str, str] | None = None,
         headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A sample API event from events/ with the token (query string, and form body for
    POSTs that carry one) filled in."""
    event = copy.deepcopy(sample_event(name))
    placeholder = "REPLACE_WITH_TOKEN_FROM_THE_MAIL_xxxxxxxxxx"
    if token is not None:
        if "queryStringParameters" in event:
            event["queryStringParameters"] = {"token": token}
            event["rawQueryString"] = f"token={token}"
        if event.get("body"):
            event["body"] = event["body"].replace(placeholder, token)
    if query is not None:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    if body is not None:
        event["body"] = body
    event["headers"].update(headers or {})
    return event


def subscribe_request(email_address: str, topic: str = SLUG) -> dict[str, Any]:
    return http("api_subscribe", body=json.dumps({"email": email_address, "topic": topic}))


def subscribe(stack: EmbeddedBackend, address: str, topic: str = SLUG) -> dict[str, Any]:
    """POST /subscriptions, then the confirmation mailer's turn (right after the answer)."""
    response = stack.invoke("api", subscribe_request(address, topic))
    stack.send_confirmations()
    return response


def sent() -> list[EmailMessage]:
    """Every message moto's SES accepted, parsed."""
    return [email.message_from_string(m.raw_data, policy=email.policy.default)  # type: ignore[misc]
            for m in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages]


def mails_to(address: str, kind: str = "") -> list[EmailMessage]:
    out = [m for m in sent() if m["To"] == address]
    if kind == "digest":
        return [m for m in out if m["List-Unsubscribe"]]
    if kind == "confirm":
        return [m for m in out if not m["List-Unsubscribe"]]
    return out


def token_in(message: EmailMessage) -> str:
    match = TOKEN_RE.search(message.get_body(("plain",)).get_content())
    assert match, "no token link in the mail"
    return match[1]


def status_of(address: str) -> str:
    sub = runtime.store().get_subscriber(address_hash(address), SLUG)
    return sub.status if sub else "none"


def subscribe_and_confirm(stack: EmbeddedBackend, address: str) -> None:
    assert subscribe(stack, address)["statusCode"] == 202
    token = token_in(mails_to(address, "confirm")[-1])
    assert stack.invoke("api", http("api_confirm_post", token=token))["statusCode"] == 200
    assert status_of(address) == "confirmed"


def run_digest(stack: EmbeddedBackend, week: str | None = None) -> dict[str, Any]:
    event = dict(sample_event("digest_scheduled"), **({"week": week} if week else {}))
    planned = stack.invoke("digest", event)
    responses = stack.drain_queue("digest_sender", stack.env["DIGEST_QUEUE_URL"])
    assert all(not r["batchItemFailures"] for r in responses)
    return planned


# ------------------------------------------------------------------ the flow
def test_subscribe_confirm_digest_one_click_unsubscribe_then_skipped(stack: EmbeddedBackend) -> None:
    alice, bob = "alice@example.com", "bob@example.com"

    # Given Alice subscribes through the API
    response = subscribe(stack, alice)
    assert response["statusCode"] == 202
    assert status_of(alice) == "pending"
    confirmation = mails_to(alice, "confirm")
    assert len(confirmation) == 1 and "MLPs & midstream" in confirmation[0]["Subject"]

    # When she opens the link (GET), a page with a POST button shows and nothing changes
    token = token_in(confirmation[0])
    page = stack.invoke("api", http("api_confirm_get", token=token))
    assert page["statusCode"] == 200 and 'method="post"' in page["body"] and token in page["body"]
    assert page["headers"]["Referrer-Policy"] == "no-referrer"
    assert status_of(alice) == "pending"

    # And presses the button (POST): confirmed, with the consent recorded
    assert stack.invoke("api", http("api_confirm_post", token=token))["statusCode"] == 200
    sub = runtime.store().get_subscriber(address_hash(alice), SLUG)
    assert sub.status == "confirmed"
    assert sub.confirmed.ip == "203.0.113.7" and "Firefox" in (sub.confirmed.user_agent or "")
    assert [h.status for h in sub.history] == ["pending", "confirmed"]
    subscribe_and_confirm(stack, bob)

    # When last week's digest runs, each gets one digest
    planned = run_digest(stack)
    assert planned["topics_queued"] == [SLUG] and planned["recipients"] == 2
    digest = mails_to(alice, "digest")
    assert len(digest) == 1 and len(mails_to(bob, "digest")) == 1
    assert digest[0]["Subject"] == "MLPs & midstream: 1 new podcast episode this week"

    # When Alice's mail client does an RFC 8058 one-click POST to the List-Unsubscribe URL
    url = re.search(r"<(https?://[^>]+)>", digest[0]["List-Unsubscribe"])[1]
    unsubscribe_token = url.split("token=")[1]
    one_click = stack.invoke("api", http("api_unsubscribe_post", token=unsubscribe_token))
    assert (one_click["statusCode"], one_click["body"]) == (200, "Unsubscribed.")
    assert status_of(alice) == "unsubscribed"
    # a repeated one-click POST is still a 200
    assert stack.invoke("api", http("api_unsubscribe_post", token=unsubscribe_token))["statusCode"] == 200

    # Then this week's digest goes to Bob only
    run_digest(stack, week=iso_week(datetime.now(UTC)))
    assert len(mails_to(alice, "digest")) == 1
    assert len(mails_to(bob, "digest")) == 2


def test_unsubscribe_page_get_changes_nothing_and_its_button_unsubscribes(stack: EmbeddedBackend) -> None:
    subscribe_and_confirm(stack, "carol@example.com")
    run_digest(stack)
    token = token_in(mails_to("carol@example.com", "digest")[0])
    page = stack.invoke("api", http("api_unsubscribe_get", token=token))
    assert page["statusCode"] == 200 and "Unsubscribe</button>" in page["body"]
    assert status_of("carol@example.com") == "confirmed"
    form_post = http("api_unsubscribe_post", body=f"token={token}", query={})
    response = stack.invoke("api", form_post)
    assert response["statusCode"] == 200 and "unsubscribed" in response["body"]
    assert status_of("carol@example.com") == "unsubscribed"


def test_resubscribe_after_unsubscribing(stack: EmbeddedBackend) -> None:
    subscribe_and_confirm(stack, "dan@example.com")
    run_digest(stack)
    token = token_in(mails_to("dan@example.com", "digest")[0])
    stack.invoke("api", http("api_unsubscribe_post", token=token))
    subscribe_and_confirm(stack, "dan@example.com")
    sub = runtime.store().get_subscriber(address_hash("dan@example.com"), SLUG)
    assert [h.status for h in sub.history] == ["pending", "confirmed", "unsubscribed", "pending", "confirmed"]


# ------------------------------------------------------------------ tokens
@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    lambda t: t + "x",
    lambda t: "' OR 1=1 --",
    lambda t: "",
], ids=["one-char-changed", "extended", "injection", "empty"])
def test_tampered_tokens_are_400_and_change_nothing(stack: EmbeddedBackend, mangle: Any) -> None:
    subscribe(stack, "erin@example.com")
    bad = mangle(token_in(mails_to("erin@example.com")[0]))
    for name in ("api_confirm_get", "api_confirm_post", "api_unsubscribe_get", "api_unsubscribe_post"):
        assert stack.invoke("api", http(name, token=bad))["statusCode"] == 400, name
    assert status_of("erin@example.com") == "pending"


def test_expired_confirmation_token_is_400_and_changes_nothing(stack: EmbeddedBackend) -> None:
    subscribe(stack, "fay@example.com")
    token = token_in(mails_to("fay@example.com")[0])
    repo = runtime.store()
    record = repo.get_token(hash_token(token))
    repo.put_token(record.model_copy(update={"expires_at": datetime.now(UTC) - timedelta(seconds=1)}))
    assert stack.invoke("api", http("api_confirm_get", token=token))["statusCode"] == 400
    assert stack.invoke("api", http("api_confirm_post", token=token))["statusCode"] == 400
    assert status_of("fay@example.com") == "pending"


def test_confirmation_token_is_single_use_and_not_an_unsubscribe_token(stack: EmbeddedBackend) -> None:
    subscribe(stack, "gus@example.com")
    token = token_in(mails_to("gus@example.com")[0])
    assert stack.invoke("api", http("api_unsubscribe_post", token=token))["statusCode"] == 400
    assert stack.invoke("api", http("api_confirm_post", token=token))["statusCode"] == 200
    assert stack.invoke("api", http("api_confirm_post", token=token))["statusCode"] == 400
    assert runtime.store().get_token(hash_token(token)) is None


# ------------------------------------------------------------------ subscribe rules
def test_same_answer_whether_or_not_already_subscribed(stack: EmbeddedBackend) -> None:
    fresh = subscribe(stack, "hal@example.com")
    subscribe_and_confirm(stack, "ivy@example.com")
    again = subscribe(stack, "ivy@example.com")
    assert (fresh["statusCode"], fresh["body"]) == (again["statusCode"], again["body"])
    assert len(mails_to("ivy@example.com", "confirm")) == 1  # no mail to a confirmed subscriber


def test_at_most_three_confirmation_mails_per_address_in_24_hours(stack: EmbeddedBackend) -> None:
    answers = {subscribe(stack, "jo@example.com")["statusCode"] for _ in range(5)}
    assert answers == {202}
    assert len(mails_to("jo@example.com")) == 3


@pytest.mark.parametrize("body, status", [
    (json.dumps({"email": "not-an-address", "topic": SLUG}), 400),
    (json.dumps({"email": "a@b", "topic": SLUG}), 400),
    (json.dumps({"email": "kim@example.com"}), 400),
    ("{not json", 400),
    (json.dumps({"email": "kim@example.com", "topic": "no-such-topic"}), 404),
], ids=["no-at-sign", "no-tld", "missing-topic", "bad-json", "unknown-topic"])
def test_subscribe_rejects_bad_requests(stack: EmbeddedBackend, body: str, status: int) -> None:
    response = stack.invoke("api", http("api_subscribe", body=body))
    assert response["statusCode"] == status
    assert sent() == []


def test_form_post_subscribe_answers_with_a_page(stack: EmbeddedBackend) -> None:
    event = http("api_subscribe", body=f"email=lee%40example.com&topic={SLUG}",
                 headers={"content-type": "application/x-www-form-urlencoded"})
    response = stack.invoke("api", event)
    assert response["statusCode"] == 202 and "Check your inbox" in response["body"]
    assert status_of("lee@example.com") == "none", "nothing about the address happens before the answer"
    stack.send_confirmations()
    assert status_of("lee@example.com") == "pending" and len(mails_to("lee@example.com", "confirm")) == 1


# ------------------------------------------------------------------ idempotency
def test_same_digest_twice_mails_each_subscriber_once(stack: EmbeddedBackend) -> None:
    for address in ("m1@example.com", "m2@example.com"):
        subscribe_and_confirm(stack, address)
    run_digest(stack)
    run_digest(stack)  # the scheduler's retry, or an operator re-running the week
    # and a re-delivered SQS message (same batch handed to the sender again)
    batch = {"topic": SLUG, "week": previous_week(datetime.now(UTC)),
             "recipients": [address_hash("m1@example.com"), address_hash("m2@example.com")]}
    event = sample_event("digest_sender_batch")
    event["Records"][0]["body"] = json.dumps(batch)
    assert stack.invoke("digest_sender", event) == {"batchItemFailures": []}
    assert len(mails_to("m1@example.com", "digest")) == 1
    assert len(mails_to("m2@example.com", "digest")) == 1


def test_topic_without_news_sends_nothing(stack: EmbeddedBackend) -> None:
    subscribe_and_confirm(stack, "quiet@example.com")
    planned = run_digest(stack, week="2020-W10")
    assert planned["topics_without_news"] == [SLUG]
    assert mails_to("quiet@example.com", "digest") == []


# ------------------------------------------------------------------ bounces
@pytest.mark.parametrize("event_name, status", [("ses_bounce", "bounced"), ("ses_complaint", "complained")])
def test_bounce_or_complaint_stops_further_mail(stack: EmbeddedBackend, event_name: str, status: str) -> None:
    address = "listener@example.com"  # the address in the sample events
    subscribe_and_confirm(stack, address)
    result = stack.invoke("bounces", sample_event(event_name))
    assert result["topics_changed"] == [SLUG]
    assert status_of(address) == status
    run_digest(stack)
    assert mails_to(address, "digest") == []


def test_transient_bounce_changes_nothing(stack: EmbeddedBackend) -> None:
    address = "listener@example.com"
    subscribe_and_confirm(stack, address)
    event = sample_event("ses_bounce")
    event["detail"]["bounce"]["bounceType"] = "Transient"
    assert stack.invoke("bounces", event)["topics_changed"] == []
    assert status_of(address) == "confirmed"


# ------------------------------------------------------------------ the message itself
def test_digest_eml_has_both_parts_all_headers_and_escaped_feed_text(stack: EmbeddedBackend) -> None:
    subscribe_and_confirm(stack, "nia@example.com")
    run_digest(stack)
    raw = [m.raw_data for m in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
           if "List-Unsubscribe" in m.raw_data][0]
    message = email.message_from_bytes(raw.encode(), policy=email.policy.default)

    # all headers, and the List-* ones as RFC 2369 / RFC 8058 want them
    for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
                   "List-Unsubscribe-Post", "MIME-Version"):
        assert message[header], header
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<https?://[^>]+/unsubscribe\?token=[\w-]{43}>, <mailto:[^>]+>", message["List-Unsubscribe"])
    assert message["List-Id"] == '"Earshot: MLPs & midstream" <mlp-finance.digest.earshot.example>'

    # both parts
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()

    # feed text: escaped in HTML, never a header, javascript: never a link
    head = raw.split("\r\n\r\n", 1)[0]
    assert "evil@attacker.example" not in head and "Bcc" not in head
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>Pod</b>" not in html
    assert "javascript:" not in html and "javascript:" not in text
    assert "MLPs <script>" in text  # plain text is plain: shown as written, on one line
    assert "\r\nBcc" not in text

    # content: header numbers, year bars as a table, transcript badge, footer links
    assert "Popularity by year" in html and 'width="100%"' in html and "<svg" not in html.lower()
    assert "TRANSCRIPT" in html and "Why it matched: MLPs in title" in html
    unsubscribe_url = re.search(r"<(https?://[^>]+)>", message["List-Unsubscribe"])[1]
    assert f'href="{unsubscribe_url}"' in html and unsubscribe_url in text
    assert "unsubscribe.invalid" not in html + text  # the placeholder was replaced


def test_each_recipient_gets_their_own_unsubscribe_link(stack: EmbeddedBackend) -> None:
    subscribe_and_confirm(stack, "o1@example.com")
    subscribe_and_confirm(stack, "o2@example.com")
    run_digest(stack)
    links = {mails_to(a, "digest")[0]["List-Unsubscribe"] for a in ("o1@example.com", "o2@example.com")}
    assert len(links) == 2
