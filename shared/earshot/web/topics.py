"""HTTP routes: a topic's public page and its podcast feed.

    GET /topics/<slug>           text/html             the topic page (with its Content-Security-Policy)
    GET /topics/<slug>/feed.xml  application/rss+xml   the latest 100 episodes as a podcast

Unknown slugs raise NotFound, which ``earshot.web.api`` maps to 404.

Both carry validators (RFC 9110 §8.8.3): a strong ``ETag``, the SHA-256 of the exact
bytes, and ``Cache-Control``. A request whose ``If-None-Match`` names the current tag gets
``304 Not Modified`` with no body (RFC 9110 §13.1.2, §15.4.5): a podcast app that polls a
topic's feed every hour downloads it only when an episode was added. The body is still
rendered to know its tag; what a 304 saves is the bytes sent, which AWS bills as data
transfer out, and the app's own work. A client that accepts gzip gets the body gzipped
(``Content-Encoding: gzip``, ``Vary: Accept-Encoding``; the HTTP API does not compress),
under its own tag (``"<hash>-gzip"``: a strong tag names one representation), and either
tag of the current content answers 304.
"""


import hashlib
from datetime import UTC, datetime

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from earshot import runtime
from earshot.topics.feed import FEED_LIMIT, render_topic_feed
from earshot.topics.pages import CONTENT_SECURITY_POLICY, render_topic_page
from earshot.topics.service import latest_matches, topic_matches
from earshot.topics.stats import build_report
from earshot.web.links import public_base_url

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated

# Pages are public and change at most hourly (ingest cadence): let caches help.
CACHE_CONTROL = "public, max-age=300"
# Listings the feed reads: FEED_LIMIT episodes, each listed in up to three feeds.
FEED_READ_LIMIT = 3 * FEED_LIMIT


def _base() -> str:
    """Where links point: the configured public base URL, else the request's own domain."""
    return public_base_url(runtime.settings(), router.current_event.request_context.domain_name)


def _urls(slug: str) -> tuple[str, str]:
    base = _base()
    return f"{base}/topics/{slug}", f"{base}/topics/{slug}/feed.xml"


def entity_tag(body: bytes) -> str:
    """A strong entity tag for these exact bytes (RFC 9110 §8.8.3: a quoted string).

    >>> entity_tag(b"hello")
    '"2cf24dba5fb0a30e26e83b2ac5b9e29e"'
    """
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def none_match(if_none_match: str | None, etag: str) -> bool:
    """Does an ``If-None-Match`` field value match ``etag``? RFC 9110 §13.1.2: ``*``
    matches any current representation; otherwise a comma-separated list of entity tags,
    compared weakly (``W/"x"`` matches ``"x"``: a proxy that compressed the body may have
    weakened the tag).

    >>> tag = '"abc"'
    >>> [none_match(v, tag) for v in (None, "", '"abc"', 'W/"abc"', '"x", "abc"', "*", '"abcd"', "abc")]
    [False, False, True, True, True, True, False, False]
    """
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == opaque for candidate in if_none_match.split(","))


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Does an ``Accept-Encoding`` field value name gzip with a q-value above 0 (RFC 9110
    §12.5.3)? A bare ``*`` is not taken as gzip: clients that want it say so.

    >>> [accepts_gzip(v) for v in (None, "", "gzip", "br, gzip;q=0.5", "gzip;q=0", "*", "identity", "x-gzip")]
    [False, False, True, True, False, False, False, True]
    """
    for item in (accept_encoding or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip"):
            continue
        q = params.strip().lower().removeprefix("q=")
        try:
            return float(q) > 0 if params.strip() else True
        except ValueError:
            return True
    return False


def _validated(body: str, content_type: str, headers: dict[str, str]) -> Response[str]:
    """200 with the body and its validators, or 304 when the client holds this version.
    A 304 carries the same ETag, Cache-Control and Vary a 200 would (RFC 9110 §15.4.5)."""
    event_headers = router.current_event.headers
    data = body.encode("utf-8")
    etag = entity_tag(data)
    gzipped = accepts_gzip(event_headers.get("accept-encoding"))
    # Powertools gzips the body as the response is built (after the route's validation);
    # its gzip header carries no time, so the same content gives the same bytes.
    sent_tag = etag[:-1] + '-gzip"' if gzipped else etag
    headers = {**headers, "ETag": sent_tag, "Vary": "Accept-Encoding"}
    if_none_match = event_headers.get("if-none-match")
    if none_match(if_none_match, etag) or none_match(if_none_match, etag[:-1] + '-gzip"'):
        kept = ("ETag", "Cache-Control", "Vary")
        return Response(304, None, "", headers={k: v for k, v in headers.items() if k in kept})
    return Response(200, content_type, body, headers=headers, compress=gzipped)


@router.get("/topics/<slug>")
def topic_page(slug: str) -> Response[str]:
    now = datetime.now(UTC)
    topic, matches = topic_matches(runtime.store(), slug)
    _, feed_url = _urls(slug)
    html = render_topic_page(topic, build_report(matches, now=now), now=now, feed_url=feed_url,
                             subscribe_url=f"{_base()}/subscriptions")
    # The page's policy (earshot.topics.pages): its own script by hash, audio from any http(s) host.
    return _validated(html, "text/html; charset=utf-8",
                      {"Cache-Control": CACHE_CONTROL, "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                       "X-Content-Type-Options": "nosniff"})


@router.get("/topics/<slug>/feed.xml")
def topic_feed(slug: str) -> Response[str]:
    now = datetime.now(UTC)
    # The feed lists the newest FEED_LIMIT episodes, duplicates folded: it reads the newest
    # listings only (a few per episode), not the topic's whole archive, since every podcast
    # app following the topic polls it and DynamoDB bills each poll by what it reads.
    topic, matches = latest_matches(runtime.store(), slug, limit=FEED_READ_LIMIT)
    page_url, feed_url = _urls(slug)
    body = render_topic_feed(topic, matches, now=now, page_url=page_url, feed_url=feed_url)
    return _validated(body.decode("utf-8"), "application/rss+xml; charset=utf-8", {"Cache-Control": CACHE_CONTROL})
