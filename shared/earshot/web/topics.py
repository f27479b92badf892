"""HTTP routes: a topic's public page and its podcast feed.

    GET /topics/<slug>           text/html             the topic page (with its Content-Security-Policy)
    GET /topics/<slug>/feed.xml  application/rss+xml   the latest 100 episodes as a podcast

Unknown slugs raise NotFound, which ``earshot.web.api`` maps to 404.
"""


from datetime import UTC, datetime

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from earshot import runtime
from earshot.topics.feed import render_topic_feed
from earshot.topics.pages import CONTENT_SECURITY_POLICY, render_topic_page
from earshot.topics.service import topic_matches
from earshot.topics.stats import build_report
from earshot.web.links import public_base_url

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated

# Pages are public and change at most hourly (ingest cadence): let caches help.
CACHE_CONTROL = "public, max-age=300"


def _base() -> str:
    """Where links point: the configured public base URL, else the request's own domain."""
    return public_base_url(runtime.settings(), router.current_event.request_context.domain_name)


def _urls(slug: str) -> tuple[str, str]:
    base = _base()
    return f"{base}/topics/{slug}", f"{base}/topics/{slug}/feed.xml"


@router.get("/topics/<slug>")
def topic_page(slug: str) -> Response[str]:
    now = datetime.now(UTC)
    topic, matches = topic_matches(runtime.store(), slug)
    _, feed_url = _urls(slug)
    html = render_topic_page(topic, build_report(matches, now=now), now=now, feed_url=feed_url,
                             subscribe_url=f"{_base()}/subscriptions")
    # The page's policy (earshot.topics.pages): its own script by hash, audio from any http(s) host.
    return Response(200, "text/html; charset=utf-8", html,
                    headers={"Cache-Control": CACHE_CONTROL, "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                             "X-Content-Type-Options": "nosniff"})


@router.get("/topics/<slug>/feed.xml")
def topic_feed(slug: str) -> Response[str]:
    now = datetime.now(UTC)
    topic, matches = topic_matches(runtime.store(), slug)
    page_url, feed_url = _urls(slug)
    body = render_topic_feed(topic, matches, now=now, page_url=page_url, feed_url=feed_url)
    return Response(200, "application/rss+xml; charset=utf-8", body.decode("utf-8"),
                    headers={"Cache-Control": CACHE_CONTROL})
