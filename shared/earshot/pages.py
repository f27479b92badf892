"""The topic page: one self-contained HTML file (inline CSS and SVG, no external assets).

Rendered with Jinja2 and autoescaping on: every podcast title, episode title, summary and
reason comes from someone else's feed and is treated as hostile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jinja2 import Environment, PackageLoader, StrictUndefined

from earshot.models import Topic
from earshot.stats import TopicReport

_env = Environment(
    loader=PackageLoader("earshot", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

CHART_HEIGHT = 120
BAR_WIDTH = 36
BAR_GAP = 14


def format_duration(seconds: int | None) -> str:
    """>>> format_duration(3723), format_duration(1804), format_duration(None)
    ('1 h 02 min', '30 min', '')
    """
    if not seconds:
        return ""
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


def format_date(dt: datetime | None) -> str:
    """>>> from datetime import datetime; format_date(datetime(2026, 11, 5))
    '5 Nov 2026'
    """
    return f"{dt.day} {dt:%b %Y}" if dt else ""


def safe_url(url: str | None) -> str | None:
    """Only http(s) links reach the page: a feed could offer ``javascript:`` as audio.

    >>> safe_url("javascript:alert(1)") is None, safe_url("https://a.example/x.mp3")
    (True, 'https://a.example/x.mp3')
    """
    if url and url.strip().lower().startswith(("https://", "http://")):
        return url.strip()
    return None


@dataclass(frozen=True)
class Bar:
    year: str
    count: int
    x: int
    y: int
    height: int


def year_bars(per_year: dict[str, int]) -> list[Bar]:
    """One bar per year from the first to the last, empty years included (a gap is news)."""
    if not per_year:
        return []
    years = range(int(min(per_year)), int(max(per_year)) + 1)
    peak = max(per_year.values())
    bars = []
    for i, year in enumerate(years):
        count = per_year.get(str(year), 0)
        height = round(CHART_HEIGHT * count / peak) if peak else 0
        bars.append(Bar(str(year), count, i * (BAR_WIDTH + BAR_GAP), CHART_HEIGHT - height + 16, height))
    return bars


def render_topic_page(topic: Topic, report: TopicReport, *, now: datetime, feed_url: str | None = None) -> str:
    bars = year_bars(report.per_year)
    return _env.get_template("topic_page.html.j2").render(
        topic=topic, report=report, now=now, feed_url=feed_url, bars=bars,
        chart_width=max(1, len(bars) * (BAR_WIDTH + BAR_GAP) - BAR_GAP), chart_height=CHART_HEIGHT + 36,
        bar_width=BAR_WIDTH, format_duration=format_duration, format_date=format_date, safe_url=safe_url,
        best=report.best_podcasts[:10],
    )
