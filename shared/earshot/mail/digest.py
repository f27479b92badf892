"""The weekly digest of a topic: rendered once per (topic, week). Pure: no I/O.

:func:`render_digest` turns a :class:`~earshot.topics.stats.TopicReport` (whose
``latest_episodes`` are the week's) into a subject, an HTML body and a text body. The
only per-recipient part is the unsubscribe link, left in the bodies as a placeholder
that is random per render (feed text cannot contain it), so a recipient's copy is two
``str.replace`` calls (:meth:`RenderedDigest.personalize`), not a template render.

Weeks are ISO 8601 weeks in the digest's time zone (``Settings.digest_timezone``, the
zone the schedule runs in; UTC by default). The digest sent on Monday of week W covers
week W-1, Monday 00:00 to Monday 00:00 local time; re-running any time during week W
covers the same week, which is what makes the (topic, week, subscriber) send claim a
stable idempotency key. Weeks must be local: a digest scheduled for Monday 08:00 in
Pacific/Auckland runs on Sunday evening UTC, when the UTC week is not over yet.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import zlib
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta, tzinfo

from pydantic import BaseModel

from earshot import templating
from earshot.mail import mime
from earshot.models import Topic
from earshot.topics.stats import TopicReport, popularity_by_year

MAX_EPISODES_SHOWN = 25
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def iso_week(moment: datetime, tz: tzinfo = UTC) -> str:
    """The ISO week containing ``moment`` as seen in ``tz`` (UTC by default).

    >>> iso_week(datetime(2025, 1, 1, tzinfo=UTC)), iso_week(datetime(2024, 12, 29, tzinfo=UTC))
    ('2025-W01', '2024-W52')
    """
    year, week, _ = moment.astimezone(tz).isocalendar()
    return f"{year}-W{week:02d}"


def week_window(week: str, tz: tzinfo = UTC) -> tuple[datetime, datetime]:
    """``[Monday 00:00, next Monday 00:00)`` of an ISO week, local to ``tz``, as aware
    datetimes; ValueError if malformed. Across a DST change the week is 167 or 169 hours.

    >>> [d.date().isoformat() for d in week_window("2025-W02")]
    ['2025-01-06', '2025-01-13']
    >>> week_window("2025-W53")
    Traceback (most recent call last):
    ValueError: no ISO week 2025-W53: 2025 has weeks W01 to W52
    """
    match = _WEEK.match(week)
    if not match:
        raise ValueError(f"not an ISO week like 2025-W02: {week!r}")
    year, number = int(match[1]), int(match[2])
    # ISO 8601: a year has 52 or 53 weeks; 28 December is always in its last one.
    last_week = date(year, 12, 28).isocalendar().week if MINYEAR <= year <= MAXYEAR else 0
    if not 1 <= number <= last_week:
        has = f"{year} has weeks W01 to W{last_week:02d}" if last_week else f"the year {year} is out of range"
        raise ValueError(f"no ISO week {week}: {has}")
    monday = date.fromisocalendar(year, number, 1)
    try:
        end_day = monday + timedelta(days=7)
    except OverflowError:
        raise ValueError(f"the week {week} ends after the last date there is (9999-12-31)") from None
    return datetime.combine(monday, time(0), tzinfo=tz), datetime.combine(end_day, time(0), tzinfo=tz)


def previous_week(now: datetime, tz: tzinfo = UTC) -> str:
    """The week a digest sent at ``now`` covers: the ISO week (in ``tz``) before ``now``'s.

    >>> previous_week(datetime(2025, 1, 13, 8, tzinfo=UTC)), previous_week(datetime(2025, 1, 19, 23, tzinfo=UTC))
    ('2025-W02', '2025-W02')
    """
    local = now.astimezone(tz)
    return iso_week(local - timedelta(days=7), tz)


class RenderedDigest(BaseModel):
    """One topic's digest for one week, as every subscriber gets it but the unsubscribe link."""

    topic: str
    topic_name: str
    week: str
    subject: str
    list_id: str
    episode_count: int
    text: str
    html: str
    placeholder: str

    def personalize(self, unsubscribe_url: str) -> tuple[str, str]:
        """(text, html) for one recipient."""
        return (self.text.replace(self.placeholder, unsubscribe_url),
                self.html.replace(self.placeholder, html.escape(unsubscribe_url)))

    def to_bytes(self) -> bytes:
        """Compressed for storage (a DynamoDB item holds 400 KB; digests compress ~8x)."""
        return zlib.compress(self.model_dump_json().encode(), level=6)

    @classmethod
    def from_bytes(cls, data: bytes) -> RenderedDigest:
        return cls.model_validate(json.loads(zlib.decompress(data)))


def has_news(report: TopicReport) -> bool:
    return bool(report.latest_episodes)


def subject_for(topic_name: str, count: int) -> str:
    """
    >>> subject_for("ML in finance", 1), subject_for("ML in finance", 0)
    ('ML in finance: 1 new podcast episode this week', 'ML in finance: no new podcast episodes this week')
    """
    if count == 0:
        return f"{topic_name}: no new podcast episodes this week"
    return f"{topic_name}: {count} new podcast episode{'s' if count != 1 else ''} this week"


def year_bars(per_year: dict[str, int]) -> list[dict[str, object]]:
    """Rows for the popularity table (:func:`~earshot.topics.stats.popularity_by_year`):
    bar width in percent, at least 2 so a small year stays visible. Bars are table cells,
    which Gmail and Outlook draw.

    >>> [tuple(row.values()) for row in year_bars({"2023": 2, "2025": 8})]
    [('2023', 2, 25), ('2024', 0, 0), ('2025', 8, 100)]
    """
    return [{"year": r.year, "count": r.count, "percent": max(2, round(100 * r.share)) if r.count else 0}
            for r in popularity_by_year(per_year)]


def render_digest(topic: Topic, report: TopicReport, *, week: str, base_url: str, domain: str) -> RenderedDigest:
    """Render a topic's digest for ``week`` from its report (``latest_episodes`` = the week's)."""
    start, end = week_window(week)
    placeholder = f"https://unsubscribe.invalid/{secrets.token_hex(16)}"
    count = len(report.latest_episodes)
    episodes = [card.model_copy(update={"listen_url": templating.safe_link(card.listen_url)})
                for card in report.latest_episodes[:MAX_EPISODES_SHOWN]]
    context = {
        "topic": topic,
        "report": report,
        "episodes": episodes,
        "more": count - len(episodes),
        "count": count,
        "week": week,
        "week_start": start,
        "week_last_day": end - timedelta(days=1),
        "year_bars": year_bars(report.per_year),
        "best_podcasts": report.best_podcasts[:5],
        "topic_url": f"{base_url.rstrip('/')}/topics/{topic.slug}",
        "feed_url": f"{base_url.rstrip('/')}/topics/{topic.slug}/feed.xml",
        "unsubscribe_url": placeholder,
    }
    return RenderedDigest(
        topic=topic.slug, topic_name=topic.name, week=week, subject=subject_for(topic.name, count),
        list_id=mime.list_id(topic.slug, topic.name, domain), episode_count=count,
        text=templating.render("digest.txt.j2", **context),
        html=templating.render("digest.html.j2", **context),
        placeholder=placeholder,
    )
