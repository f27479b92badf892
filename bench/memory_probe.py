"""The memory table: peak RSS of one process fetching (and parsing) a 50 MB feed served
on loopback, with the default 15 MiB body cap and with the cap raised to 100 MB:

- ``refresh``: what ``earshot run`` does for the feed's first check, ``refresh_feed``
  into a fresh SQLite store (the local adapter) with one topic matched per batch: fetch,
  hash, parse in batches, diff, match, store, feed state;
- ``refresh_again``: the same, then the body changed by one new episode and checked
  again (every stored episode diffed, one written);
- ``refresh_feedparser``: ``refresh`` with ``EARSHOT_PARSER=feedparser`` (the fallback
  builds every episode at once, then stores them in batches);
- ``parse``: ``parse_feed`` alone as Earshot runs it (the fast path), which returns
  every episode at once; ``feedparser``: the same with ``parser="feedparser"``.

Every probe imports what a worker checking feeds imports (the refresh, matching, the
SQLite store), so the rows compare.

The parent builds the feed, starts ``feedserver.py`` (no delay) and runs each probe in a
fresh child (``--child``), so every peak RSS is that probe's alone. A baseline child
that imports what the worker imports is measured too. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MiB = 1024 * 1024


def peak_rss_mb() -> float:
    """This process's peak RSS. Linux's VmHWM belongs to the address space exec() made;
    ``ru_maxrss`` would also count the parent's RSS from before exec (it survives exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, url: str, cap: int) -> None:
    import earshot.ingest.fetcher as fetcher
    import earshot.ingest.refresh  # noqa: F401  # the worker's imports, in every probe
    import earshot.topics.matching  # noqa: F401
    import earshot_local.sqlite_store  # noqa: F401
    from earshot.errors import EarshotError
    from earshot.ingest.parser import parse_feed
    from earshot.settings import Settings

    out: dict = {"mode": mode, "cap_bytes": cap}
    baseline = peak_rss_mb()
    out["rss_after_imports_mb"] = round(baseline, 1)
    if mode.startswith("refresh"):
        out.update(refresh_probe(mode, url, cap))
    elif mode != "baseline":
        settings = Settings.from_env(EARSHOT_ALLOW_PRIVATE_ADDRESSES="true", EARSHOT_MAX_BODY_BYTES=str(cap))
        started = time.perf_counter()
        try:
            with fetcher.make_client(settings) as client:
                result = fetcher.fetch_feed(url, settings=settings, client=client)
            out["fetched_bytes"] = len(result.body or b"")
            out["fetch_s"] = round(time.perf_counter() - started, 2)
            out["rss_after_fetch_mb"] = round(peak_rss_mb(), 1)
            parsed = parse_feed(result.body or b"", url=url, parser="feedparser" if mode == "feedparser" else "auto")
            out["episodes"] = len(parsed.episodes)
            out["outcome"] = "parsed"
        except EarshotError as exc:
            out["outcome"] = f"error {getattr(exc, 'kind', type(exc).__name__)}"
            out["message"] = str(exc)[:200]
        out["seconds"] = round(time.perf_counter() - started, 2)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(out))


def refresh_probe(mode: str, url: str, cap: int) -> dict:
    """``refresh_feed`` as ``earshot run`` calls it, into a fresh SQLite database."""
    import earshot.ingest.fetcher as fetcher
    from earshot.ingest.refresh import FeedCheck, new_feed, refresh_feed
    from earshot.models import Topic
    from earshot.settings import Settings
    from earshot.topics.matching import match_new_episodes
    from earshot_local.sqlite_store import SqliteStore

    settings = Settings.from_env(EARSHOT_ALLOW_PRIVATE_ADDRESSES="true", EARSHOT_MAX_BODY_BYTES=str(cap),
                                 EARSHOT_PARSER="feedparser" if mode == "refresh_feedparser" else "auto")
    now = datetime.now(UTC)
    work = Path(tempfile.mkdtemp(prefix="earshot-memory-"))
    out: dict = {}
    try:
        store = SqliteStore(work / "earshot.db")
        feed = new_feed(url, now)
        store.add_feed(feed)
        # A topic the generated show notes often mention: matching runs on every batch.
        store.create_topic(Topic(slug="genomes", name="Genomes", query="genome", created_at=now, updated_at=now))

        def on_new_episodes(f, new, changed):  # noqa: ANN001, ANN202
            return match_new_episodes(store, f, new + changed, changed_ids=[e.id for e in changed])

        checks = 2 if mode == "refresh_again" else 1  # a path's second request gets the grown body
        with fetcher.make_client(settings) as client:
            for number in range(1, checks + 1):
                state = store.get_feed(feed.feed_id)
                assert state is not None
                started = time.perf_counter()
                outcome = refresh_feed(FeedCheck.from_state(state), repo=store, settings=settings, client=client,
                                       on_new_episodes=on_new_episodes)
                out[f"check_{number}"] = {
                    "outcome": outcome.result if not outcome.error_kind else f"error {outcome.error_kind}",
                    "new": outcome.new_episodes, "changed": outcome.changed_episodes, "seen": outcome.episodes_seen,
                    "seconds": round(time.perf_counter() - started, 2), "peak_rss_mb": round(peak_rss_mb(), 1)}
        last = out[f"check_{checks}"]
        out.update(outcome=last["outcome"], episodes=last["seen"], seconds=last["seconds"],
                   stored_episodes=store.get_feed(feed.feed_id).episode_count,
                   matches=store.count_matches("genomes"))
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, required=False)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "URL", "CAP"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return

    sys.path.insert(0, str(BENCH))
    from workload import write_big_feed

    size = 50_000_000
    work = (args.workdir or Path("/tmp")) / "memory"
    (work / "feeds").mkdir(parents=True, exist_ok=True)
    items = write_big_feed(work / "feeds" / "big.xml", size)
    actual = (work / "feeds" / "big.xml").stat().st_size
    # The second version (a path's second request gets it) has one episode more, on top.
    text = (work / "feeds" / "big.xml").read_text()
    (work / "feeds" / "big.v2.xml").write_text(text.replace("<item>", (
        "<item><title>One more</title><guid isPermaLink=\"false\">memory-probe-new</guid>"
        "<pubDate>Mon, 26 May 2025 02:00:00 +0000</pubDate>"
        "<enclosure url=\"https://cdn.example.org/new.mp3\" length=\"1\" type=\"audio/mpeg\"/></item>\n<item>"), 1))
    (work / "manifest.json").write_text(json.dumps({"feeds": [
        {"index": 0, "name": "big.xml", "group": "new_episodes", "has_v2": True, "size_bytes": actual,
         "items": items}]}))
    port_file = work / "port"
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen([sys.executable, str(BENCH / "feedserver.py"), "--dir", str(work), "--no-delay",
                               "--port-file", str(port_file)])
    try:
        while not port_file.exists():
            time.sleep(0.1)
        port = port_file.read_text()
        probes = [("baseline", 15 * MiB), ("fetch", 15 * MiB), ("refresh", 100_000_000),
                  ("refresh_again", 100_000_000), ("parse", 100_000_000)]
        if not args.quick:
            probes += [("refresh_feedparser", 100_000_000), ("feedparser", 100_000_000)]
        rows = []
        for mode, cap in probes:
            print(f"  memory: {mode}, cap {cap / MiB:.0f} MiB", file=sys.stderr, flush=True)
            url = f"http://127.0.0.1:{port}/{mode}/feeds/big.xml"  # each probe its own request count
            proc = subprocess.run([sys.executable, __file__, "--child", mode, url, str(cap)], capture_output=True,
                                  text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if proc.returncode != 0:
                rows.append({"mode": mode, "cap_bytes": cap, "outcome": f"crashed: {proc.stderr.strip()[-300:]}"})
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(json.dumps({"feed_bytes": actual, "feed_items": items, "probes": rows}))


if __name__ == "__main__":
    main()
