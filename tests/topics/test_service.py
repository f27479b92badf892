"""Topics on the embedded stack (moto, tables from template.yaml): add -> backfill,
edit -> re-match, ingest-time matching, remove, and the public API routes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from earshot import runtime
from earshot.errors import NotFound, QueryError
from earshot.ingest.parser import parse_feed
from earshot.models import Episode, FeedState
from earshot.store import Store, feed_id_for
from earshot.topics.matching import clear_topic_cache, match_new_episodes
from earshot.topics.service import add_topic, edit_topic, list_topics, remove_topic, topic_report
from tests.support.aws_stack import EmbeddedBackend, sample_event

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "feeds"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _store_sample(repo: Store, name: str) -> FeedState:
    url = f"https://samples.example/{name}"
    parsed = parse_feed((SAMPLES / name).read_bytes(), url=url)
    feed = FeedState(feed_id=feed_id_for(url), url=url, title=parsed.feed.title, created_at=NOW)
    repo.add_feed(feed)
    repo.put_new_episodes(feed.feed_id, list(parsed.episodes), NOW)
    return feed


@pytest.fixture
def repo(backend: EmbeddedBackend) -> Store:
    repository = runtime.store()
    for name in ("midstream-minute.xml", "gradient-descent.xml", "twin-cities-tonight.xml",
                 "energy-capital-weekly.xml"):
        _store_sample(repository, name)
    clear_topic_cache()
    return repository


def _titles(repo: Store, slug: str) -> set[str]:
    return {m.title for m in repo.list_matches(slug)}


def test_add_backfills_edit_rematches_remove_deletes(repo: Store) -> None:
    # Given stored episodes, when a topic is added
    added = add_topic(repo, "mlp", name="MLPs", query="title:MLP", now=NOW)
    # Then past episodes match (the ML show's "MLP" too: the query is not precise yet)
    titles = _titles(repo, "mlp")
    assert added.matched == len(repo.list_matches("mlp")) > 0
    assert "Why your MLP overfits: regularization that actually works" in titles
    assert "MLPS council passes rent stabilization" not in titles  # case rule
    stored = repo.list_matches("mlp")[0]
    assert stored.reason.startswith("MLP") and stored.podcast

    # When the query is edited to exclude the ML meaning
    edited = edit_topic(repo, "mlp", query="title:MLP -neural -perceptron -transformer -overfits -backprop -Mixer",
                        now=NOW)
    # Then stale matches are gone and the rest remain
    titles = _titles(repo, "mlp")
    assert edited.removed > 0
    assert not any("overfits" in t or "transformer" in t for t in titles)
    assert "MLPs and rising rates" in titles

    # When removed, the topic and its matches are gone
    remove_topic(repo, "mlp")
    assert repo.get_topic("mlp") is None and repo.count_matches("mlp") == 0
    with pytest.raises(NotFound):
        remove_topic(repo, "mlp")


def test_bad_query_stores_nothing(repo: Store) -> None:
    with pytest.raises(QueryError):
        add_topic(repo, "bad", name="Bad", query="MLP (", now=NOW)
    assert list_topics(repo) == []


def test_ingest_time_matching_adds_and_replaces(repo: Store) -> None:
    add_topic(repo, "mlp", name="MLPs", query='MLP midstream', now=NOW)
    feed = repo.get_feed(feed_id_for("https://samples.example/midstream-minute.xml"))
    assert feed is not None
    new = Episode(id="new-1", guid="new-1", title="MLP midstream outlook", published=NOW,
                  summary="Plain.", audio_url="https://m.example/new-1.mp3")
    repo.put_new_episodes(feed.feed_id, [new], NOW)
    assert match_new_episodes(repo, feed, [new]) == 1
    assert "MLP midstream outlook" in _titles(repo, "mlp")
    # A correction removes the midstream mention: its match must go, not linger.
    changed = new.model_copy(update={"title": "MLP outlook", "published": NOW.replace(hour=13)})
    assert match_new_episodes(repo, feed, [changed]) == 0
    assert not any(t.startswith("MLP") and "outlook" in t for t in _titles(repo, "mlp"))


def test_topic_report_folds_syndicated_copies(repo: Store) -> None:
    add_topic(repo, "mlp", name="MLPs", query='"master limited partnership" OR (MLP midstream)', now=NOW)
    report = topic_report(repo, "mlp", now=NOW, latest_limit=None)
    cards = {c.title: c for c in report.latest_episodes}
    assert cards["Midstream 101: what is a master limited partnership?"].also_in == 1
    assert report.duplicates_folded >= 2  # a syndicated copy and the re-upload


def test_api_serves_page_and_feed_and_404s(backend: EmbeddedBackend, repo: Store) -> None:
    add_topic(repo, "mlp-finance", name="MLPs <finance>", query='MLP midstream', now=NOW)

    page = backend.invoke("api", sample_event("api_topic_page"))
    assert page["statusCode"] == 200
    assert page["headers"]["Content-Type"].startswith("text/html")
    assert "Podcasts about MLPs &lt;finance&gt;" in page["body"]

    feed = backend.invoke("api", sample_event("api_topic_feed"))
    assert feed["statusCode"] == 200
    assert feed["headers"]["Content-Type"].startswith("application/rss+xml")
    parsed = feedparser.parse(feed["body"].encode())
    assert not parsed.bozo and parsed.entries and parsed.entries[0].enclosures

    missing = sample_event("api_topic_page")
    missing["rawPath"] = missing["requestContext"]["http"]["path"] = "/topics/nope"
    missing["pathParameters"] = {"slug": "nope"}
    assert backend.invoke("api", missing)["statusCode"] == 404
