"""A topic's numbers, computed from its matched episodes. Pure: no I/O, ``now`` is passed in.

:class:`TopicReport` and :class:`EpisodeCard` are the shapes the topic page, the topic
feed, ``earshot report --json`` and the weekly digest all read, so they are a contract:
add fields, never rename or remove them.

Every count is of *episodes as a listener sees them* — dedup clusters (``earshot.topics.dedup``):
a re-upload or a syndicated copy is one episode, and ``duplicates_folded`` says how many
listings were folded away.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from earshot.models import MatchedEpisode, TranscriptMoment
from earshot.textutil import UNTITLED_EPISODE
from earshot.topics.dedup import Cluster, cluster_episodes

YEAR = timedelta(days=365)
WEEKS_PER_YEAR = 365 / 7
SUMMARY_CHARS = 240

RANK_RULE = (
    "Podcasts are ranked by their matching episodes in the last 12 months, "
    "then by their most recent matching episode, then by name."
)


class BestPodcast(BaseModel):
    """A podcast that covers the topic, with the numbers it is ranked by (``RANK_RULE``)."""

    podcast: str = Field(description="the feed's title")
    feed_id: str
    episodes_last_12_months: int = Field(description="matching episodes published in the 365 days before now")
    latest: datetime | None = Field(description="its most recent matching episode")


class EpisodeCard(BaseModel):
    """One episode (a dedup cluster) as shown on the topic page and in the digest."""

    podcast: str = Field(description="title of the podcast whose listing is shown (the original publisher)")
    title: str
    guid: str | None
    episode_id: str
    feed_id: str
    published: datetime | None
    duration_seconds: int | None
    has_transcript: bool = Field(description="the feed gives a <podcast:transcript> for it")
    summary: str = Field(description=f"plain text, at most {SUMMARY_CHARS} characters")
    listen_url: str | None = Field(description="the audio file, else the episode's web page")
    reason: str = Field(description='why it matched, e.g. MLPs in title; "midstream" in description')
    also_in: int = Field(description="how many other podcasts carry the same episode")
    audio_url: str | None = Field(None, description="the enclosure as the feed gave it (the page plays it "
                                                    "only if it passes templating.safe_link)")
    audio_type: str | None = Field(None, description="the enclosure's MIME type, if the feed gave one")
    moment: TranscriptMoment | None = Field(None, description="where a transcript matched (the page's "
                                                              '"play from" control); None when none did')


class TopicReport(BaseModel):
    """A topic's page, in numbers. Header numbers cover every matched episode;
    ``latest_episodes`` may be limited to a window (a digest's week)."""

    podcasts: int = Field(description="distinct podcasts with at least one matching episode")
    episodes: int = Field(description="matching episodes, duplicates folded")
    duplicates_folded: int = Field(description="listings folded as re-uploads or syndicated copies")
    avg_duration_seconds: int | None = Field(description="mean over episodes whose duration is known")
    cadence: str = Field(description='over the last 12 months, e.g. "1 episode every other week"')
    latest: datetime | None = Field(description="when the newest matching episode was published")
    per_year: dict[str, int] = Field(description='episodes per publication year, e.g. {"2024": 12}')
    best_podcasts: list[BestPodcast]
    latest_episodes: list[EpisodeCard] = Field(description="newest first")
    rank_rule: str = Field(RANK_RULE, description="how best_podcasts is ordered, in words")


# ------------------------------------------------------------------------ cadence
class YearCount(BaseModel):
    year: str
    count: int
    share: float = Field(description="count / the busiest year's count, 0..1")


def popularity_by_year(per_year: dict[str, int]) -> list[YearCount]:
    """One row per year from the first to the last, empty years included (a gap is news),
    with its share of the busiest year. The page's chart and the digest's table both draw this.

    >>> [(r.year, r.count, r.share) for r in popularity_by_year({"2022": 2, "2024": 8})]
    [('2022', 2, 0.25), ('2023', 0, 0.0), ('2024', 8, 1.0)]
    """
    if not per_year:
        return []
    peak = max(per_year.values())
    years = range(int(min(per_year)), int(max(per_year)) + 1)
    return [YearCount(year=str(y), count=(n := per_year.get(str(y), 0)), share=n / peak if peak else 0.0)
            for y in years]


def _cadence_phrases() -> list[tuple[float, str]]:
    """(episodes per week, phrase) for every phrase cadence can say."""
    per_month = 12 / WEEKS_PER_YEAR
    phrases = [(7.0 * k, f"{k} episodes a day") for k in range(2, 11)]
    phrases += [(7.0, "1 episode a day")]
    phrases += [(float(k), f"{k} episodes a week") for k in range(2, 7)]
    phrases += [(1.0, "1 episode a week"), (0.5, "1 episode every other week"),
                (1 / 3, "1 episode every 3 weeks"), (3 * per_month, "3 episodes a month"),
                (per_month, "1 episode a month"), (per_month / 2, "1 episode every other month")]
    phrases += [(per_month / k, f"1 episode every {k} months") for k in (3, 4, 6)]
    phrases += [(1 / WEEKS_PER_YEAR, "1 episode a year")]
    return phrases


_PHRASES = _cadence_phrases()


def cadence_words(episodes_per_year: int) -> str:
    """The phrase nearest (on a log scale) to a yearly count.

    >>> cadence_words(26), cadence_words(156), cadence_words(52), cadence_words(12)
    ('1 episode every other week', '3 episodes a week', '1 episode a week', '1 episode a month')
    >>> cadence_words(1), cadence_words(2), cadence_words(730), cadence_words(0)
    ('1 episode a year', '1 episode every 6 months', '2 episodes a day', 'no episodes in the last 12 months')
    """
    if episodes_per_year <= 0:
        return "no episodes in the last 12 months"
    rate = math.log(episodes_per_year / WEEKS_PER_YEAR)
    return min(_PHRASES, key=lambda p: abs(math.log(p[0]) - rate))[1]


# -------------------------------------------------------------------------- report
def _in_last_year(dt: datetime | None, now: datetime) -> bool:
    return dt is not None and now - YEAR < dt <= now


def short_summary(text: str, limit: int = SUMMARY_CHARS) -> str:
    """Plain text cut at a word boundary.

    >>> short_summary("one two three four", 10)
    'one two…'
    """
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0].rstrip(",;:.-")
    return cut + "…"


def episode_card(cluster: Cluster) -> EpisodeCard:
    rep = cluster.representative
    return EpisodeCard(
        # Episodes stored before untitled items got fallback titles may have none.
        podcast=rep.podcast, title=rep.title.strip() or UNTITLED_EPISODE, guid=rep.guid, episode_id=rep.episode_id,
        feed_id=rep.feed_id, published=rep.published, duration_seconds=rep.duration_seconds,
        has_transcript=rep.has_transcript, summary=short_summary(rep.summary),
        listen_url=rep.audio_url or rep.link, reason=rep.reason, also_in=cluster.also_in,
        audio_url=rep.audio_url, audio_type=rep.audio_type, moment=rep.moment,
    )


def best_podcasts(clusters: list[Cluster], now: datetime) -> list[BestPodcast]:
    """Every podcast in the clusters, ordered by ``RANK_RULE``.

    A syndicated episode counts for each podcast that carries it; a re-upload counts once.
    """
    titles: dict[str, str] = {}
    recent: Counter[str] = Counter()
    latest: dict[str, datetime] = {}
    for cluster in clusters:
        for feed_id in cluster.feed_ids:
            listings = [e for e in cluster.listings if e.feed_id == feed_id]
            titles.setdefault(feed_id, listings[0].podcast)
            dates = [e.published for e in listings if e.published is not None]
            if any(_in_last_year(d, now) for d in dates):
                recent[feed_id] += 1
            if dates and (feed_id not in latest or max(dates) > latest[feed_id]):
                latest[feed_id] = max(dates)
    ranked = sorted(
        titles,
        key=lambda f: (-recent[f], -(latest[f].timestamp() if f in latest else -math.inf),
                       titles[f].casefold(), f),
    )
    return [BestPodcast(podcast=titles[f], feed_id=f, episodes_last_12_months=recent[f],
                        latest=latest.get(f)) for f in ranked]


def build_report(
    items: Iterable[MatchedEpisode],
    *,
    now: datetime,
    window: tuple[datetime, datetime] | None = None,
    latest_limit: int | None = 20,
) -> TopicReport:
    """The report for a topic's matched listings.

    ``window=(start, end)`` limits ``latest_episodes`` to episodes published in
    ``[start, end)`` (a digest's week) while every header number still covers the whole
    topic. ``latest_limit`` caps ``latest_episodes`` (None: no cap).
    """
    clusters = cluster_episodes(items)  # newest first
    dated = [c for c in clusters if c.published is not None]
    durations = [c.representative.duration_seconds for c in clusters if c.representative.duration_seconds]
    per_year = Counter(str(c.published.year) for c in dated if c.published)
    shown = clusters
    if window is not None:
        start, end = window
        shown = [c for c in clusters if c.published is not None and start <= c.published < end]
    if latest_limit is not None:
        shown = shown[:latest_limit]
    return TopicReport(
        podcasts=len({f for c in clusters for f in c.feed_ids}),
        episodes=len(clusters),
        duplicates_folded=sum(c.folded for c in clusters),
        avg_duration_seconds=round(sum(durations) / len(durations)) if durations else None,
        cadence=cadence_words(sum(1 for c in dated if _in_last_year(c.published, now))),
        latest=max((c.published for c in dated if c.published), default=None),
        per_year=dict(sorted(per_year.items())),
        best_podcasts=best_podcasts(clusters, now),
        latest_episodes=[episode_card(c) for c in shown],
        rank_rule=RANK_RULE,
    )
