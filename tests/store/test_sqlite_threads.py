"""SQLite adapter: many threads of one process writing at once (as `earshot run`'s fetch
threads do) queue for the write lock inside the process; every transaction lands whole."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from earshot.ingest.refresh import new_feed
from earshot.models import Episode
from earshot_local.sqlite_store import SqliteStore

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def test_threads_write_whole_transactions_without_lock_errors(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "earshot.db")
    feeds = [new_feed(f"https://h{i % 4}.example/{i}.xml", NOW) for i in range(32)]
    for feed in feeds:
        store.add_feed(feed)
    errors: list[BaseException] = []

    def refresh(index: int) -> None:
        feed = feeds[index]
        try:
            for round_ in range(5):
                with store.atomic():  # episodes and feed state in one transaction, as refresh_feed does
                    eps = [Episode(id=f"{round_}-{k}", title=f"Episode {k}", published=NOW - timedelta(days=k))
                           for k in range(10)]
                    store.put_new_episodes(feed.feed_id, eps, NOW)
                    state = feed.model_copy(update={"episode_count": len(store.episode_hashes(feed.feed_id))})
                    store.save_feed_state(state)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=refresh, args=(i,)) for i in range(len(feeds))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for feed in feeds:
        assert len(store.list_episodes(feed.feed_id)) == 50
        assert store.get_feed(feed.feed_id).episode_count == 50
    store.close()
