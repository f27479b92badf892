"""Topic report numbers on a hand-made topic where every number is known.

The topic (now = 2026-11-26):

    Alpha  2026-11-20  "Big interview"   30:00   <- Beta syndicates it on 11-21 (30:10)
    Alpha  2026-11-06  "Rates"           40:00   re-uploaded 11-07 as 41:40 (shown)
    Alpha  2025-06-01  "Old news"        50:00
    Beta   2024-03-01  "Archive"         20:00
    Beta   2023-01-01  "Pilot"           (no duration)

=> 2 podcasts, 5 episodes, 2 listings folded, mean duration (1800+2500+3000+1200)/4 = 2125 s,
   2 episodes in the last 12 months ("1 episode every 6 months"), per year 1/1/1/2.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from earshot.models import MatchedEpisode, TranscriptMoment
from earshot.topics.dedup import podcast_groups
from earshot.topics.stats import RANK_RULE, build_report, cadence, cadence_words

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def ep(feed: str, podcast: str, ep_id: str, title: str, published: datetime, duration: int | None) -> MatchedEpisode:
    return MatchedEpisode(feed_id=feed, episode_id=ep_id, podcast=podcast, title=title, published=published,
                          duration_seconds=duration, audio_url=f"https://{feed}.example/{ep_id}.mp3",
                          summary=f"About {title}.", reason="MLP in title", has_transcript=ep_id == "a1")


def d(month: int, day: int, year: int = 2026) -> datetime:
    return datetime(year, month, day, 11, 0, tzinfo=UTC)


LISTINGS = [
    ep("fa", "Alpha", "a1", "Big interview", d(11, 20), 1800),
    ep("fb", "Beta", "b1", "Big interview", d(11, 21), 1810),
    ep("fa", "Alpha", "a2", "Rates", d(11, 6), 2400),
    ep("fa", "Alpha", "a2r", "Rates", d(11, 7), 2500),
    ep("fa", "Alpha", "a3", "Old news", d(6, 1, 2025), 3000),
    ep("fb", "Beta", "b2", "Archive", d(3, 1, 2024), 1200),
    ep("fb", "Beta", "b3", "Pilot", d(1, 1, 2023), None),
]


def test_header_numbers() -> None:
    report = build_report(LISTINGS, now=NOW)
    assert (report.podcasts, report.episodes, report.duplicates_folded) == (2, 5, 2)
    assert report.avg_duration_seconds == 2125
    assert report.cadence == "1 episode every 6 months"
    assert report.cadence_text == "1 episode every 6 months over the last 12 months"
    assert report.latest == d(11, 20)
    assert report.per_year == {"2023": 1, "2024": 1, "2025": 1, "2026": 2}
    assert report.rank_rule == RANK_RULE


def test_best_podcasts_follow_the_rank_rule() -> None:
    report = build_report(LISTINGS, now=NOW)
    ranked = [(p.podcast, p.episodes_last_12_months, p.episodes, p.latest) for p in report.best_podcasts]
    # Alpha has 2 in the last 12 months (the re-upload counts once); Beta 1 (its syndicated copy).
    assert ranked == [("Alpha", 2, 3, d(11, 20)), ("Beta", 1, 3, d(11, 21))]
    assert [p.counts_text for p in report.best_podcasts] == ["2 in the last 12 months, 3 in all",
                                                            "1 in the last 12 months, 3 in all"]


def test_rank_ties_broken_by_recency_then_name() -> None:
    listings = [ep("f1", "Zed", "z", "Z", d(11, 1), 60), ep("f2", "Amy", "a", "A", d(10, 1), 60),
                ep("f3", "Bob", "b", "B", d(10, 1), 60)]
    report = build_report(listings, now=NOW)
    assert [p.podcast for p in report.best_podcasts] == ["Zed", "Amy", "Bob"]


def test_latest_episodes_are_clusters_newest_first() -> None:
    cards = build_report(LISTINGS, now=NOW).latest_episodes
    assert [c.title for c in cards] == ["Big interview", "Rates", "Old news", "Archive", "Pilot"]
    first = cards[0]
    assert (first.podcast, first.episode_id, first.also_in, first.has_transcript) == ("Alpha", "a1", 1, True)
    assert first.listen_url == "https://fa.example/a1.mp3"
    assert cards[1].episode_id == "a2r" and cards[1].duration_seconds == 2500


def test_cards_carry_the_enclosure_and_a_transcript_moment() -> None:
    moment = TranscriptMoment(start_seconds=754, text="MLP payouts")
    listing = ep("f1", "Alpha", "m1", "Moment", d(11, 22), 60).model_copy(
        update={"audio_type": "audio/mpeg", "moment": moment})
    (card,) = build_report([listing], now=NOW).latest_episodes
    assert (card.audio_url, card.audio_type, card.moment) == (listing.audio_url, "audio/mpeg", moment)
    (plain,) = build_report([ep("f1", "Alpha", "p1", "Plain", d(11, 22), 60)], now=NOW).latest_episodes
    assert plain.moment is None


def test_window_limits_cards_but_not_header_numbers() -> None:
    report = build_report(LISTINGS, now=NOW, window=(d(11, 16), d(11, 23)))
    assert [c.title for c in report.latest_episodes] == ["Big interview"]
    assert report.episodes == 5 and report.podcasts == 2


def test_latest_limit() -> None:
    assert len(build_report(LISTINGS, now=NOW, latest_limit=2).latest_episodes) == 2


def test_empty_topic() -> None:
    report = build_report([], now=NOW)
    assert (report.podcasts, report.episodes, report.avg_duration_seconds, report.latest) == (0, 0, None, None)
    assert (report.cadence, report.cadence_period, report.cadence_text) == ("no episodes yet", "", "No episodes yet")
    assert report.per_year == {} and report.best_podcasts == [] and report.latest_episodes == []


def test_summary_is_short_plain_text() -> None:
    long = ep("fa", "Alpha", "x", "Long", d(11, 1), 60).model_copy(update={"summary": "word " * 200})
    card = build_report([long], now=NOW).latest_episodes[0]
    assert len(card.summary) <= 240 and card.summary.endswith("…")


@pytest.mark.parametrize(("per_year", "words"), [
    (365, "1 episode a day"),
    (156, "3 episodes a week"),
    (104, "2 episodes a week"),
    (52, "1 episode a week"),
    (26, "1 episode every other week"),
    (36, "3 episodes a month"),
    (17, "1 episode every 3 weeks"),
    (12, "1 episode a month"),
    (6, "1 episode every other month"),
    (4, "1 episode every 3 months"),
    (3, "1 episode every 4 months"),
], ids=lambda v: str(v))
def test_cadence_words(per_year: int, words: str) -> None:
    assert cadence_words(per_year) == words


# ------------------------------------------------------------------ cadence over time
def _dates(*days: tuple[int, int, int]) -> list[datetime]:
    return [datetime(y, m, dd, 11, tzinfo=UTC) for y, m, dd in days]


@pytest.mark.parametrize(("dates", "words", "period"), [
    # episodes in the last 12 months: their rate over those months (the seed page's wording)
    (_dates(*[(2026, 1 + i // 2, 1 + 14 * (i % 2)) for i in range(22)]), "1 episode every other week",
     "over the last 12 months"),
    (_dates((2026, 11, 1)), "1 episode a year", "over the last 12 months"),
    # none in the last 12 months: the rate over the span that has episodes
    (_dates(*[(2019 + (3 + i) // 12, 1 + (3 + i) % 12, 5) for i in range(28)]), "1 episode a month",
     "from April 2019 to July 2021"),
    (_dates((2020, 1, 1), (2021, 1, 1), (2022, 1, 1)), "1 episode a year", "from January 2020 to January 2022"),
    (_dates((2023, 5, 2), (2023, 5, 9), (2023, 5, 30)), "3 episodes", "in May 2023"),
    (_dates((2019, 3, 3)), "1 episode", "in March 2019"),
    # future-dated episodes are not counted as of now
    (_dates((2027, 1, 1)), "no episodes yet", ""),
    ([], "no episodes yet", ""),
], ids=["recent-fortnightly", "recent-one", "archive-monthly", "archive-yearly", "archive-one-month",
        "archive-single", "future-only", "empty"])
def test_cadence_describes_the_span_that_has_episodes(dates: list[datetime], words: str, period: str) -> None:
    assert cadence(dates, NOW) == (words, period)


def test_an_archive_topic_never_says_no_episodes_twice() -> None:
    old = [ep("fa", "Alpha", f"a{i}", f"Old {i}", datetime(2020, 1 + i, 10, tzinfo=UTC), 60) for i in range(6)]
    report = build_report(old, now=NOW)
    assert report.cadence_text == "1 episode a month from January 2020 to June 2020"
    assert "no episodes" not in report.cadence_text


# ------------------------------------------------------------------ podcasts, not feeds
JAN_2024 = d(1, 10, 2024)


def listing(feed: str, title: str = "Podcasting 2.0", *, guid: str | None = None, author: str | None = None,
            link: str | None = "http://podcastindex.org", ep_id: str = "e1", ep_guid: str | None = None,
            published: datetime = JAN_2024) -> MatchedEpisode:
    return MatchedEpisode(feed_id=feed, episode_id=ep_id, guid=ep_guid, podcast=title, podcast_guid=guid,
                          podcast_author=author, podcast_link=link, title=f"Episode {ep_id}", published=published)


@pytest.mark.parametrize(("a", "b", "same"), [
    (listing("f1", guid="917393e3"), listing("f2", title="Renamed", guid="917393E3", link=None), True),
    (listing("f1", guid="917393e3", author="Podcast Index LLC"), listing("f2", author="Podcast Index LLC"), True),
    (listing("f1", "Podcast Help Desk™", author="mike@mikedell.com (Mike Dell)", link="https://www.podcasthelpdesk.com"),
     listing("f2", "Podcast Help Desk™", author="Mike Dell", link="https://podcasthelpdesk.com/"), True),
    (listing("f1", "Podcast Help Desk™", author="Mike Dell", link="https://www.podcasthelpdesk.com"),
     listing("f2", "Podcast Help Desk™", author=None, link="https://www.podcasthelpdesk.com"), True),
    (listing("f1", author="Ann"), listing("f2", author="Bob"), False),
    (listing("f1", "Podcast", link=None), listing("f2", "Podcast", link=None), False),
    (listing("f1", "Homegrown Hits"), listing("f2", "Homegrown Hits", link="https://homegrownhits.xyz"), False),
    (listing("f1", guid="g1"), listing("f2", "Other show", guid="g2"), False),
], ids=["same-guid", "guid-on-one-side", "title-author-link", "author-missing-on-one-side", "authors-differ",
        "title-only", "links-differ", "different-guids-different-titles"])
def test_podcast_identity(a: MatchedEpisode, b: MatchedEpisode, same: bool) -> None:
    groups = podcast_groups([a, b])
    assert (groups["f1"] == groups["f2"]) is same


def test_feeds_of_one_podcast_are_one_best_podcast_and_one_podcast_in_the_numbers() -> None:
    # The same show under two feed URLs (one episode in both, one only in the new feed),
    # and another show: two podcasts, not three; the shared episode is not "also in" anything.
    listings = [
        listing("old", guid="pc20", ep_id="1", ep_guid="ep-1", published=d(1, 5, 2024)),
        listing("new", author="Podcast Index LLC", ep_id="1", ep_guid="ep-1", published=d(1, 5, 2024)),
        listing("new", author="Podcast Index LLC", ep_id="2", ep_guid="ep-2", published=d(2, 5, 2024)),
        listing("other", "Other Show", link="https://other.example", ep_id="3", published=d(3, 5, 2024)),
    ]
    report = build_report(listings, now=NOW)
    assert (report.podcasts, report.episodes, report.duplicates_folded) == (2, 3, 1)
    assert [(p.podcast, p.episodes, sorted(p.feed_ids)) for p in report.best_podcasts] == [
        ("Podcasting 2.0", 2, ["new", "old"]), ("Other Show", 1, ["other"])]
    assert all(card.also_in == 0 for card in report.latest_episodes)


def test_archive_topics_rank_by_all_their_matching_episodes() -> None:
    # Nothing in the last 12 months: the ranking still means something (and says so).
    listings = [listing("few", "Few", link=None, ep_id=f"f{i}", published=d(6, 1 + i, 2021)) for i in range(2)]
    listings += [listing("many", "Many", link=None, ep_id=f"m{i}", published=d(3, 1 + i, 2020)) for i in range(5)]
    best = build_report(listings, now=NOW).best_podcasts
    assert [(p.podcast, p.episodes_last_12_months, p.counts_text) for p in best] == [
        ("Many", 0, "5 episodes"), ("Few", 0, "2 episodes")]


def test_a_window_makes_every_number_as_of_its_end() -> None:
    # A digest for the week of "Rates" (Nov 2-9): "Big interview" (Nov 20) is after it.
    report = build_report(LISTINGS, now=d(11, 9), window=(d(11, 2), d(11, 9)))
    assert report.latest == d(11, 7) and report.episodes == 4
    assert [c.title for c in report.latest_episodes] == ["Rates"]
    assert all(p.latest is None or p.latest < d(11, 9) for p in report.best_podcasts)
    assert [(p.podcast, p.episodes_last_12_months) for p in report.best_podcasts] == [("Alpha", 1), ("Beta", 0)]
