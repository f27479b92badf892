"""Rendering a digest (pure): content, escaping, subject, placeholder substitution."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from earshot.mail.digest import RenderedDigest, render_digest
from earshot.models import MatchedEpisode, Topic
from earshot.topics.stats import BestPodcast, EpisodeCard, TopicReport, build_report

TOPIC = Topic(slug="mlp-finance", name="MLPs <&> midstream", query="MLP")


def card(**changes: object) -> EpisodeCard:
    base = dict(podcast="Pipeline Pod", title="MLPs rally", guid="g1", episode_id="e1", feed_id="f1",
                published=datetime(2025, 1, 8, tzinfo=UTC), duration_seconds=3725, has_transcript=True,
                summary="Midstream names led.", listen_url="https://cdn.example/e1.mp3",
                reason="MLPs in title", also_in=2)
    return EpisodeCard.model_validate(base | changes)


def report(cards: list[EpisodeCard]) -> TopicReport:
    return TopicReport(podcasts=3, episodes=12, duplicates_folded=1, avg_duration_seconds=2400,
                       cadence="1 episode a week", latest=datetime(2025, 1, 8, tzinfo=UTC),
                       per_year={"2023": 3, "2024": 9}, latest_episodes=cards,
                       best_podcasts=[BestPodcast(podcast="Pipeline Pod", feed_id="f1", episodes_last_12_months=9, latest=None)])


def render(cards: list[EpisodeCard]) -> RenderedDigest:
    return render_digest(TOPIC, report(cards), week="2025-W02", base_url="https://api.example", domain="earshot.example")


def test_everything_the_digest_promises_is_in_both_parts() -> None:
    d = render([card()])
    assert d.subject == "MLPs <&> midstream: 1 new podcast episode this week"
    for needle in ("Pipeline Pod", "MLPs rally", "8 Jan 2025", "1 h 2 min", "also in 2 podcasts",
                   "Why it matched: MLPs in title", "https://cdn.example/e1.mp3", "1 episode a week",
                   "6 Jan 2025", "12 Jan 2025"):
        assert needle in d.html and needle in d.text, needle
    assert "TRANSCRIPT" in d.html and "[transcript]" in d.text
    assert 'width="33%"' in d.html and 'width="100%"' in d.html  # 2023 and 2024 bars
    assert "MLPs &lt;&amp;&gt; midstream" in d.html


def test_feed_markup_is_escaped_and_unsafe_links_dropped() -> None:
    d = render([card(title="<script>alert(1)</script>", podcast='"><img src=x onerror=alert(1)>',
                     listen_url="javascript:alert(1)")])
    assert "<script>" not in d.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in d.html
    assert "<img" not in d.html
    assert "javascript:" not in d.html and "javascript:" not in d.text


def test_personalize_replaces_only_the_placeholder() -> None:
    d = render([card()])
    assert d.html.count(d.placeholder) == 1 and d.text.count(d.placeholder) == 1
    text, html = d.personalize("https://api.example/unsubscribe?token=abc")
    assert d.placeholder not in text + html
    assert 'href="https://api.example/unsubscribe?token=abc"' in html


def test_placeholder_is_random_per_render() -> None:
    assert render([card()]).placeholder != render([card()]).placeholder


def test_many_episodes_are_capped_with_a_link_to_the_rest() -> None:
    d = render([card(episode_id=f"e{i}", title=f"Episode {i}") for i in range(30)])
    assert d.episode_count == 30 and d.subject.endswith("30 new podcast episodes this week")
    assert "Episode 24" in d.html and "Episode 25" not in d.html
    assert "5 more on the topic page" in d.html


def test_empty_week_says_so() -> None:
    d = render([])
    assert d.subject == "MLPs <&> midstream: no new podcast episodes this week"
    assert "No new episodes matched" in d.text


def test_round_trips_through_storage_form() -> None:
    d = render([card()])
    assert RenderedDigest.from_bytes(d.to_bytes()) == d
    assert len(d.to_bytes()) < len(d.html) / 2


@pytest.mark.parametrize("week", ["2025-2", "2025W02", "bad"])
def test_malformed_week_is_refused(week: str) -> None:
    with pytest.raises(ValueError):
        render_digest(TOPIC, report([]), week=week, base_url="https://x", domain="e.example")


def test_footer_offers_the_topic_feed_in_both_parts() -> None:
    d = render([card()])
    feed = "https://api.example/topics/mlp-finance/feed.xml"
    assert f"Follow in your podcast app (RSS): {feed}" in d.text
    footer = d.html[d.html.index("You get this email"):]
    assert f'<a href="{feed}" style="color:#71717a;">Follow in your podcast app</a>' in footer


def test_an_episode_without_a_title_is_named_in_both_parts() -> None:
    listing = MatchedEpisode(feed_id="f1", episode_id="e1", podcast="Pipeline Pod", title=" ",
                             published=datetime(2025, 1, 8, tzinfo=UTC), audio_url="https://cdn.example/e1.mp3")
    built = build_report([listing], now=datetime(2025, 1, 10, tzinfo=UTC))
    d = render_digest(TOPIC, built, week="2025-W02", base_url="https://api.example", domain="earshot.example")
    assert built.latest_episodes[0].title == "Untitled episode"
    assert "Untitled episode</a>" in d.html and "* Untitled episode" in d.text
