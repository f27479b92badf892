"""The topic page: well-formed, self-contained, chart present, hostile feed text escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser

from earshot.models import MatchedEpisode, Topic
from earshot.topics.pages import render_topic_page
from earshot.topics.stats import RANK_RULE, build_report

NOW = datetime(2026, 11, 26, tzinfo=UTC)
VOID = {"meta", "link", "br", "img", "hr", "input", "source"}
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _listing(ep_id: str, year: int, **kw: object) -> MatchedEpisode:
    base = dict(feed_id="f1", episode_id=ep_id, podcast="The Midstream Minute", title=f"MLPs in {year}",
                published=datetime(year, 5, 1, tzinfo=UTC), duration_seconds=1800,
                audio_url=f"https://m.example/{ep_id}.mp3", summary="Distribution coverage.",
                reason='MLPs in title; "midstream" in description')
    return MatchedEpisode(**{**base, **kw})


def _render(listings: list[MatchedEpisode]) -> tuple[str, _Checker]:
    topic = Topic(slug="mlp-finance", name="MLPs & <partnerships>", query='MLP "midstream"',
                  description=HOSTILE)
    html = render_topic_page(topic, build_report(listings, now=NOW), now=NOW, feed_url="https://e.example/feed.xml")
    checker = _Checker()
    checker.feed(html)
    checker.close()
    return html, checker


def test_page_is_well_formed_with_chart_and_everything_the_issue_lists() -> None:
    listings = [
        _listing("a", 2024, has_transcript=True),
        _listing("b", 2026, title="Syndicated"),
        _listing("c", 2026, feed_id="f2", podcast="Energy Capital Weekly", title="Syndicated",
                 published=datetime(2026, 5, 2, tzinfo=UTC)),
    ]
    html, page = _render(listings)
    assert page.errors == [] and page.stack == []
    assert html.startswith("<!DOCTYPE html>")
    # Chart: one bar per year 2024..2026, the empty 2025 included.
    rects = [a for t, a in page.tags if t == "rect"]
    assert len(rects) == 3 and any(t == "svg" for t, _ in page.tags)
    assert [a["height"] for a in rects][1] == "0"
    text = " ".join(page.text)
    for expected in ("Transcript available", "also in 1 podcast", RANK_RULE, "Why it matched:",
                     "MLPs in title", "Energy Capital Weekly", "Average length", "30 min"):
        assert expected in text, expected


def test_page_is_self_contained() -> None:
    _, page = _render([_listing("a", 2025)])
    assert not [t for t, _ in page.tags if t in ("script", "img", "iframe", "object")]
    stylesheets = [a for t, a in page.tags if t == "link" and a.get("rel") == "stylesheet"]
    assert stylesheets == []


def test_hostile_feed_text_is_escaped() -> None:
    evil = _listing("x", 2025, title=HOSTILE, podcast='"><svg onload=alert(1)>', summary=HOSTILE,
                    reason=HOSTILE, audio_url="javascript:alert(1)")
    html, page = _render([evil])
    assert page.errors == []
    assert not [t for t, _ in page.tags if t in ("script", "img")]
    assert all(not k.startswith("on") for _, attrs in page.tags for k in attrs)
    assert "javascript:" not in html
    assert "&lt;script&gt;" in html


def test_empty_topic_page() -> None:
    html, page = _render([])
    assert page.errors == [] and "No episodes match this topic yet." in html


def test_an_archive_page_says_when_it_had_episodes_and_ranks_by_them() -> None:
    # Every episode older than a year: no "About no episodes ... over the last 12 months".
    html, page = _render([_listing(f"e{year}", year) for year in (2019, 2020, 2021)])
    text = " ".join(" ".join(page.text).split())
    assert "1 episode a year from May 2019 to May 2021." in text
    assert "no episodes" not in text.lower()
    assert "The Midstream Minute — 3 episodes, latest 1 May 2021" in text
