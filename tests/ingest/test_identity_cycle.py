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
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest

from earshot import runtime
from earshot.ingest.parser import parse_feed
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


# ------------------------------------------------ a feed bigger than a batch
# The refresh stores a feed's episodes a batch at a time (earshot.ingest.parser's
# EPISODE_BATCH, 500): these feeds span three batches, and their shared guids span batches.
BIG = 1_234
TOPIC_EVERY = 100  # every 100th episode's title says "pipeline"


def big_item(n: int, *, guid: str | None = None, title: str | None = None, audio: int | None = None) -> str:
    """Item ``n`` of a big feed (0 is the newest, an hour apart)."""
    words = "Pipeline politics" if n % TOPIC_EVERY == 0 else "Talk"
    return (f"<item><title>{title or f'{words} {n}'}</title><guid isPermaLink='false'>{guid or f'g-{n}'}</guid>"
            f"<pubDate>{(NOW - timedelta(hours=n)).strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate>"
            f"<description>&lt;p&gt;Notes for episode {n}.&lt;/p&gt;</description>"
            f"<enclosure url='https://cdn.example/big/{n if audio is None else audio}.mp3' type='audio/mpeg' "
            "length='1'/></item>")


def big_feed(count: int = BIG, *, description: str = "d", first: str = "",
             edits: dict[int, str] | None = None) -> bytes:
    """Items 0..count-1; items 450 and 1100 carry item 10's guid (other audio: three
    episodes), item 900 repeats item 20 exactly (one episode); ``edits`` retitles items."""
    def listed(n: int) -> str:
        if n in (450, 1100):
            return big_item(n, guid="g-10")
        if n == 900:
            return big_item(20)
        return big_item(n, title=(edits or {}).get(n))
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Big Show</title>"
            f"<link>https://loopback.example/</link><description>{description}</description>{first}"
            + "".join(listed(n) for n in range(count)) + "</channel></rss>").encode()


def as_stored(episodes: Iterable[Episode]) -> dict[str, dict]:
    return {e.id: e.model_dump(mode="json", exclude={"feed_id", "content_hash"}) for e in episodes}


def test_a_feed_bigger_than_a_batch_is_stored_as_one_parse_gives_it_and_never_loses_an_episode(
        backend: Backend, feed_server: FeedServer) -> None:
    # Given a topic and a feed of 1,234 items whose shared guids span the refresh's batches
    backend.add_topic("pipelines", "pipeline")
    body = big_feed()
    url = feed_server.route("/big.xml", Serve(body))
    fid = backend.add(url)

    # When it is checked
    backend.cycle()

    # Then every episode the whole document gives is stored, as it gives it
    whole = parse_feed(body, url=url)
    assert len(whole.episodes) == BIG - 1, "item 900 repeats item 20"
    first = stored(backend, fid)
    assert as_stored(first.values()) == as_stored(whole.episodes)
    assert sum(i.startswith("g-10#") for i in first) == 3 and "g-10" not in first
    feed = state(backend, fid)
    assert feed.episode_count == BIG - 1 and feed.last_new_episode_at is not None
    warnings = " ".join(feed.parse_warnings or [])
    assert "5 items share 2 guids" in warnings and "1 repeated item skipped" in warnings
    # and each batch was matched: the topic has its episodes from all three
    matched = {m.episode_id for m in backend.store().list_matches("pipelines")}
    assert matched == {e.id for e in whole.episodes if e.title.startswith("Pipeline")}
    assert len(matched) == BIG // TOPIC_EVERY  # 0, 100, ... 1200 less 900 (a repeat of 20)

    # When it is checked again with a different body but the same items
    feed_server.route("/big.xml", Serve(big_feed(description="new channel description")))
    backend.cycle()
    # Then nothing is new, nothing changed
    again = state(backend, fid)
    assert as_stored(stored(backend, fid).values()) == as_stored(first.values())
    assert (again.last_result, again.episode_count) == ("parsed", BIG - 1)
    assert again.last_new_episode_at == feed.last_new_episode_at

    # When the feed drops all but its newest 300 items (item 10's guid is no longer shared)
    feed_server.route("/big.xml", Serve(big_feed(300)))
    backend.cycle()
    # Then no episode is lost and none changes its id
    assert as_stored(stored(backend, fid).values()) == as_stored(first.values())
    assert state(backend, fid).episode_count == BIG - 1


def test_a_guid_copied_from_a_later_batch_keeps_the_stored_episode_its_id(
        backend: Backend, feed_server: FeedServer) -> None:
    # Given a big feed, stored
    url = feed_server.route("/copied.xml", Serve(big_feed()))
    fid = backend.add(url)
    backend.cycle()
    assert stored(backend, fid)["g-1000"].title == "Pipeline politics 1000"

    # When a new episode on top copies the guid of item 1000 (in the third batch), whose
    # title is edited in the same fetch
    newcomer = big_item(-1, guid="g-1000", title="Copied guid", audio=5000)
    feed_server.route("/copied.xml", Serve(big_feed(first=newcomer, edits={1000: "Edited 1000"})))
    backend.cycle()

    # Then the stored episode keeps its id and takes the edit; the newcomer gets its own id
    episodes = stored(backend, fid)
    assert episodes["g-1000"].title == "Edited 1000"
    (copied,) = [e for e in episodes.values() if e.title == "Copied guid"]
    assert copied.id.startswith("g-1000#")
    assert state(backend, fid).episode_count == BIG
