"""The topic page: well-formed, self-contained, chart present, hostile feed text escaped;
an in-page player per playable enclosure, "play from" where a transcript matched, and the
topic's feed offered to podcast apps."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from earshot.models import MatchedEpisode, Topic, TranscriptMoment
from earshot.topics.pages import CONTENT_SECURITY_POLICY, PLAYER_SCRIPT, render_topic_page, script_hash
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
        self.scripts: list[str] = []

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
        if self.stack and self.stack[-1] == "script":
            self.scripts.append(data)
        else:
            self.text.append(data)

    def all(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def _listing(ep_id: str, year: int, **kw: object) -> MatchedEpisode:
    base = dict(feed_id="f1", episode_id=ep_id, podcast="The Midstream Minute", title=f"MLPs in {year}",
                published=datetime(year, 5, 1, tzinfo=UTC), duration_seconds=1800,
                audio_url=f"https://m.example/{ep_id}.mp3", summary="Distribution coverage.",
                reason='MLPs in title; "midstream" in description')
    return MatchedEpisode(**{**base, **kw})


FEED_URL = "https://e.example/topics/mlp-finance/feed.xml"


def _render(listings: list[MatchedEpisode], feed_url: str | None = FEED_URL) -> tuple[str, _Checker]:
    topic = Topic(slug="mlp-finance", name="MLPs & <partnerships>", query='MLP "midstream"',
                  description=HOSTILE)
    html = render_topic_page(topic, build_report(listings, now=NOW), now=NOW, feed_url=feed_url)
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
    # No transcript moment, so no script at all; with one, see test_play_from_* below.
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


def test_served_page_has_the_digest_form_and_a_written_file_has_none() -> None:
    topic = Topic(slug="mlp-finance", name="MLPs", query="MLP")
    report = build_report([_listing("a", 2025)], now=NOW)
    served = render_topic_page(topic, report, now=NOW, subscribe_url="https://api.example/subscriptions")
    page = _Checker()
    page.feed(served)
    forms = [a for t, a in page.tags if t == "form"]
    assert forms == [{"class": "subscribe", "method": "post", "action": "https://api.example/subscriptions"}]
    inputs = {a["name"]: a for t, a in page.tags if t == "input"}
    assert inputs["topic"]["value"] == "mlp-finance" and inputs["email"]["type"] == "email"
    assert page.errors == []
    assert "<form" not in render_topic_page(topic, report, now=NOW)


# ------------------------------------------------------------------ the in-page player

HTTPS = "https://cdn.example/ep.mp3?x=1&y=2"


@pytest.mark.parametrize(("audio_url", "player_src"), [
    (HTTPS, HTTPS),
    ("http://cdn.example/ep.mp3", "http://cdn.example/ep.mp3"),
    ("  https://cdn.example/ep.mp3\n", "https://cdn.example/ep.mp3"),  # feed whitespace trimmed
    ("https://cdn.example/it's.mp3", "https://cdn.example/it's.mp3"),  # a quote the attribute escapes
    (None, None),
    ("", None),
    ("javascript:alert(1)", None),
    (" JaVaScRiPt:alert(1)", None),
    ("data:audio/mpeg;base64,SUQz", None),
    ("vbscript:msgbox(1)", None),
    ("file:///etc/passwd", None),
    ("ftp://cdn.example/ep.mp3", None),
    ("//cdn.example/ep.mp3", None),  # scheme-relative: not plain http(s)
    ("ep.mp3", None),  # relative: the parser makes enclosures absolute, anything else is dropped
    ('https://cdn.example/a.mp3" onerror="alert(1)', None),  # attribute breakout
    ("https://cdn.example/a.mp3><script>alert(1)</script>", None),
    ("https://cdn.example/a b.mp3", None),
])
def test_player_only_for_a_plain_http_enclosure(audio_url: str | None, player_src: str | None) -> None:
    html, page = _render([_listing("a", 2025, audio_url=audio_url)])
    assert page.errors == [] and page.stack == []
    players = page.all("audio")
    if player_src is None:
        assert players == [] and "Download the episode" not in html
    else:
        (player,) = players
        assert player["src"] == player_src
        assert player["preload"] == "none" and "controls" in player and "autoplay" not in player
        assert [a["href"] for a in page.all("a") if a.get("href") == player_src]  # the fallback link
    assert all(not k.startswith("on") for _, attrs in page.tags for k in attrs)
    assert not page.all("script") and "javascript:" not in html.lower()


def test_one_player_per_playable_episode() -> None:
    listings = [_listing("a", 2026), _listing("b", 2025, audio_url="javascript:x", link="https://web.example/b"),
                _listing("c", 2024, audio_url=None, link="https://web.example/c"), _listing("d", 2023)]
    html, page = _render(listings)
    assert [a["src"] for a in page.all("audio")] == ["https://m.example/a.mp3", "https://m.example/d.mp3"]
    # An episode without a player keeps its "Listen" link out of the page (when it is safe);
    # one with a player does not need it.
    assert html.count(">Listen</a>") == 1 and '<a href="https://web.example/c">Listen</a>' in html


@pytest.mark.parametrize(("seconds", "shown", "iso"), [
    (1800, "30:00", "PT1800S"), (3725, "1:02:05", "PT3725S"), (59, "0:59", "PT59S"), (None, None, None),
])
def test_player_shows_the_length_before_anything_loads(seconds: int | None, shown: str | None,
                                                       iso: str | None) -> None:
    html, page = _render([_listing("a", 2025, duration_seconds=seconds)])
    lengths = [a for a in page.all("time") if (a.get("datetime") or "").startswith("PT")]
    if shown is None:
        assert lengths == [] and "Length" not in html
    else:
        assert [a["datetime"] for a in lengths] == [iso]
        assert f"Length <time datetime=\"{iso}\">{shown}</time>" in html


@pytest.mark.parametrize("title", [
    HOSTILE, '" onmouseover="alert(1)', "'><svg onload=alert(1)>", "</audio><script>alert(1)</script>",
    "{{ 7*7 }}", "Tom & Jerry's <b>bold</b> \"pick\"",
])
def test_hostile_titles_stay_text_in_the_player(title: str) -> None:
    html, page = _render([_listing("a", 2025, title=title, moment=TranscriptMoment(start_seconds=5, text=title))])
    assert page.errors == [] and page.stack == []
    (player,) = page.all("audio")
    assert player["aria-label"] == f"Play {title}"  # the parser decodes what the template escaped
    assert all(not k.startswith("on") for _, attrs in page.tags for k in attrs)
    assert not [t for t, _ in page.tags if t in ("img", "iframe")] and len(page.all("svg")) == 1  # the chart
    assert len(page.all("script")) == 1 and page.scripts == [PLAYER_SCRIPT]  # ours, nothing injected
    assert title in "".join(page.text)  # shown as the text it is (not evaluated, not markup)


# ---------------------------------------------------------------- play from a transcript moment


@pytest.mark.parametrize(("moment", "audio_url", "control"), [
    (TranscriptMoment(start_seconds=754, text="MLP payouts"), "https://m.example/a.mp3",
     ("https://m.example/a.mp3#t=754", "754", "Play from 12:34")),
    (TranscriptMoment(start_seconds=3725), "https://m.example/a.mp3#old",
     ("https://m.example/a.mp3#t=3725", "3725", "Play from 1:02:05")),
    (TranscriptMoment(start_seconds=0), "http://m.example/a.mp3", ("http://m.example/a.mp3#t=0", "0", "Play from 0:00")),
    (None, "https://m.example/a.mp3", None),  # no transcript moment: no control, no script
    (TranscriptMoment(start_seconds=754), None, None),  # nothing to play: no control
    (TranscriptMoment(start_seconds=754), "javascript:alert(1)", None),
])
def test_play_from_only_where_a_transcript_matched(moment: TranscriptMoment | None, audio_url: str | None,
                                                   control: tuple[str, str, str] | None) -> None:
    html, page = _render([_listing("a", 2025, audio_url=audio_url, moment=moment)])
    controls = page.all("a", **{"class": "play-from"})
    if control is None:
        assert controls == [] and "Play from" not in html and not page.all("script")
        return
    href, start, label = control
    assert [(c["href"], c["data-start"]) for c in controls] == [(href, start)]
    assert label in "".join(page.text)
    # The one script is ours and the page's policy allows exactly it.
    assert page.scripts == [PLAYER_SCRIPT] and page.all("script") == [{}]
    assert f"script-src {script_hash(PLAYER_SCRIPT)}" in CONTENT_SECURITY_POLICY


def test_moment_text_is_escaped() -> None:
    html, page = _render([_listing("a", 2025, moment=TranscriptMoment(start_seconds=9, text=HOSTILE))])
    assert page.errors == [] and "&lt;script&gt;alert" in html
    assert page.scripts == [PLAYER_SCRIPT]


# ---------------------------------------------------------------- the page's policy


def _directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}


def test_policy_allows_enclosure_hosts_and_only_our_script() -> None:
    directives = _directives(CONTENT_SECURITY_POLICY)
    assert directives["default-src"] == ["'none'"]
    assert set(directives["media-src"]) >= {"http:", "https:"}  # any podcast host, redirects included
    assert directives["script-src"] == [script_hash(PLAYER_SCRIPT)]
    assert "'unsafe-inline'" not in directives["script-src"]
    _, page = _render([_listing("a", 2025)])
    (meta,) = page.all("meta", **{"http-equiv": "Content-Security-Policy"})
    assert meta["content"] == CONTENT_SECURITY_POLICY


# ---------------------------------------------------------------- follow in a podcast app


def test_follow_link_and_feed_discovery() -> None:
    html, page = _render([_listing("a", 2025)])
    (alternate,) = page.all("link", rel="alternate")
    assert alternate["type"] == "application/rss+xml" and alternate["href"] == FEED_URL
    assert html.index("<link rel=\"alternate\"") < html.index("</head>")
    follow = [a for a in page.all("a") if a.get("href") == FEED_URL]
    assert follow and follow[0]["class"] == "follow-link"
    assert "Follow in your podcast app" in "".join(page.text)


def test_no_feed_url_no_follow_link() -> None:
    html, page = _render([_listing("a", 2025)], feed_url=None)
    assert page.all("link", rel="alternate") == [] and "Follow in your podcast app" not in html


def test_an_episode_stored_without_a_title_is_never_an_empty_link() -> None:
    # Episodes stored before untitled items got fallback titles may have an empty title.
    html, checker = _render([_listing("untitled", 2025, title=""), _listing("titled", 2024)])
    assert not checker.errors
    assert '.mp3">Untitled episode</a>' in html
    assert "></a>" not in html


def test_an_archive_page_says_when_it_had_episodes_and_ranks_by_them() -> None:
    # Every episode older than a year: no "About no episodes ... over the last 12 months".
    html, page = _render([_listing(f"e{year}", year) for year in (2019, 2020, 2021)])
    text = " ".join(" ".join(page.text).split())
    assert "1 episode a year from May 2019 to May 2021." in text
    assert "no episodes" not in text.lower()
    assert "The Midstream Minute — 3 episodes, latest 1 May 2021" in text
