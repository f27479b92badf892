"""Repository against the table built from template.yaml (moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from earshot import runtime
from earshot.models import Episode, FeedState, Transcript
from earshot.refresh import new_feed

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def test_feed_round_trip_and_due_index(backend) -> None:
    repo = runtime.store()
    due = new_feed("https://a.example/feed.xml", NOW)
    later = new_feed("https://b.example/feed.xml", NOW).model_copy(update={"next_check_at": NOW + timedelta(hours=3)})
    gone = new_feed("https://c.example/feed.xml", NOW).model_copy(update={"status": "gone", "next_check_at": None})
    for feed in (due, later, gone):
        assert repo.add_feed(feed)
    assert not repo.add_feed(due), "adding twice changes nothing"

    assert [f.url for f in repo.due_feeds(NOW)] == [due.url]
    assert sorted(f.url for f in repo.due_feeds(NOW, include_not_due=True)) == [due.url, later.url]
    assert sorted(f.url for f in repo.list_feeds()) == [due.url, later.url, gone.url]
    assert repo.get_feed(due.feed_id) == due


def test_save_feed_state_clears_validators_and_keeps_unset_fields(backend) -> None:
    repo = runtime.store()
    feed = new_feed("https://a.example/feed.xml", NOW).model_copy(update={"etag": '"v1"', "title": "A"})
    repo.add_feed(feed)
    update = FeedState(feed_id=feed.feed_id, url=feed.url, error_count=2, last_error_kind="timeout",
                       next_check_at=NOW + timedelta(hours=2))
    repo.save_feed_state(update)
    stored = repo.get_feed(feed.feed_id)
    assert stored.etag is None, "a validator the server stopped sending is forgotten"
    assert stored.created_at == NOW, "fields the update did not carry are kept"
    assert stored.error_count == 2 and stored.last_error_kind == "timeout"
    assert [f.next_check_at for f in repo.due_feeds(NOW + timedelta(hours=2))] == [NOW + timedelta(hours=2)]


def test_episodes_are_written_updated_and_never_deleted(backend) -> None:
    repo = runtime.store()
    feed = new_feed("https://a.example/feed.xml", NOW)
    repo.add_feed(feed)
    eps = [Episode(id=f"guid-{i}", title=f"Episode {i}", published=NOW - timedelta(days=i),
                   transcripts=(Transcript(url=f"https://a.example/{i}.vtt", type="text/vtt"),))
           for i in range(30)]
    repo.put_new_episodes(feed.feed_id, eps, NOW)
    hashes = repo.episode_hashes(feed.feed_id)
    assert hashes == {e.id: e.content_hash for e in eps}

    changed = eps[0].model_copy(update={"title": "Episode 0 (corrected)"})
    repo.update_changed_episodes(feed.feed_id, [changed], NOW + timedelta(days=1))
    stored = {e.id: e for e in repo.list_episodes(feed.feed_id)}
    assert len(stored) == 30
    assert stored["guid-0"].title == "Episode 0 (corrected)"
    assert stored["guid-3"] == eps[3].model_copy(update={"feed_id": feed.feed_id})
