"""Dedup: re-uploads within a feed, syndicated copies across feeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from earshot.models import MatchedEpisode
from earshot.topics.dedup import cluster_episodes, normalize_enclosure, normalize_title

T0 = datetime(2026, 6, 2, 11, 0, tzinfo=UTC)


def ep(feed: str, ep_id: str, title: str, *, days: float = 0, duration: int | None = 1800,
       audio: str | None = None) -> MatchedEpisode:
    return MatchedEpisode(feed_id=feed, episode_id=ep_id, podcast=f"Podcast {feed}", title=title,
                          published=T0 + timedelta(days=days), duration_seconds=duration,
                          audio_url=audio or f"https://{feed}.example/{ep_id}.mp3")


@pytest.mark.parametrize(("url", "expected"), [
    ("https://dts.podtrac.com/redirect.mp3/media.example.com/a.mp3", "media.example.com/a.mp3"),
    ("https://www.podtrac.com/pts/redirect.mp3/media.example.com/a.mp3", "media.example.com/a.mp3"),
    ("https://chtbl.com/track/ABC12/media.example.com/a.mp3", "media.example.com/a.mp3"),
    ("https://pdst.fm/e/chtbl.com/track/X/dts.podtrac.com/redirect.mp3/media.example.com/a.mp3?x=1",
     "media.example.com/a.mp3"),
    ("https://op3.dev/e/https://media.example.com/a.mp3", "media.example.com/a.mp3"),
    ("http://MEDIA.example.com/a.mp3?utm_source=x#t=30", "media.example.com/a.mp3"),
    ("https://media.example.com/A.mp3", "media.example.com/A.mp3"),  # paths are case-sensitive
], ids=["podtrac", "podtrac-pts", "chartable", "stacked-prefixes", "op3-with-scheme", "query-and-host-case",
        "path-case-kept"])
def test_normalize_enclosure(url: str, expected: str) -> None:
    assert normalize_enclosure(url) == expected


@pytest.mark.parametrize(("a", "b"), [
    ("Ep. 88: Midstream 101", "Midstream 101"),
    ("Episode 12 - MLPs &amp; taxes", "MLPs & taxes"),
    ("C-corp conversions (re-upload)", "C-corp conversions"),
    ("MLPs\u00a0and rates!", "mlps and rates"),
], ids=["ep-prefix", "episode-prefix-entity", "reupload-marker", "nbsp-punctuation-case"])
def test_normalize_title_equal(a: str, b: str) -> None:
    assert normalize_title(a) == normalize_title(b)


def test_reupload_under_new_guid_is_one_episode_newest_kept() -> None:
    # Given the same title re-published a day later with a different length
    original = ep("a", "v1", "C-corp conversions", days=0, duration=2162)
    reupload = ep("a", "v2", "C-corp conversions", days=1, duration=2300)
    # When clustered
    clusters = cluster_episodes([original, reupload])
    # Then one episode, the publisher's current version shown
    assert len(clusters) == 1
    assert clusters[0].representative.episode_id == "v2"
    assert clusters[0].folded == 1 and clusters[0].also_in == 0


def test_numbered_daily_episodes_in_one_feed_stay_apart() -> None:
    daily = [ep("a", "1", "Ep 101: Daily update"), ep("a", "2", "Ep 102: Daily update", days=1)]
    assert len(cluster_episodes(daily)) == 2


def test_same_title_more_than_two_days_apart_is_two_episodes() -> None:
    assert len(cluster_episodes([ep("a", "1", "Trailer"), ep("a", "2", "Trailer", days=2.5)])) == 2


def test_syndicated_by_title_date_and_duration() -> None:
    original = ep("a", "1", "Rates and refis", duration=2020)
    copy = ep("b", "9", "Rates and refis", days=1, duration=1985)  # within 5 %
    [cluster] = cluster_episodes([original, copy])
    assert cluster.also_in == 1
    assert cluster.representative.feed_id == "a"  # the original publisher's listing


def test_syndication_needs_close_durations() -> None:
    original = ep("a", "1", "Rates and refis", duration=2000)
    other = ep("b", "9", "Rates and refis", days=1, duration=2200)  # 9 % longer: a different show's take
    assert len(cluster_episodes([original, other])) == 2


def test_syndication_needs_known_durations() -> None:
    assert len(cluster_episodes([ep("a", "1", "News", duration=None), ep("b", "2", "News", duration=None)])) == 2


def test_syndicated_by_tracking_prefixed_enclosure_despite_other_title_and_date() -> None:
    original = ep("a", "1", "Midstream 101", audio="https://media.example.com/mm-101.mp3")
    copy = ep("b", "2", "Partner show: the basics", days=30, duration=None,
              audio="https://dts.podtrac.com/redirect.mp3/media.example.com/mm-101.mp3?src=b")
    [cluster] = cluster_episodes([copy, original])
    assert cluster.also_in == 1 and cluster.folded == 1


def test_clusters_are_transitive_and_count_podcasts_not_listings() -> None:
    listings = [
        ep("a", "1", "Big news", days=0, duration=1800),
        ep("a", "2", "Big news", days=1, duration=1900),   # re-upload in a
        ep("b", "3", "Big news", days=1.5, duration=1890),  # syndicates the re-upload
        ep("c", "4", "Other", days=0, audio="https://dts.podtrac.com/redirect.mp3/a.example/1.mp3"),
    ]
    clusters = cluster_episodes(listings)
    assert len(clusters) == 1
    assert clusters[0].also_in == 2       # b and c
    assert clusters[0].folded == 3


def test_clusters_newest_first_undated_last() -> None:
    undated = MatchedEpisode(feed_id="z", episode_id="u", title="Undated", audio_url=None)
    clusters = cluster_episodes([ep("a", "old", "Old", days=-10), undated, ep("a", "new", "New", days=3)])
    assert [c.representative.episode_id for c in clusters] == ["new", "old", "u"]
