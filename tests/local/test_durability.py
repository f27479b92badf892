"""The local database under the ways a cron job dies or overlaps: `earshot run` killed with
SIGKILL at a random moment, then run again, ends with the same episodes and matches as an
uninterrupted run; two `earshot run` on disjoint feed lists into one database at once
both land every episode. Each run is a real CLI process against a loopback feed server."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.feedserver import Delayed, FeedServer, Serve

pytestmark = pytest.mark.slow

EARSHOT = str(Path(sys.executable).parent / "earshot")
FEEDS = 40
EPISODES = 15
TOPIC_QUERY = "pipeline OR perceptron"


def _feed_xml(n: int) -> bytes:
    items = "".join(
        f"<item><title>Show {n} episode {i}: {'pipeline' if i % 3 == 0 else 'perceptron' if i % 5 == 0 else 'chat'}"
        f"</title><guid>show-{n}-ep-{i}</guid><pubDate>Mon, {1 + i:02d} Sep 2025 08:00:00 GMT</pubDate>"
        f"<enclosure url=\"https://cdn.example/{n}/{i}.mp3\" type=\"audio/mpeg\" length=\"1\"/></item>"
        for i in range(EPISODES))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Show {n}</title>{items}</channel></rss>'.encode()


def _serve_feeds(server: FeedServer, names: range, *, seed: int) -> list[str]:
    """Feeds over two loopback hosts, each answer 50-300 ms late (a remote server's pace)."""
    rng = random.Random(seed)
    for n in names:
        server.route(f"/f{n}.xml", Delayed(rng.uniform(0.05, 0.3), Serve(_feed_xml(n))))
    return [server.url(f"/f{n}.xml", alt=n % 2 == 1) for n in names]


def _earshot(db: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([EARSHOT, "--db", str(db), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "EARSHOT_DB": str(db)})


def _finish(proc: subprocess.Popen[bytes]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def _contents(db: Path) -> tuple[set[tuple[str, str, str]], set[tuple[str, str]]]:
    """(feed, episode, content hash) of every episode and (feed, episode) of every match."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        episodes = set(conn.execute("SELECT feed_id, episode_id, content_hash FROM episodes"))
        matches = set(conn.execute("SELECT feed_id, episode_id FROM matches"))
    return episodes, matches


def _wait_for_first_commit(db: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with sqlite3.connect(db) as conn:
            if conn.execute("SELECT count(*) FROM episodes").fetchone()[0]:
                return
        time.sleep(0.02)


def _prepare(db: Path, feed_list: Path) -> None:
    _finish(_earshot(db, "feeds", "import", str(feed_list)))
    _finish(_earshot(db, "topics", "add", "pipes", "--name", "Pipes", "--query", TOPIC_QUERY))


def test_killed_run_then_rerun_equals_an_uninterrupted_run(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_list = tmp_path / "feeds.txt"
    feed_list.write_text("\n".join(_serve_feeds(feed_server, range(FEEDS), seed=1)) + "\n")
    reference = tmp_path / "reference.db"
    _prepare(reference, feed_list)
    _finish(_earshot(reference, "run", "--json"))
    expected = _contents(reference)
    assert len(expected[0]) == FEEDS * EPISODES and expected[1]

    rng = random.Random(int(time.time()))
    for attempt in range(3):
        db = tmp_path / f"killed-{attempt}.db"
        _prepare(db, feed_list)
        # Given a run killed with SIGKILL somewhere in the middle of its work
        proc = _earshot(db, "run", "--json")
        _wait_for_first_commit(db, proc)
        time.sleep(rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        partial_episodes, _ = _contents(db)  # consistent even now
        print(f"attempt {attempt}: killed with {len(partial_episodes)} of {len(expected[0])} episodes stored")
        # When the next run starts
        _finish(_earshot(db, "run", "--json"))
        # Then nothing committed was lost and the feeds in flight were checked again
        assert _contents(db) == expected, f"attempt {attempt}: killed after {len(partial_episodes)} episodes"


def test_two_concurrent_runs_on_disjoint_lists_store_every_episode(tmp_path: Path,
                                                                  feed_server: FeedServer) -> None:
    lists = []
    for name, names in (("a", range(0, FEEDS // 2)), ("b", range(FEEDS // 2, FEEDS))):
        path = tmp_path / f"{name}.txt"
        path.write_text("\n".join(_serve_feeds(feed_server, names, seed=2)) + "\n")
        lists.append(path)
    db = tmp_path / "shared.db"
    _finish(_earshot(db, "topics", "add", "pipes", "--name", "Pipes", "--query", TOPIC_QUERY))

    runs = [_earshot(db, "run", "--feeds", str(path), "--json") for path in lists]
    for proc in runs:
        _finish(proc)

    episodes, matches = _contents(db)
    assert len(episodes) == FEEDS * EPISODES
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM feeds").fetchone() == (FEEDS,)
    expected_matches = sum(1 for i in range(EPISODES) if i % 3 == 0 or i % 5 == 0) * FEEDS
    assert len(matches) == expected_matches
