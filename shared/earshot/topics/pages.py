"""The topic page: one self-contained HTML file (inline CSS and SVG, no external assets).

Rendered with the shared Jinja2 environment (``templating``), autoescaping on: every
podcast title, episode title, summary and reason comes from someone else's feed and is
treated as hostile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from earshot import templating
from earshot.models import Topic
from earshot.topics.stats import TopicReport, popularity_by_year

CHART_HEIGHT = 120
BAR_WIDTH = 36
BAR_GAP = 14


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


def render_topic_page(topic: Topic, report: TopicReport, *, now: datetime, feed_url: str | None = None,
                      subscribe_url: str | None = None) -> str:
    """The page; ``subscribe_url`` (where ``POST /subscriptions`` is served) adds the
    digest sign-up form, so a page written to a file without a server has none."""
    bars = year_bars(report.per_year)
    return templating.render(
        "topic_page.html.j2",
        topic=topic, report=report, now=now, feed_url=feed_url, subscribe_url=subscribe_url, bars=bars,
        chart_width=max(1, len(bars) * (BAR_WIDTH + BAR_GAP) - BAR_GAP), chart_height=CHART_HEIGHT + 36,
        bar_width=BAR_WIDTH,
        best=report.best_podcasts[:10],
    )
