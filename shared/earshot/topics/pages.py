"""The topic page: one self-contained HTML file (inline CSS and SVG, no external assets).

Rendered with the shared Jinja2 environment (``templating``), autoescaping on: every
podcast title, episode title, summary and reason comes from someone else's feed and is
treated as hostile.

Each episode with an enclosure that passes ``templating.safe_link`` gets a native
``<audio controls preload="none">``: nothing is fetched from the podcast's host until the
reader presses play. Where a transcript moment matched, a "Play from 12:34" control
starts that player there; the page then carries one first-party inline script
(``templates/topic_player.js``), and only then. :data:`CONTENT_SECURITY_POLICY` (sent
by the route and repeated in the page's ``<meta>``, so a saved copy keeps it) allows
that script by its hash and no other, inline styles, and audio from any http(s) host.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from importlib import resources

from markupsafe import Markup

from earshot import templating
from earshot.models import MatchedEpisode, Topic
from earshot.topics.stats import YEAR, EpisodeCard, TopicReport, popularity_by_year

CHART_HEIGHT = 120
BAR_WIDTH = 36
BAR_GAP = 14

PLAYER_SCRIPT = (resources.files("earshot") / "templates" / "topic_player.js").read_text(encoding="utf-8")
if "</" in PLAYER_SCRIPT:  # it is written into a <script> element verbatim
    raise RuntimeError("topic_player.js must not contain '</'")


def script_hash(source: str) -> str:
    """A CSP hash source for an inline script's exact text."""
    digest = base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    f"script-src {script_hash(PLAYER_SCRIPT)}",
    "style-src 'unsafe-inline'",
    # Enclosures live on any podcast host and usually redirect through measurement
    # prefixes (Podtrac, OP3, ...) to a CDN, and a redirect target must match the list
    # too: naming the hosts on the page would break playback, so any http(s) origin.
    "media-src http: https:",
    "base-uri 'none'",
    # The digest sign-up form posts to this same API (POST /subscriptions).
    "form-action 'self'",
))


@dataclass(frozen=True)
class Bar:
    year: str
    count: int
    x: int
    y: int
    height: int


def year_bars(per_year: dict[str, int]) -> list[Bar]:
    """The SVG chart's bars for :func:`~earshot.topics.stats.popularity_by_year`."""
    bars = []
    for i, row in enumerate(popularity_by_year(per_year)):
        height = round(CHART_HEIGHT * row.share)
        bars.append(Bar(row.year, row.count, i * (BAR_WIDTH + BAR_GAP), CHART_HEIGHT - height + 16, height))
    return bars


def has_play_from(card: EpisodeCard) -> bool:
    """The card shows a "Play from" control: a transcript moment and a player to start."""
    return card.moment is not None and templating.safe_link(card.audio_url) is not None


def page_stable_until(matches: Iterable[MatchedEpisode], *, now: datetime) -> datetime:
    """The first instant after ``now`` at which the page of these matches could read
    differently with nothing stored changed: the footer's date turns at midnight UTC, an
    episode dated in the future starts to count when its date comes, and one leaves "the
    last 12 months" (ranking, cadence) a year after its date (``stats``). The page's
    validator (``earshot.web.topics``) holds until then.

    >>> from datetime import UTC
    >>> now = datetime(2026, 3, 1, 10, tzinfo=UTC)
    >>> page_stable_until([], now=now).isoformat()
    '2026-03-02T00:00:00+00:00'
    >>> year_old = MatchedEpisode(feed_id="f", episode_id="e", published=datetime(2025, 3, 1, 16, tzinfo=UTC))
    >>> page_stable_until([year_old], now=now).isoformat()
    '2026-03-01T16:00:00+00:00'
    """
    midnight = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC)
    turns = (at for m in matches if m.published is not None for at in (m.published, m.published + YEAR))
    return min([midnight, *(at for at in turns if at > now)])


def render_topic_page(topic: Topic, report: TopicReport, *, now: datetime, feed_url: str | None = None,
                      subscribe_url: str | None = None) -> str:
    """The page; ``subscribe_url`` (where ``POST /subscriptions`` is served) adds the
    digest sign-up form, so a page written to a file without a server has none."""
    bars = year_bars(report.per_year)
    needs_script = any(has_play_from(card) for card in report.latest_episodes)
    return templating.render(
        "topic_page.html.j2",
        topic=topic, report=report, now=now, feed_url=feed_url, subscribe_url=subscribe_url, bars=bars,
        chart_width=max(1, len(bars) * (BAR_WIDTH + BAR_GAP) - BAR_GAP), chart_height=CHART_HEIGHT + 36,
        bar_width=BAR_WIDTH,
        best=report.best_podcasts[:10],
        csp=CONTENT_SECURITY_POLICY,
        # Earshot's own constant text (never feed text), written verbatim: escaping would change it
        # and its hash.
        player_script=Markup(PLAYER_SCRIPT) if needs_script else None,
    )
