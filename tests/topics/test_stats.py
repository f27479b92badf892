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
from earshot.topics.stats import RANK_RULE, build_report, cadence_words

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
    assert report.latest == d(11, 20)
    assert report.per_year == {"2023": 1, "2024": 1, "2025": 1, "2026": 2}
    assert report.rank_rule == RANK_RULE


def test_best_podcasts_follow_the_rank_rule() -> None:
    report = build_report(LISTINGS, now=NOW)
    ranked = [(p.podcast, p.episodes_last_12_months, p.latest) for p in report.best_podcasts]
    # Alpha has 2 in the last 12 months (the re-upload counts once); Beta 1 (its syndicated copy).
    assert ranked == [("Alpha", 2, d(11, 20)), ("Beta", 1, d(11, 21))]


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
    assert report.cadence == "no episodes in the last 12 months"
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
