"""A topic's numbers, computed from its matched episodes. Pure: no I/O, ``now`` is passed in.

:class:`TopicReport` and :class:`EpisodeCard` are the shapes the topic page, the topic
feed, ``earshot report --json`` and the weekly digest all read, so they are a contract:
add fields, never rename or remove them.

Every count is of *episodes as a listener sees them* — dedup clusters (``earshot.topics.dedup``):
a re-upload or a syndicated copy is one episode, and ``duplicates_folded`` says how many
listings were folded away — and of *podcasts*, not feeds: feeds that carry one podcast
(``dedup.podcast_groups``) count once.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field, computed_field

from earshot.models import MatchedEpisode, TranscriptMoment
from earshot.textutil import UNTITLED_EPISODE
from earshot.topics.dedup import Cluster, cluster_episodes, podcast_groups

YEAR = timedelta(days=365)
WEEKS_PER_YEAR = 365 / 7
SUMMARY_CHARS = 240

RANK_RULE = (
    "Podcasts are ranked by their matching episodes in the last 12 months, "
    "then by all their matching episodes, then by their most recent matching episode, then by name."
)
LAST_12_MONTHS = "over the last 12 months"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class BestPodcast(BaseModel):
    """A podcast that covers the topic, with the numbers it is ranked by (``RANK_RULE``).
    Feeds that carry one podcast are one entry (``feed_ids``)."""

    podcast: str = Field(description="the podcast's title (of its feed with the most matching episodes)")
    feed_id: str = Field(description="that feed")
    episodes_last_12_months: int = Field(description="matching episodes published in the 365 days before now")
    latest: datetime | None = Field(description="its most recent matching episode")
    episodes: int = Field(0, description="all its matching episodes")
    feed_ids: list[str] = Field(default_factory=list, description="every feed of this podcast with a match")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counts_text(self) -> str:
        """Its numbers in words: "3 in the last 12 months, 40 in all", or "40 episodes"
        when none is that recent (older topics still rank by something that shows)."""
        total = max(self.episodes, self.episodes_last_12_months)
        if self.episodes_last_12_months:
            recent = f"{self.episodes_last_12_months} in the last 12 months"
            return recent if total == self.episodes_last_12_months else f"{recent}, {total} in all"
        return _plural(total, "episode")


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
    transcript_url: str | None = Field(None, description="the publisher's transcript the topic matched in")

    @property
    def moment_url(self) -> str | None:
        """The enclosure with a Media Fragments start (``#t=754``, W3C Media Fragments URI
        1.0 §4.2.1): a player that honours it starts at the moment. None without a moment
        or a playable enclosure."""
        if self.moment is None or not self.audio_url:
            return None
        return f"{self.audio_url.split('#')[0]}#t={self.moment.start_seconds}"


class TopicReport(BaseModel):
    """A topic's page, in numbers. Header numbers cover every matched episode;
    ``latest_episodes`` may be limited to a window (a digest's week)."""

    podcasts: int = Field(description="distinct podcasts with at least one matching episode")
    episodes: int = Field(description="matching episodes, duplicates folded")
    duplicates_folded: int = Field(description="listings folded as re-uploads or syndicated copies")
    avg_duration_seconds: int | None = Field(description="mean over episodes whose duration is known")
    cadence: str = Field(description='how often, e.g. "1 episode every other week" (over cadence_period)')
    cadence_period: str = Field(LAST_12_MONTHS, description='the span cadence describes: "over the last 12 '
                                'months", else the span of the archive ("from March 2019 to June 2021")')
    latest: datetime | None = Field(description="when the newest matching episode was published")
    per_year: dict[str, int] = Field(description='episodes per publication year, e.g. {"2024": 12}')
    best_podcasts: list[BestPodcast]
    latest_episodes: list[EpisodeCard] = Field(description="newest first")
    rank_rule: str = Field(RANK_RULE, description="how best_podcasts is ordered, in words")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cadence_text(self) -> str:
        """Cadence and its period as one sentence (no final stop), e.g.
        "1 episode a month from March 2019 to June 2021"."""
        text = f"{self.cadence} {self.cadence_period}".strip()
        return text[:1].upper() + text[1:]


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


def cadence_words(episodes_per_year: float) -> str:
    """The phrase nearest (on a log scale) to a yearly rate.

    >>> cadence_words(26), cadence_words(156), cadence_words(52), cadence_words(12)
    ('1 episode every other week', '3 episodes a week', '1 episode a week', '1 episode a month')
    >>> cadence_words(1), cadence_words(2), cadence_words(730), cadence_words(0)
    ('1 episode a year', '1 episode every 6 months', '2 episodes a day', 'no episodes')
    """
    if episodes_per_year <= 0:
        return "no episodes"
    rate = math.log(episodes_per_year / WEEKS_PER_YEAR)
    return min(_PHRASES, key=lambda p: abs(math.log(p[0]) - rate))[1]


def _month(dt: datetime) -> str:
    return f"{dt:%B %Y}"


def cadence(published: Iterable[datetime], now: datetime) -> tuple[str, str]:
    """(how often, over which period) for a topic's episode dates, as of ``now``.

    With episodes in the last 12 months: their rate over those months. Without: the rate
    over the span of the archive that has episodes (first to last), so an archive reads
    "1 episode a month from March 2019 to June 2021", not "no episodes". Dates after
    ``now`` are not counted. Rules and examples: ``tests/topics/test_stats.py``.
    """
    past = sorted(d for d in published if d <= now)
    recent = [d for d in past if _in_last_year(d, now)]
    if recent:
        return cadence_words(len(recent)), LAST_12_MONTHS
    if not past:
        return "no episodes yet", ""
    first, last = past[0], past[-1]
    if (first.year, first.month) == (last.year, last.month):
        return _plural(len(past), "episode"), f"in {_month(last)}"
    span_years = max((last - first) / YEAR, 1 / 365)
    return cadence_words((len(past) - 1) / span_years), f"from {_month(first)} to {_month(last)}"


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
        audio_url=rep.audio_url, audio_type=rep.audio_type, moment=rep.moment, transcript_url=rep.transcript_url,
    )


def best_podcasts(clusters: list[Cluster], now: datetime, podcast_of: dict[str, str]) -> list[BestPodcast]:
    """Every podcast in the clusters, ordered by ``RANK_RULE``; ``podcast_of`` maps each
    feed to its podcast (``dedup.podcast_groups``), so a podcast's feeds are one entry.

    A syndicated episode counts for each podcast that carries it; a re-upload counts once.
    """
    recent: Counter[str] = Counter()
    total: Counter[str] = Counter()
    latest: dict[str, datetime] = {}
    listings_per_feed: dict[str, Counter[str]] = {}
    titles: dict[str, str] = {}
    for cluster in clusters:
        for podcast in {podcast_of[e.feed_id] for e in cluster.listings}:
            listings = [e for e in cluster.listings if podcast_of[e.feed_id] == podcast]
            total[podcast] += 1
            per_feed = listings_per_feed.setdefault(podcast, Counter())
            for e in listings:
                per_feed[e.feed_id] += 1
                titles.setdefault(e.feed_id, e.podcast)
            dates = [e.published for e in listings if e.published is not None]
            if any(_in_last_year(d, now) for d in dates):
                recent[podcast] += 1
            if dates and (podcast not in latest or max(dates) > latest[podcast]):
                latest[podcast] = max(dates)

    def shown_feed(podcast: str) -> str:
        """The feed named for a podcast: its feed with the most matching listings, titled first."""
        counts = listings_per_feed[podcast]
        return min(counts, key=lambda f: (not titles[f], -counts[f], f))

    entries = []
    for podcast in total:
        feed = shown_feed(podcast)
        entries.append(BestPodcast(podcast=titles[feed], feed_id=feed, episodes_last_12_months=recent[podcast],
                                   latest=latest.get(podcast), episodes=total[podcast],
                                   feed_ids=sorted(listings_per_feed[podcast])))
    return sorted(entries, key=lambda p: (-p.episodes_last_12_months, -p.episodes,
                                          -(p.latest.timestamp() if p.latest else -math.inf),
                                          p.podcast.casefold(), p.feed_id))


def build_report(
    items: Iterable[MatchedEpisode],
    *,
    now: datetime,
    window: tuple[datetime, datetime] | None = None,
    latest_limit: int | None = 20,
) -> TopicReport:
    """The report for a topic's matched listings, as of ``now``.

    ``window=(start, end)`` is a digest's week: ``latest_episodes`` are the episodes
    published in ``[start, end)``, and every other number is as of the week's end
    (episodes published later are left out; pass ``now`` no later than ``end``).
    ``latest_limit`` caps ``latest_episodes`` (None: no cap).
    """
    listings = list(items)
    if window is not None:
        listings = [e for e in listings if e.published is None or e.published < window[1]]
    podcast_of = podcast_groups(listings)
    clusters = cluster_episodes(listings, podcast_of)  # newest first
    dated = [c for c in clusters if c.published is not None]
    durations = [c.representative.duration_seconds for c in clusters if c.representative.duration_seconds]
    per_year = Counter(str(c.published.year) for c in dated if c.published)
    shown = clusters
    if window is not None:
        start, end = window
        shown = [c for c in clusters if c.published is not None and start <= c.published < end]
    if latest_limit is not None:
        shown = shown[:latest_limit]
    how_often, period = cadence((c.published for c in dated if c.published), now)
    return TopicReport(
        podcasts=len({p for c in clusters for p in c.podcasts}),
        episodes=len(clusters),
        duplicates_folded=sum(c.folded for c in clusters),
        avg_duration_seconds=round(sum(durations) / len(durations)) if durations else None,
        cadence=how_often,
        cadence_period=period,
        latest=max((c.published for c in dated if c.published), default=None),
        per_year=dict(sorted(per_year.items())),
        best_podcasts=best_podcasts(clusters, now, podcast_of),
        latest_episodes=[episode_card(c) for c in shown],
        rank_rule=RANK_RULE,
    )
