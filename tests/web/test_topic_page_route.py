"""GET /topics/<slug> over a real socket (``earshot serve``'s WSGI app): the page's
Content-Security-Policy lets its players load their enclosures, and the feed the page
advertises for podcast apps is there and parses."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import feedparser
import pytest

from earshot.models import MatchedEpisode, Topic, TranscriptMoment
from earshot.topics.pages import CONTENT_SECURITY_POLICY, PLAYER_SCRIPT, script_hash
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import domain_settings
from tests.support.api_server import serving_api

SLUG = "pipes"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


@pytest.fixture
def site() -> Iterator[str]:
    with serving_api() as base, LocalRuntime(settings=domain_settings().with_(public_base_url=base)) as local:
        now = datetime.now(UTC)
        local.store.create_topic(Topic(slug=SLUG, name="Pipes & <Pumps>", query="pipes", created_at=now,
                                       updated_at=now))
        local.store.replace_topic_matches(SLUG, [
            MatchedEpisode(feed_id="f1", episode_id="a", podcast="Pod A", title="Pipes at scale",
                           published=now - timedelta(days=1), duration_seconds=754,
                           audio_url="https://cdn-a.example/a.mp3", audio_type="audio/mpeg",
                           moment=TranscriptMoment(start_seconds=61, text="pipes")),
            MatchedEpisode(feed_id="f2", episode_id="b", podcast="Pod B", title="Plain http pipes",
                           published=now - timedelta(days=2), audio_url="http://cdn-b.example/b.mp3"),
            MatchedEpisode(feed_id="f3", episode_id="c", podcast="Pod C", title="Hostile enclosure",
                           published=now - timedelta(days=3), audio_url="javascript:alert(1)"),
        ])
        yield base


def _get(url: str) -> tuple[dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
        return dict(response.headers.items()), response.read()


def test_the_page_policy_lets_every_player_load_its_enclosure(site: str) -> None:
    headers, body = _get(f"{site}/topics/{SLUG}")
    page = _Tags()
    page.feed(body.decode("utf-8"))
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    directives = {d.split()[0]: d.split()[1:] for d in CONTENT_SECURITY_POLICY.split("; ")}
    players = [a["src"] for t, a in page.tags if t == "audio"]
    assert players == ["https://cdn-a.example/a.mp3", "http://cdn-b.example/b.mp3"]  # none for javascript:
    for src in players:
        assert f"{(src or '').split(':')[0]}:" in directives["media-src"], src
    # The one moment brings the one script, which the header allows by hash.
    assert page.scripts == [PLAYER_SCRIPT] and directives["script-src"] == [script_hash(PLAYER_SCRIPT)]


def test_the_advertised_feed_is_there_and_parses(site: str) -> None:
    _, body = _get(f"{site}/topics/{SLUG}")
    page = _Tags()
    page.feed(body.decode("utf-8"))
    (alternate,) = [a for t, a in page.tags if t == "link" and a.get("rel") == "alternate"]
    feed_url = f"{site}/topics/{SLUG}/feed.xml"
    assert alternate["type"] == "application/rss+xml" and alternate["href"] == feed_url
    assert any(t == "a" and a.get("href") == feed_url and a.get("class") == "follow-link" for t, a in page.tags)

    headers, xml = _get(feed_url)
    assert headers["Content-Type"].startswith("application/rss+xml")
    parsed = feedparser.parse(xml)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.title == "Pipes & <Pumps> · Earshot"
    # What a podcast app gets is what the page plays.
    assert [e.enclosures[0].href for e in parsed.entries] == ["https://cdn-a.example/a.mp3", "http://cdn-b.example/b.mp3"]
