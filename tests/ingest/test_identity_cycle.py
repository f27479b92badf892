"""Episode identity and new shows through the real ingest path, on both backends:

- ``aws``: the real dispatcher and fetch-worker handlers under moto (``EmbeddedBackend``,
  the table and queues from template.yaml), as in tests/ingest/test_cycle.py;
- ``local``: the ``earshot`` CLI on its SQLite database (``feeds add``, ``topics add``,
  ``run --all``).

Feeds come from a loopback server whose body each test changes between cycles. The
promise under test: no episode is ever lost, none is stored twice, and no stored episode
changes its id -- while items share guids, while a guid becomes shared, and after the
feed drops items.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest

from earshot import runtime
from earshot.ingest.refresh import new_feed
from earshot.models import Episode, FeedState, Topic
from earshot.store import Store
from earshot.topics.matching import clear_topic_cache
from earshot_local.cli import main
from earshot_local.sqlite_store import SqliteStore
from tests.support.aws_stack import EmbeddedBackend, sample_event
from tests.support.feedserver import FeedServer, Serve

NOW = datetime.now(UTC)
SHARED = "platform-stamped-guid"


def item(guid: str | None, n: int, *, title: str | None = None, cdn: str = "https://cdn.example") -> str:
    guid_tag = f"<guid isPermaLink='false'>{guid}</guid>" if guid else ""
    return (f"<item><title>{title or f'Episode {n}'}</title>{guid_tag}"
            f"<pubDate>{(NOW - timedelta(days=30 - n)).strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate>"
            f"<enclosure url='{cdn}/ep-{n}.mp3' type='audio/mpeg' length='{n}'/></item>")


def rss(*items: str, title: str = "Loopback Radio") -> bytes:
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>{title}</title>"
            f"<link>https://loopback.example/</link><description>d</description>{''.join(items)}"
            "</channel></rss>").encode()


class Backend(Protocol):
    def add(self, url: str) -> str: ...
    def add_topic(self, slug: str, query: str) -> None: ...
    def cycle(self) -> None: ...
    def store(self) -> Store: ...


class AwsBackend:
    """Dispatcher (forced, as `earshot run` does) and worker handlers under moto."""

    def __init__(self, stack: EmbeddedBackend) -> None:
        self.stack = stack

    def add(self, url: str) -> str:
        feed = new_feed(url, NOW - timedelta(minutes=1))
        runtime.store().add_feed(feed)
        return feed.feed_id

    def add_topic(self, slug: str, query: str) -> None:
        runtime.store().create_topic(Topic(slug=slug, name=slug, query=query))
        clear_topic_cache()

    def cycle(self) -> None:
        self.stack.invoke("dispatcher", {**sample_event("dispatcher_scheduled"), "force": True})
        responses = self.stack.drain_queue("fetch_worker", self.stack.settings.fetch_queue_url)
        assert all(r["batchItemFailures"] == [] for r in responses)

    def store(self) -> Store:
        return runtime.store()


class LocalBackend:
    """The local product: the CLI on the SQLite file EARSHOT_DB names (tests/conftest.py)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.added: list[str] = []

    def add(self, url: str) -> str:
        assert main(["feeds", "add", url]) == 0
        self.added.append(self.capsys.readouterr().out)
        (feed,) = [f for f in self.store().list_feeds() if f.url == url]
        return feed.feed_id

    def add_topic(self, slug: str, query: str) -> None:
        assert main(["topics", "add", slug, "--name", slug, "--query", query]) == 0
        self.capsys.readouterr()

    def cycle(self) -> None:
        assert main(["run", "--all"]) == 0
        assert "errors: none" in self.capsys.readouterr().out

    def store(self) -> Store:
        return SqliteStore(os.environ["EARSHOT_DB"])


@pytest.fixture(params=["aws", "local"])
def backend(request: pytest.FixtureRequest, feed_server: FeedServer,
            capsys: pytest.CaptureFixture[str]) -> Iterator[Backend]:
    if request.param == "local":
        yield LocalBackend(capsys)
        return
    with EmbeddedBackend(extra_env={"EARSHOT_ALLOWED_HOSTS": ",".join(feed_server.authorities)}) as stack:
        yield AwsBackend(stack)


def stored(backend: Backend, feed_id: str) -> dict[str, Episode]:
    return {e.id: e for e in backend.store().list_episodes(feed_id)}


def state(backend: Backend, feed_id: str) -> FeedState:
    feed = backend.store().get_feed(feed_id)
    assert feed is not None
    return feed


def by_title(episodes: dict[str, Episode]) -> dict[str, str]:
    titles = {e.title: e.id for e in episodes.values()}
    assert len(titles) == len(episodes), "no episode is stored twice"
    return titles


def test_items_sharing_a_guid_are_all_kept_through_growth_truncation_and_dissolving(
        backend: Backend, feed_server: FeedServer) -> None:
    # Given a feed whose platform stamps one guid on three distinct episodes, plus one other
    url = feed_server.route("/shared.xml", Serve(rss(item(SHARED, 3), item(SHARED, 2), item(SHARED, 1),
                                                     item("unique-0", 0))))
    fid = backend.add(url)
    backend.cycle()
    first = by_title(stored(backend, fid))
    assert set(first) == {"Episode 0", "Episode 1", "Episode 2", "Episode 3"}
    assert first["Episode 0"] == "unique-0" and all(first[f"Episode {n}"].startswith(SHARED + "#") for n in (1, 2, 3))
    assert "3 items share 1 guid" in " ".join(state(backend, fid).parse_warnings or []), "the feed records it"

    # When a fourth episode arrives with the same guid and the feed drops its oldest items
    feed_server.route("/shared.xml", Serve(rss(item(SHARED, 4), item(SHARED, 3), item(SHARED, 2))))
    backend.cycle()
    # Then every episode is still stored, each once, under the id it was first given
    second = by_title(stored(backend, fid))
    assert set(second) == {"Episode 0", "Episode 1", "Episode 2", "Episode 3", "Episode 4"}
    assert {t: second[t] for t in first} == first
    assert state(backend, fid).episode_count == 5

    # When the feed lists only one item with that guid (the group dissolves)
    feed_server.route("/shared.xml", Serve(rss(item(SHARED, 4))))
    backend.cycle()
    # Then that item keeps the id it was stored under: nothing new, nothing lost
    third = by_title(stored(backend, fid))
    assert third == second
    assert state(backend, fid).episode_count == 5 and state(backend, fid).parse_warnings == []


def test_an_episode_stored_before_its_guid_was_shared_keeps_its_id(backend: Backend, feed_server: FeedServer) -> None:
    # Given an episode stored under its plain guid (as every episode was before the
    # identity rule, and as any episode is while its guid is unique)
    url = feed_server.route("/later.xml", Serve(rss(item("ep-guid", 1, title="Original"))))
    fid = backend.add(url)
    backend.cycle()
    assert set(stored(backend, fid)) == {"ep-guid"}

    # When the publisher copies that guid onto a new episode, and edits the old one's title
    feed_server.route("/later.xml", Serve(rss(item("ep-guid", 2, title="Copied guid"),
                                              item("ep-guid", 1, title="Original (edited)"))))
    backend.cycle()

    # Then the stored episode keeps its id and takes the edit; the new one gets its own id
    episodes = stored(backend, fid)
    assert episodes["ep-guid"].title == "Original (edited)"
    assert by_title(episodes).keys() == {"Original (edited)", "Copied guid"}
    assert by_title(episodes)["Copied guid"].startswith("ep-guid#")
    assert state(backend, fid).episode_count == 2

    # And a later fetch of the same document changes nothing
    feed_server.route("/later.xml", Serve(rss(item("ep-guid", 2, title="Copied guid"),
                                              item("ep-guid", 1, title="Original (edited)"),
                                              item("other", 3, title="Third"))))
    backend.cycle()
    assert {k: v.title for k, v in stored(backend, fid).items()} == {**{k: v.title for k, v in episodes.items()},
                                                                     "other": "Third"}


def test_a_new_show_is_stored_checked_on_schedule_and_matches_its_first_episode(
        backend: Backend, feed_server: FeedServer) -> None:
    # Given a topic, and a show that has published its channel but no episode yet
    backend.add_topic("pipelines", "pipeline")
    url = feed_server.route("/new-show.xml", Serve(rss(title="Pipeline Weekly")))
    fid = backend.add(url)
    if isinstance(backend, LocalBackend):
        assert backend.added == [f"added {url}  (Pipeline Weekly, 0 episodes yet)\n"]

    # When it is checked
    backend.cycle()

    # Then it is a healthy feed with 0 episodes, due again on schedule
    feed = state(backend, fid)
    assert (feed.status, feed.last_result, feed.error_count, feed.episode_count) == ("active", "parsed", 0, 0)
    assert feed.title == "Pipeline Weekly" and feed.last_error_kind is None
    assert feed.next_check_at is not None and feed.next_check_at > feed.last_checked_at
    assert fid in {f.feed_id for f in backend.store().due_feeds(NOW, include_not_due=True)}

    # When its first episode appears
    feed_server.route("/new-show.xml", Serve(rss(item("first", 1, title="Pipeline politics"),
                                                 title="Pipeline Weekly")))
    backend.cycle()

    # Then it is stored and matched to the topic
    assert set(stored(backend, fid)) == {"first"}
    assert [(m.feed_id, m.episode_id) for m in backend.store().list_matches("pipelines")] == [(fid, "first")]
    assert state(backend, fid).last_new_episode_at is not None
