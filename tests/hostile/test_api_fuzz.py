"""The public API under abuse, through the real ``api`` handler (HTTP API v2 events):

- random methods, paths, query strings, headers and bodies never get a 5xx;
- tampered, replayed, cross-purpose and expired tokens get 400 and change nothing;
- a subscribe request answers identically whatever the address's state;
- feed text (HTML, script, CR/LF, header-looking lines) never reaches a mail header and
  never becomes markup in the digest, the confirmation mail or the topic page.

Hypothesis example counts are kept small (each example is a handler call under moto).
"""

from __future__ import annotations

import base64
import copy
import email
import email.policy
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlencode

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from earshot import runtime
from earshot.mail import mime
from earshot.mail.digest import previous_week, render_digest, week_window
from earshot.mail.subscriptions import address_hash
from earshot.models import ConsentEvent, MatchedEpisode, Subscriber, Topic
from earshot.topics.service import topic_report
from tests.support.aws_stack import REGION, EmbeddedBackend, sample_event

SLUG = "pipelines"
TOKEN_RE = re.compile(r"token=([A-Za-z0-9_-]{43})")
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NASTY = [
    "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "\r\nBcc: victim@example.com",
    "\nSubject: injected", "javascript:alert(1)", "{{ 7*7 }}{% raw %}", "]]></title><script>x</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;", "\u2028Bcc: x@example.com", "\x00\x1b[31m", "=?utf-8?q?=0D=0ABcc:x?=",
    "<svg/onload=alert(1)>", "<a href='javascript:alert(1)'>x</a>", "' OR '1'='1", "%0d%0aBcc:%20x@example.com",
]
nasty_text = st.one_of(st.sampled_from(NASTY), st.text(max_size=80),
                       st.lists(st.sampled_from(NASTY), min_size=1, max_size=4).map("".join))


# ------------------------------------------------------------------ the stack


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedBackend]:
    with EmbeddedBackend() as backend:
        repo = runtime.store()
        now = datetime.now(UTC)
        repo.create_topic(Topic(slug=SLUG, name="Pipelines", query="pipelines", created_at=now, updated_at=now))
        yield backend


def api_event(method: str, path: str, *, query: dict[str, str] | None = None, body: str | None = None,
              headers: dict[str, str] | None = None, is_base64: bool = False) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("api_subscribe"))
    event["routeKey"] = "$default"
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    event["rawQueryString"] = urlencode(query or {})
    if query:
        event["queryStringParameters"] = query
    event["headers"] = {"host": event["headers"]["host"], **(headers or {})}
    event["body"] = body
    event["isBase64Encoded"] = is_base64
    return event


def call(stack: EmbeddedBackend, event: dict[str, Any]) -> dict[str, Any]:
    """The handler's response; an exception escaping it is what API Gateway turns into a 500."""
    try:
        return stack.invoke("api", event)
    except Exception as exc:  # noqa: BLE001 - exactly what the test looks for
        return {"statusCode": 500, "body": f"unhandled {type(exc).__name__}: {exc}"}


def subscribe(stack: EmbeddedBackend, address: str, topic: str = SLUG) -> dict[str, Any]:
    """The API's answer; then the queued request goes to the confirmation mailer."""
    response = call(stack, api_event("POST", "/subscriptions", body=json.dumps({"email": address, "topic": topic}),
                                     headers={"content-type": "application/json"}))
    stack.send_confirmations()
    return response


def form_post(path: str, token: str, **extra: str) -> dict[str, Any]:
    return api_event("POST", path, body=urlencode({"token": token, **extra}),
                     headers={"content-type": "application/x-www-form-urlencoded"})


def sent_messages() -> list[email.message.EmailMessage]:
    return [email.message_from_string(m.raw_data, policy=email.policy.default)  # type: ignore[misc]
            for m in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages]


def latest_token(address: str) -> str:
    mails = [m for m in sent_messages() if m["To"] == address]
    assert mails, f"no mail to {address}"
    match = TOKEN_RE.search(mails[-1].get_body(("plain",)).get_content())
    assert match
    return match[1]


def table_snapshot() -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    items: list[dict[str, Any]] = []
    for page in ddb.get_paginator("scan").paginate(TableName=runtime.settings().table_name):
        items.extend(page["Items"])
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def status_of(address: str) -> str:
    sub = runtime.store().get_subscriber(address_hash(address), SLUG)
    return sub.status if sub else "none"


def pending(stack: EmbeddedBackend, address: str) -> str:
    """Subscribe ``address``; return the confirmation token from the mail."""
    assert subscribe(stack, address)["statusCode"] == 202
    return latest_token(address)


def confirmed(stack: EmbeddedBackend, address: str) -> None:
    assert call(stack, form_post("/confirm", pending(stack, address)))["statusCode"] == 200
    assert status_of(address) == "confirmed"


# ------------------------------------------------------------------ no 5xx


paths = st.one_of(
    st.sampled_from(["/subscriptions", "/confirm", "/unsubscribe", f"/topics/{SLUG}", f"/topics/{SLUG}/feed.xml",
                     "/topics/", "/topics/..%2F..%2Fetc%2Fpasswd", "/", "//subscriptions", "/subscriptions/"]),
    st.text(min_size=1, max_size=40).map(lambda s: "/" + quote(s, safe="/")),
    st.text(max_size=70).map(lambda s: f"/topics/{quote(s, safe='')}"),
)
content_types = st.sampled_from([
    "application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x",
    "application/json; charset=utf-16", "application/x-www-form-urlencoded; charset=latin-1", "", "\x00",
])
emails = st.one_of(st.emails(), nasty_text, st.sampled_from(["a@b", "@", "a" * 400 + "@example.com",
                                                              "x@[127.0.0.1]", "victim@example.com\r\nBcc: x@y.z"]))
json_bodies = st.one_of(
    st.fixed_dictionaries({"email": emails, "topic": st.one_of(st.just(SLUG), nasty_text)}).map(json.dumps),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                 max_leaves=8).map(json.dumps),
)
form_bodies = st.dictionaries(st.sampled_from(["email", "topic", "token", "List-Unsubscribe", "x"]),
                              st.one_of(nasty_text, emails), max_size=4).map(urlencode)
bodies = st.one_of(st.none(), st.text(max_size=200), json_bodies, form_bodies)


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]), path=paths,
       query=st.dictionaries(st.sampled_from(["token", "email", "topic", "List-Unsubscribe", "q"]), nasty_text,
                             max_size=3),
       content_type=content_types, body=bodies,
       extra_headers=st.dictionaries(st.sampled_from(["cookie", "x-forwarded-for", "accept", "user-agent",
                                                      "origin", "referer"]), nasty_text, max_size=3))
def test_random_requests_never_get_a_5xx(stack: EmbeddedBackend, method: str, path: str, query: dict[str, str],
                                         content_type: str, body: str | None, extra_headers: dict[str, str]) -> None:
    event = api_event(method, path, query=query, body=body, headers={"content-type": content_type, **extra_headers})
    response = call(stack, event)
    assert response["statusCode"] < 500, (event, response)




@FUZZ
@example(path="/confirm", raw=b"\x80token=x", content_type="application/x-www-form-urlencoded")
@given(path=st.sampled_from(["/subscriptions", "/confirm", "/unsubscribe"]), raw=st.binary(max_size=200),
       content_type=content_types)
def test_binary_base64_bodies_never_get_a_5xx(stack: EmbeddedBackend, path: str, raw: bytes, content_type: str) -> None:
    # HTTP APIs base64-encode bodies they consider binary; the bytes may be any bytes
    event = api_event("POST", path, body=base64.b64encode(raw).decode(), is_base64=True,
                      headers={"content-type": content_type})
    response = call(stack, event)
    assert response["statusCode"] < 500, (event, response)


@pytest.mark.parametrize("path", ["/confirm", "/unsubscribe"])
def test_a_non_utf8_form_body_is_a_400_not_a_crash(stack: EmbeddedBackend, path: str) -> None:
    event = api_event("POST", path, body=base64.b64encode(b"token=\xff\xfe").decode(), is_base64=True,
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert call(stack, event)["statusCode"] == 400


# ------------------------------------------------------------------ tokens


def tamper(token: str, how: str) -> str:
    flip = "A" if token[5] != "A" else "B"
    return {
        "flip-one-char": token[:5] + flip + token[6:],
        "truncate": token[:-1],
        "extend": token + "A",
        "upper": token.upper(),
        "padded": f" {token} ",
        "url-encoded": quote(token + "=", safe=""),
        "doubled": token + token,
        "hash-of-token": hashlib.sha256(token.encode()).hexdigest()[:43],
    }[how]


TAMPERINGS = ["flip-one-char", "truncate", "extend", "upper", "padded", "url-encoded", "doubled", "hash-of-token"]


@pytest.mark.parametrize("how", TAMPERINGS)
@pytest.mark.parametrize("path", ["/confirm", "/unsubscribe"])
def test_tampered_tokens_are_refused_and_change_nothing(stack: EmbeddedBackend, how: str, path: str) -> None:
    token = pending(stack, f"tamper-{how}-{path.strip('/')}@example.com")
    before = table_snapshot()
    for event in (form_post(path, tamper(token, how)), api_event("GET", path, query={"token": tamper(token, how)}),
                  form_post(path, tamper(token, how), **{"List-Unsubscribe": "One-Click"})):
        response = call(stack, event)
        assert response["statusCode"] == 400, response
    assert table_snapshot() == before


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token=st.one_of(st.text(max_size=60), st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                              "0123456789-_", min_size=43, max_size=43)),
       path=st.sampled_from(["/confirm", "/unsubscribe"]), method=st.sampled_from(["GET", "POST"]))
def test_random_tokens_change_nothing(stack: EmbeddedBackend, token: str, path: str, method: str) -> None:
    before = table_snapshot()
    event = form_post(path, token) if method == "POST" else api_event("GET", path, query={"token": token})
    assert call(stack, event)["statusCode"] == 400
    assert table_snapshot() == before


def test_replayed_tokens_change_nothing(stack: EmbeddedBackend) -> None:
    address = "replay@example.com"
    token = pending(stack, address)
    assert call(stack, form_post("/confirm", token))["statusCode"] == 200
    snapshot = table_snapshot()
    # the confirmation link is single use
    assert call(stack, form_post("/confirm", token))["statusCode"] == 400
    assert call(stack, api_event("GET", "/confirm", query={"token": token}))["statusCode"] == 400
    assert table_snapshot() == snapshot and status_of(address) == "confirmed"
    # a confirmation token is not an unsubscribe token
    assert call(stack, form_post("/unsubscribe", token))["statusCode"] == 400
    assert status_of(address) == "confirmed"


def test_expired_tokens_change_nothing(stack: EmbeddedBackend) -> None:
    address = "late@example.com"
    token = pending(stack, address)
    before = table_snapshot()
    later = datetime.now(UTC) + timedelta(hours=48, seconds=1)
    runtime.use(clock=lambda: later)  # the handlers' clock, 48 h and a second on
    try:
        assert call(stack, form_post("/confirm", token))["statusCode"] == 400
        assert call(stack, api_event("GET", "/confirm", query={"token": token}))["statusCode"] == 400
    finally:
        runtime.use()
    assert table_snapshot() == before and status_of(address) == "pending"


# ------------------------------------------------------------------ no enumeration


def _comparable(response: dict[str, Any]) -> tuple[Any, ...]:
    return response["statusCode"], response.get("body"), json.dumps(response.get("headers"), sort_keys=True), \
        json.dumps(response.get("multiValueHeaders"), sort_keys=True), response.get("isBase64Encoded")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(local=st.from_regex(r"[a-z][a-z0-9]{2,12}", fullmatch=True))
def test_subscribe_answers_the_same_whatever_the_address_state(stack: EmbeddedBackend, local: str) -> None:
    fresh, waiting, member, leaver = (f"{local}.{state}@example.org" for state in ("new", "pending", "in", "out"))
    pending(stack, waiting)
    confirmed(stack, member)
    confirmed(stack, leaver)
    unsubscribe_token = next(t for t in _unsubscribe_tokens(stack, leaver))
    assert call(stack, form_post("/unsubscribe", unsubscribe_token))["statusCode"] == 200
    answers = {address: _comparable(subscribe(stack, address)) for address in (fresh, waiting, member, leaver)}
    assert len(set(answers.values())) == 1, answers
    # and past the per-address cap of confirmation mails (3 in 24 h) the answer is still the same
    for _ in range(4):
        assert _comparable(subscribe(stack, waiting)) == answers[fresh]


def _unsubscribe_tokens(stack: EmbeddedBackend, address: str) -> Iterator[str]:
    """An unsubscribe token for ``address``, issued the way the digest sender issues them."""
    from earshot.mail import tokens

    token, record = tokens.issue_token("unsubscribe", topic=SLUG, address_hash=address_hash(address),
                                       now=datetime.now(UTC))
    runtime.store().put_token(record)
    yield token


# ------------------------------------------------------------------ feed text in mail and HTML


class _Markup(HTMLParser):
    """Collects what would run or navigate in an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.active: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed", "base", "frame", "applet"):
            self.active.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.active.append(f"{tag}[{name}]")
            if name in ("href", "src", "action", "formaction") and value and \
                    re.match(r"\s*(javascript|data|vbscript):", value, re.IGNORECASE):
                self.active.append(f"{tag}[{name}={value[:30]}]")


def active_markup(document: str) -> list[str]:
    parser = _Markup()
    parser.feed(document)
    parser.close()
    return parser.active


EXPECTED_DIGEST_HEADERS = {"to", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post", "from",
                           "subject", "list-id", "mime-version", "content-type"}


def assert_headers_clean(raw: bytes, expected_to: str) -> None:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert "\n" not in head.replace("\r\n", ""), "a bare LF in the header block"
    assert "\r" not in head.replace("\r\n", ""), "a bare CR in the header block"
    names = [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line and not line[0].isspace()]
    assert len(names) == len(set(names)), names
    assert set(names) <= EXPECTED_DIGEST_HEADERS, set(names) - EXPECTED_DIGEST_HEADERS
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_all("To") == [expected_to] and message["Bcc"] is None and message["Cc"] is None
    for name, value in message.items():
        assert "\r" not in str(value) and "\n" not in str(value), (name, value)


def render_and_assemble(topic_name: str, match: MatchedEpisode) -> bytes:
    """Render a week's digest with ``match`` and assemble one recipient's message, exactly
    as plan_week (render_digest) and send_batch (prepare, personalize, assemble) do."""
    repo = runtime.store()
    now = datetime.now(UTC)
    week = previous_week(now)
    start, end = week_window(week)
    slug = "fuzz-digest"
    topic = Topic(slug=slug, name=topic_name, query="x", created_at=now, updated_at=now)
    repo.create_topic(topic) or repo.save_topic(topic)
    repo.replace_topic_matches(slug, [match.model_copy(update={"published": start + timedelta(days=1)})])
    report = topic_report(repo, slug, now=min(now, end), window=(start, end), latest_limit=None)
    digest = render_digest(topic, report, week=week, base_url="https://earshot.example", domain="earshot.example")
    skeleton = mime.prepare(sender="Earshot <digest@earshot.example>", subject=digest.subject,
                            list_id_value=digest.list_id)
    url = "https://earshot.example/unsubscribe?token=" + "t" * 43
    text, html = digest.personalize(url)
    return mime.assemble(skeleton, to="reader@example.com", now=now, text=text, html=html,
                         unsubscribe=mime.Unsubscribe(url=url, mailto="unsubscribe@earshot.example", token="t" * 43))


unsafe_links = st.sampled_from(["https://cdn.example/a.mp3", "javascript:alert(1)", "data:text/html,<script>x</script>",
                                " JaVaScRiPt:alert(1)", "https://cdn.example/a.mp3\" onclick=\"alert(1)"])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=nasty_text, podcast=nasty_text, summary=nasty_text, link=unsafe_links)
def test_feed_text_never_reaches_mail_headers_or_runs_in_the_digest(
    stack: EmbeddedBackend, title: str, podcast: str, summary: str, link: str
) -> None:
    # Given a week's match whose every text field came from a hostile feed
    match = MatchedEpisode(feed_id="f-evil", episode_id="e-evil", podcast=podcast, title=title, summary=summary,
                           audio_url=link, link=link, image=link, reason=f"{title} in title")
    # When the digest is rendered and assembled as the digest functions do
    raw = render_and_assemble("Pipelines", match)
    # Then no header was added or broken, and nothing in the HTML part can run
    assert_headers_clean(raw, "reader@example.com")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert active_markup(message.get_body(("html",)).get_content()) == []




@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(topic_name="Économie & marchés")
@example(topic_name="=?utf-8?q?=0D=0ABcc:x?=")
@given(topic_name=nasty_text.filter(lambda s: s.strip()))
def test_any_topic_name_yields_a_clean_digest(stack: EmbeddedBackend, topic_name: str) -> None:
    match = MatchedEpisode(feed_id="f-1", episode_id="e-1", podcast="Pod", title="Pipelines", reason="title")
    raw = render_and_assemble(topic_name, match)
    assert_headers_clean(raw, "reader@example.com")


@pytest.mark.parametrize("name", ["Économie & marchés", "=?utf-8?q?=0D=0ABcc:victim@example.com?="])
def test_a_topic_name_never_stops_its_digest(stack: EmbeddedBackend, name: str) -> None:
    # Given a confirmed subscriber to a topic with that name and news last week
    repo = runtime.store()
    now = datetime.now(UTC)
    slug = "named-" + str(abs(hash(name)) % 10_000)
    repo.create_topic(Topic(slug=slug, name=name, query="x", created_at=now, updated_at=now))
    start, _ = week_window(previous_week(now))
    repo.replace_topic_matches(slug, [MatchedEpisode(feed_id="f-1", episode_id="e-1", podcast="Pod", title="News",
                                           published=start + timedelta(days=1), reason="title")])
    address = f"{slug}@example.com"
    consent = ConsentEvent(at=now, source="api")
    repo.save_subscriber(Subscriber(topic=slug, email=address, address_hash=address_hash(address),
                                    status="confirmed", created_at=now, requested=consent, confirmed=consent))
    # When the weekly digest runs through its real handlers
    stack.invoke("digest", sample_event("digest_scheduled"))
    responses = stack.drain_queue("digest_sender", stack.env["DIGEST_QUEUE_URL"])
    # Then the batch is not failed and the subscriber got the digest
    assert all(r["batchItemFailures"] == [] for r in responses)
    assert any(m["To"] == address and m["List-Unsubscribe"] for m in sent_messages())


def test_hostile_topic_name_cannot_inject_confirmation_mail_headers(stack: EmbeddedBackend) -> None:
    repo = runtime.store()
    now = datetime.now(UTC)
    slug = "evil-name"
    repo.create_topic(Topic(slug=slug, name="Pipes\r\nBcc: victim@example.com\r\n\r\n<script>x</script>",
                            query="pipes", created_at=now, updated_at=now))
    assert subscribe(stack, "named@example.com", topic=slug)["statusCode"] == 202
    (raw,) = [m.raw_data for m in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
              if "named@example.com" in m.raw_data]
    head = raw.split("\r\n\r\n", 1)[0]
    assert "\nBcc:" not in head and "victim@example.com" not in raw.split("\r\n\r\n", 1)[0].replace(
        "Pipes Bcc: victim@example.com", "")
    message = email.message_from_string(raw, policy=email.policy.default)
    assert message["Bcc"] is None and "\n" not in str(message["Subject"])
    assert active_markup(message.get_body(("html",)).get_content()) == []


def test_feed_text_cannot_run_in_the_topic_page(stack: EmbeddedBackend) -> None:
    repo = runtime.store()
    now = datetime.now(UTC)
    repo.replace_topic_matches(SLUG, [MatchedEpisode(
        feed_id="f-evil", episode_id=f"e-{n}", podcast=nasty, title=nasty, summary=nasty, reason=nasty,
        audio_url="javascript:alert(1)", link="javascript:alert(1)", image="javascript:alert(1)",
        published=now - timedelta(days=n + 1)) for n, nasty in enumerate(NASTY)])
    response = call(stack, api_event("GET", f"/topics/{SLUG}"))
    assert response["statusCode"] == 200
    assert active_markup(response["body"]) == []
    feed = call(stack, api_event("GET", f"/topics/{SLUG}/feed.xml"))
    assert feed["statusCode"] == 200 and "<script>" not in feed["body"]
