"""The topic feed.xml: valid podcast RSS that feedparser reads back, enclosures included."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import feedparser

from earshot.models import MatchedEpisode, Topic
from earshot.topics.feed import FEED_LIMIT, render_topic_feed

NOW = datetime(2026, 11, 26, tzinfo=UTC)
TOPIC = Topic(slug="mlp-finance", name="MLPs & friends", query="MLP midstream")


def _listing(i: int, **kw: object) -> MatchedEpisode:
    base = dict(feed_id="f1", episode_id=f"e{i}", guid=f"guid-{i}", podcast="Midstream <Minute>",
                title=f"Episode {i} & <more>", published=NOW - timedelta(days=i), duration_seconds=1800 + i,
                audio_url=f"https://m.example/{i}.mp3?a=1&b=2", audio_type="audio/mpeg", audio_length=1000 + i,
                summary="Coverage \x0b ratios", reason="MLP in title")
    return MatchedEpisode(**{**base, **kw})


def _render(listings: list[MatchedEpisode]) -> bytes:
    return render_topic_feed(TOPIC, listings, now=NOW, page_url="https://e.example/topics/mlp-finance",
                             feed_url="https://e.example/topics/mlp-finance/feed.xml")


def test_feed_parses_back_with_enclosures_and_itunes_fields() -> None:
    body = _render([_listing(1), _listing(2, audio_url=None), _listing(3)])
    ET.fromstring(body)  # well-formed XML (the vertical tab was dropped)
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    assert parsed.feed.title == "MLPs & friends · Earshot"
    # The episode without audio is left out: a podcast app cannot play it.
    assert [e.title for e in parsed.entries] == ["Episode 1 & <more>", "Episode 3 & <more>"]
    first = parsed.entries[0]
    assert first.enclosures[0].href == "https://m.example/1.mp3?a=1&b=2"
    assert first.enclosures[0].type == "audio/mpeg" and first.enclosures[0].length == "1001"
    assert first.itunes_duration == "1801"
    assert first.id == "guid-1"
    assert "Why it matched: MLP in title" in first.summary


def test_feed_folds_duplicates_and_says_also_in() -> None:
    copy = _listing(1, feed_id="f2", episode_id="c1", podcast="Network", guid="other",
                    audio_url="https://dts.podtrac.com/redirect.mp3/m.example/1.mp3")
    parsed = feedparser.parse(_render([_listing(1), copy]))
    assert len(parsed.entries) == 1
    assert "Also in 1 other podcast." in parsed.entries[0].summary


def test_feed_holds_the_latest_100() -> None:
    parsed = feedparser.parse(_render([_listing(i) for i in range(FEED_LIMIT + 20)]))
    assert len(parsed.entries) == FEED_LIMIT
    assert parsed.entries[0].title.startswith("Episode 0 ")


def test_feed_supplied_urls_must_be_http() -> None:
    """The same http(s)-only rule as the page and the mail: a javascript: link or
    enclosure from someone's feed never reaches a listener's podcast app."""
    from datetime import UTC, datetime

    from earshot.models import MatchedEpisode, Topic
    from earshot.topics.feed import render_topic_feed

    now = datetime(2026, 11, 26, tzinfo=UTC)
    topic = Topic(slug="t", name="T", query="x")
    bad = MatchedEpisode(feed_id="f1", episode_id="e1", podcast="P", title="Bad", published=now,
                         audio_url="javascript:alert(1)")
    good = MatchedEpisode(feed_id="f2", episode_id="e2", podcast="Q", title="Good", published=now,
                          audio_url="https://cdn.example/e2.mp3", link="javascript:alert(2)")
    xml = render_topic_feed(topic, [bad, good], now=now, page_url="https://e.example/topics/t",
                            feed_url="https://e.example/topics/t/feed.xml").decode()
    assert "javascript:" not in xml
    assert "https://cdn.example/e2.mp3" in xml and "<title>Bad</title>" not in xml


def test_episodes_sharing_a_publisher_guid_get_distinct_item_guids() -> None:
    # Given two episodes of one feed that its publisher gave one guid (earshot.identity
    # told them apart), and one stored without a title
    a = _listing(1, guid="platform-guid", episode_id="platform-guid#0f3a9c2b7d11")
    b = _listing(2, guid="platform-guid", episode_id="platform-guid#9e1b44c0a2f5", title="")
    parsed = feedparser.parse(_render([a, b]))
    # Then each item has a guid of its own, and a title
    assert [e.id for e in parsed.entries] == ["platform-guid#0f3a9c2b7d11", "platform-guid#9e1b44c0a2f5"]
    assert [e.title for e in parsed.entries] == ["Episode 1 & <more>", "Untitled episode"]
