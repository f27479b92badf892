"""HTTP routes: a topic's public page and its podcast feed.

    GET /topics/<slug>           text/html             the topic page (with its Content-Security-Policy)
    GET /topics/<slug>/feed.xml  application/rss+xml   the latest 100 episodes as a podcast

Unknown slugs raise NotFound, which ``earshot.web.api`` maps to 404.

Both carry validators (RFC 9110 §8.8.3): a strong ``ETag`` and ``Cache-Control``. A
request whose ``If-None-Match`` names the current tag gets ``304 Not Modified`` with no
body (RFC 9110 §13.1.2, §15.4.5), so a podcast app that polls a topic's feed every few
hours downloads it only when an episode was added.

The tag is not a digest of the body: it is built from what the body is made of, so a
conditional request is answered from the topic's own item (one read) without reading the
topic's matches or rendering anything. Its parts:

- the topic's ``revision``, which the store replaces after every change of the topic or
  its matches (``earshot.store.port``);
- the page's links (the public base URL or the request's domain) and a digest of the
  layer's code and templates (:func:`code_revision`: a deploy that renders differently);
- how long the body stays as it is with nothing stored changed (``.<epoch second>``):
  the page's date and "last 12 months" turn with time (``pages.page_stable_until``), the
  feed's ``lastBuildDate`` when a future-dated episode's date comes
  (``feed.feed_stable_until``); past that second the tag no longer matches. A tag issued
  within :data:`SETTLE_S` of a new revision holds only until then (see there).

The same parts key the bodies this process has rendered (:func:`rendered`): a feed that
changed is downloaded once by each of its followers' apps, and every download after the
first one in a process is served from the topic's item alone too.

A client that accepts gzip gets the body gzipped (``Content-Encoding: gzip``,
``Vary: Accept-Encoding``; the HTTP API does not compress), under its own tag
(``"<tag>-gzip"``: a strong tag names one representation), and either tag of the current
content answers 304.
"""



import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

import earshot
from earshot import runtime
from earshot.models import Topic
from earshot.topics.feed import FEED_LIMIT, feed_stable_until, render_topic_feed
from earshot.topics.pages import CONTENT_SECURITY_POLICY, page_stable_until, render_topic_page
from earshot.topics.service import get_topic
from earshot.topics.stats import build_report
from earshot.web.links import public_base_url

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated

# Pages are public and change at most hourly (ingest cadence): let caches help.
CACHE_CONTROL = "public, max-age=300"
# Listings the feed reads: FEED_LIMIT episodes, each listed in up to three feeds.
FEED_READ_LIMIT = 3 * FEED_LIMIT
# DynamoDB's eventually consistent reads go to any of an item's replicas: right after a
# change, the topic's new revision may be read from one replica and its matches from
# another that has not applied the change yet. A tag issued in the first SETTLE_S seconds
# of a revision therefore holds only until then, and the next poll reads the settled
# matches (replicas apply writes within about a second).
SETTLE_S = 30
# Bodies kept per process (see rendered): a topic's page and feed for a few topics (a
# feed is a few hundred KB).
RENDERED_KEPT = 32
_rendered: OrderedDict[str, tuple[str, datetime | None]] = OrderedDict()
_rendered_lock = threading.Lock()
# What the layer's code and templates are made of (see code_revision).
CODE_SUFFIXES = (".py", ".j2", ".js")


def _base() -> str:
    """Where links point: the configured public base URL, else the request's own domain."""
    return public_base_url(runtime.settings(), router.current_event.request_context.domain_name)


def _urls(slug: str) -> tuple[str, str]:
    base = _base()
    return f"{base}/topics/{slug}", f"{base}/topics/{slug}/feed.xml"


@functools.cache
def code_revision() -> str:
    """A digest of the layer's code and templates (read once per process): a deploy that
    changes how a page or feed is rendered gives every tag a new value."""
    root = Path(earshot.__file__).parent
    digest = hashlib.sha256(earshot.__version__.encode())
    for path in sorted(p for p in root.rglob("*") if p.suffix in CODE_SUFFIXES):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def validator(kind: str, topic: Topic, *links: str) -> str:
    """The part of a tag that names the stored content and how it is shown: the route,
    the topic's revision, the links written into the body, the code."""
    parts = (kind, topic.slug, topic.revision or "", *links, code_revision())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def entity_tag(validated: str, until: datetime | None, *, gzipped: bool = False) -> str:
    """A strong entity tag (RFC 9110 §8.8.3: a quoted string): the validator, the second
    until which the body holds, the coding.

    >>> entity_tag("ab12", datetime(2026, 1, 1, tzinfo=UTC), gzipped=True)
    '"ab12.1767225600-gzip"'
    >>> entity_tag("ab12", None)
    '"ab12"'
    """
    held = f".{int(until.timestamp())}" if until is not None else ""
    return f'"{validated}{held}{"-gzip" if gzipped else ""}"'


def held_tag(if_none_match: str | None, validated: str, now: datetime) -> str | None:
    """The tag in an ``If-None-Match`` field value (a comma-separated list; ``W/`` taken
    as the same tag) that names ``validated`` content still as it is at ``now``: the tag's
    opaque part without its coding, or None.

    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> [held_tag(v, "ab12", now) for v in (None, "*", '"ab12"', 'W/"ab12-gzip"', '"x", "ab12.1767225601"')]
    [None, None, 'ab12', 'ab12', 'ab12.1767225601']
    >>> [held_tag(v, "ab12", now) for v in ('"ab12.1767225600"', '"ab13"', '"ab12.x"', "ab12")]
    [None, None, None, None]
    """
    for candidate in (if_none_match or "").split(","):
        tag = candidate.strip().removeprefix("W/")
        if len(tag) < 2 or tag[0] != '"' or tag[-1] != '"':
            continue
        opaque = tag[1:-1].removesuffix("-gzip")
        name, _, until = opaque.partition(".")
        if name == validated and (not until or (until.isdigit() and now.timestamp() < int(until))):
            return opaque
    return None


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


Render = Callable[[Topic, datetime], tuple[str, datetime | None]]


def rendered(validated: str, topic: Topic, now: datetime, render: Render) -> tuple[str, datetime | None]:
    """The body ``validated`` names and the moment it stops holding: kept from an earlier
    render in this process while that moment has not come (the tag's own rule, so a body
    served from here is one a 304 would have confirmed), else rendered (``render`` reads
    the matches) and kept. A body rendered within :data:`SETTLE_S` of the topic's revision
    holds only until then, here as in its tag."""
    with _rendered_lock:
        kept = _rendered.get(validated)
        if kept is not None and (kept[1] is None or now < kept[1]):
            _rendered.move_to_end(validated)
            return kept
    body, until = render(topic, now)
    if topic.revised_at is not None and (settled := topic.revised_at + timedelta(seconds=SETTLE_S)) > now:
        until = min(until, settled) if until is not None else settled
    with _rendered_lock:
        _rendered[validated] = (body, until)
        _rendered.move_to_end(validated)
        while len(_rendered) > RENDERED_KEPT:
            _rendered.popitem(last=False)
    return body, until


def _served(kind: str, slug: str, render: Render, content_type: str, headers: dict[str, str]) -> Response[str]:
    """The route's answer: 304 from the topic's item alone when the client holds the
    current tag; else the body (:func:`rendered`) with its tag. A 304 carries the same
    ETag, Cache-Control and Vary a 200 would (RFC 9110 §15.4.5)."""
    now = datetime.now(UTC)
    topic = get_topic(runtime.store(), slug)
    event_headers = router.current_event.headers
    gzipped = accepts_gzip(event_headers.get("accept-encoding"))
    if_none_match = event_headers.get("if-none-match")
    validated = validator(kind, topic, *_urls(slug))
    kept = ("ETag", "Cache-Control", "Vary")
    headers = {**headers, "Vary": "Accept-Encoding"}
    if held := held_tag(if_none_match, validated, now):
        etag = f'"{held}{"-gzip" if gzipped else ""}"'
        return Response(304, None, "", headers={k: v for k, v in {**headers, "ETag": etag}.items() if k in kept})
    body, until = rendered(validated, topic, now, render)
    headers["ETag"] = entity_tag(validated, until, gzipped=gzipped)
    if none_match(if_none_match, headers["ETag"]):  # "*", or a tag issued just now
        return Response(304, None, "", headers={k: v for k, v in headers.items() if k in kept})
    # Powertools gzips the body as the response is built (after the route's validation);
    # its gzip header carries no time, so the same content gives the same bytes.
    return Response(200, content_type, body, headers=headers, compress=gzipped)


@router.get("/topics/<slug>")
def topic_page(slug: str) -> Response[str]:
    def render(topic: Topic, now: datetime) -> tuple[str, datetime | None]:
        matches = runtime.store().list_matches(slug)
        _, feed_url = _urls(slug)
        html = render_topic_page(topic, build_report(matches, now=now), now=now, feed_url=feed_url,
                                 subscribe_url=f"{_base()}/subscriptions")
        return html, page_stable_until(matches, now=now)

    # The page's policy (earshot.topics.pages): its own script by hash, audio from any http(s) host.
    return _served("page", slug, render, "text/html; charset=utf-8",
                   {"Cache-Control": CACHE_CONTROL, "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                    "X-Content-Type-Options": "nosniff"})


@router.get("/topics/<slug>/feed.xml")
def topic_feed(slug: str) -> Response[str]:
    def render(topic: Topic, now: datetime) -> tuple[str, datetime | None]:
        # The feed lists the newest FEED_LIMIT episodes, duplicates folded: it reads the
        # newest listings only (a few per episode), not the topic's whole archive, since
        # every podcast app following the topic polls it and DynamoDB bills what it reads.
        matches = runtime.store().list_matches(slug, limit=FEED_READ_LIMIT)
        page_url, feed_url = _urls(slug)
        body = render_topic_feed(topic, matches, now=now, page_url=page_url, feed_url=feed_url)
        return body.decode("utf-8"), feed_stable_until(topic, matches, now=now)

    return _served("feed", slug, render, "application/rss+xml; charset=utf-8", {"Cache-Control": CACHE_CONTROL})
