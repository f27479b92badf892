"""The scale bench: what docs/scale.md derives its figures from. Three parts, one JSON.

- ``memory``: a local database of synthetic episodes (50,000 and 200,000, written by
  ``put_new_episodes`` a feed at a time), then a topic backfill in a *fresh child
  process* per size, its peak RSS read from ``/proc/self/status`` (VmHWM). Both the
  segmented backfill (``topics.backfill``) and the single-pass one it replaced (every
  episode in memory, grouped by feed, then matched) are measured; the segmented one
  should not grow with the archive.
- ``percolation``: 10,000 topics over the words of the real corpus (``../shared/corpus``;
  synthetic text when it is absent) matched against real episodes, once evaluating every
  topic per episode and once evaluating the percolator's candidates; the two must find
  identical matches. Also the store calls of ``match_new_episodes`` per feed check on a
  small SQLite database: before percolation one ``replace_feed_matches`` per topic, now
  one per candidate topic.
- ``fanout``: request counts of a fanned-out backfill on the AWS test double (moto,
  table and queues from template.yaml, every boto3 request counted): coordinator, then
  the backfill worker function on each segment's message; plus the DynamoDB item sizes
  that turn Scan pages into read units.

    .venv/bin/python bench/scale.py --out bench/results/scale.json [--quick]

Timings are wall-clock on a shared machine (the JSON has the load average); counts and
peak RSS are what the doc's formulas use.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
BACKFILL_QUERY = "MLP (midstream OR pipeline OR distribution) -neural"

sys.path.insert(0, str(REPO))


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ------------------------------------------------------------------ synthetic archive
_VOCAB = ("market energy pipeline midstream MLP distribution yield tax neural network training model "
          "election policy season episode interview guest history science climate space music film "
          "football coffee garden travel startup founder capital podcast story news week review").split()


def _synthetic_episode(rng: random.Random, feed: int, n: int) -> dict:
    title = " ".join(rng.choice(_VOCAB) for _ in range(rng.randint(3, 8)))
    summary = " ".join(rng.choice(_VOCAB) for _ in range(rng.randint(20, 60)))
    return {"id": f"ep-{feed}-{n}", "guid": f"guid-{feed}-{n}", "title": title.capitalize(), "summary": summary,
            "published": (NOW - timedelta(days=n)).isoformat(), "duration_seconds": rng.randint(600, 5400),
            "audio_url": f"https://cdn{feed % 50}.example/{feed}/{n}.mp3", "link": f"https://show{feed}.example/{n}"}


def build_archive(path: Path, episodes: int, per_feed: int = 100) -> float:
    """A SQLite database with ``episodes`` synthetic episodes; returns seconds taken."""
    from earshot.ingest.refresh import new_feed
    from earshot.models import Episode
    from earshot_local.sqlite_store import SqliteStore

    started = time.perf_counter()
    rng = random.Random(episodes)
    store = SqliteStore(path)
    for f in range(episodes // per_feed):
        feed = new_feed(f"https://show{f}.example/feed.xml", NOW).model_copy(update={"title": f"Show {f}"})
        store.add_feed(feed)
        store.put_new_episodes(feed.feed_id, [Episode.model_validate(_synthetic_episode(rng, f, n))
                                              for n in range(per_feed)], NOW)
    store.close()
    return time.perf_counter() - started


def memory_child(db: Path, mode: str) -> None:
    """Runs in a fresh process: one backfill over ``db``; prints peak RSS and counts."""
    from earshot.models import Topic
    from earshot.topics.matching import Podcast, match_episodes
    from earshot.topics.query import parse_query
    from earshot.topics.service import backfill
    from earshot_local.sqlite_store import SqliteStore

    store = SqliteStore(db)
    baseline = peak_rss_mb()
    topic = Topic(slug="bench", name="Bench", query=BACKFILL_QUERY, created_at=NOW, updated_at=NOW)
    store.create_topic(topic)
    started = time.perf_counter()
    if mode == "segmented":
        result = backfill(store, topic, now=NOW)
        matched = result.matched
    else:  # the single-pass backfill this replaced: the archive in memory, grouped by feed
        query = parse_query(BACKFILL_QUERY)
        podcasts = {feed.feed_id: Podcast.of(feed) for feed in store.list_feeds()}
        by_feed: dict = {}
        for episode in store.iter_all_episodes():
            by_feed.setdefault(episode.feed_id, []).append(episode)
        matches = []
        for feed_id, eps in by_feed.items():
            matches += match_episodes(query, eps, feed_id=feed_id, podcast=podcasts[feed_id])
        store.replace_topic_matches("bench", matches)
        matched = len(matches)
    print(json.dumps({"mode": mode, "peak_rss_mb": round(peak_rss_mb(), 1), "rss_after_open_mb": round(baseline, 1),
                      "seconds": round(time.perf_counter() - started, 2), "matched": matched}))


def part_memory(sizes: list[int]) -> dict:
    out: dict = {"query": BACKFILL_QUERY, "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            db = Path(tmp) / f"archive-{size}.db"
            built_s = build_archive(db, size)
            runs = {}
            for mode in ("segmented", "single_pass"):
                proc = subprocess.run([sys.executable, __file__, "--memory-child", str(db), mode],
                                      capture_output=True, text=True, check=True)
                runs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
            out["sizes"][str(size)] = {"build_s": round(built_s, 1), "db_mb": round(db.stat().st_size / 2**20, 1),
                                       **runs}
    small, large = (out["sizes"][str(s)]["segmented"]["peak_rss_mb"] for s in (sizes[0], sizes[-1]))
    out["segmented_growth"] = round(large / small - 1, 3)
    return out


# ------------------------------------------------------------------ percolation
_STOP = frozenset("the a an and or of to in on for with is are was were be this that it its at by from as we you "
                  "i he she they our your their his her not but so if about what how why who when all".split())


def corpus_episodes(limit: int) -> tuple[list, str]:
    """Real episodes (with podcast titles) from the corpus, else synthetic ones."""
    from earshot.ingest.parser import parse_feed
    from earshot.models import Episode

    corpus = REPO.resolve().parent / "shared" / "corpus" / "feeds"
    out = []
    if corpus.is_dir():
        for path in sorted(corpus.glob("*.xml")):
            try:
                parsed = parse_feed(path.read_bytes(), url=f"https://corpus.example/{path.name}")
            except Exception:  # noqa: BLE001 - a corpus file the parser refuses is just left out
                continue
            out += [(e, parsed.feed.title or "") for e in parsed.episodes]
        source = f"{len(out)} episodes of the corpus ({corpus})"
    if not out:
        rng = random.Random(7)
        out = [(Episode.model_validate(_synthetic_episode(rng, i % 100, i)), f"Show {i % 100}") for i in range(limit)]
        source = "synthetic episodes (corpus absent)"
    random.Random(3).shuffle(out)
    return out[:limit], source


def synthetic_topics(episodes: list, count: int) -> list:
    """``count`` topic queries over the corpus's own words, in the shapes people write: a
    word, two words, an OR, a phrase, a negation, a duration filter, a field. A topic is
    about a subject: its words are drawn uniformly from the corpus's vocabulary (words
    seen at least twice), leaving out the 300 most frequent (``still``, ``episode``,
    ``today``: words nobody follows)."""
    from earshot.models import Topic
    from earshot.topics.query import normalize_text, words_of

    freq: Counter[str] = Counter()
    for episode, _ in episodes:
        for w in words_of(normalize_text(f"{episode.title} {episode.summary}")):
            word = w.text.lower()
            if len(word) > 2 and word not in _STOP and not word.isdigit():
                freq[word] += 1
    common = {w for w, _ in freq.most_common(300)}
    words = sorted(w for w, n in freq.items() if n >= 2 and w not in common)
    rng = random.Random(10_000)

    def pick() -> str:
        return rng.choice(words)

    shapes = [lambda: pick(), lambda: f"{pick()} {pick()}", lambda: f"{pick()} OR {pick()}",
              lambda: f'"{pick()} {pick()}"', lambda: f"{pick()} -{pick()}",
              lambda: f"{pick()} ({pick()} OR {pick()} OR {pick()})", lambda: f"{pick()} duration:>20m",
              lambda: f"title:{pick()}"]
    return [Topic(slug=f"t{i}", name=f"T{i}", query=rng.choice(shapes)(), created_at=NOW, updated_at=NOW)
            for i in range(count)]


def part_percolation(topics_n: int, episodes_n: int) -> dict:
    from earshot.topics.matching import TopicIndex, compile_topics, match_every_topic, match_percolated

    episodes, source = corpus_episodes(episodes_n)
    topics = synthetic_topics(episodes, topics_n)
    started = time.perf_counter()
    index = TopicIndex(compile_topics(topics))
    index_s = time.perf_counter() - started

    # Warm-up, not timed: each term's word forms are computed once, on first use (as a
    # worker's topic cache does), and neither timed pass should pay for that.
    for episode, podcast in episodes[:50]:
        match_every_topic(index.topics, episode, podcast)
    # Identical matches: every episode, both ways (candidates counted on the way).
    candidates = 0
    # CPU time of this process (matching is pure CPU): on a shared machine the wall clock
    # also counts other processes' turns. Both are recorded.
    with_index: list[list[str]] = []
    started, started_wall = time.process_time(), time.perf_counter()
    for episode, podcast in episodes:
        with_index.append(match_percolated(index, episode, podcast))
    percolated_s, percolated_wall_s = time.process_time() - started, time.perf_counter() - started_wall
    from earshot.topics.query import Document
    for episode, podcast in episodes:
        candidates += len(index.percolator.candidate_indexes(Document.from_episode(episode, podcast)))
    started, started_wall = time.process_time(), time.perf_counter()
    every = [match_every_topic(index.topics, episode, podcast) for episode, podcast in episodes]
    every_s, every_wall_s = time.process_time() - started, time.perf_counter() - started_wall
    assert every == with_index, "percolation changed the matches"
    return {
        "episodes": len(episodes), "episode_source": source, "topics": len(index.topics),
        "always_evaluated": index.percolator.always_evaluated,
        "index_build_s": round(index_s, 2),
        "every_topic_cpu_s": round(every_s, 2), "percolated_cpu_s": round(percolated_s, 3),
        "speedup": round(every_s / percolated_s, 1),
        "every_topic_wall_s": round(every_wall_s, 2), "percolated_wall_s": round(percolated_wall_s, 3),
        "speedup_wall": round(every_wall_s / percolated_wall_s, 1),
        "every_topic_us_per_episode": round(every_s / len(episodes) * 1e6),
        "percolated_us_per_episode": round(percolated_s / len(episodes) * 1e6),
        "candidates_per_episode": round(candidates / len(episodes), 1),
        "matches": sum(len(m) for m in every), "identical": True,
        "example_queries": [t.query for t in topics[:8]],
        "store_calls": store_calls_per_check(topics[:2000], episodes[:60]),
    }


def store_calls_per_check(topics: list, episodes: list) -> dict:
    """``replace_feed_matches`` calls of one feed check's new episodes, with 2,000 topics:
    now (percolated) and before (one per topic), on a counting SQLite store."""
    from earshot.ingest.refresh import new_feed
    from earshot.topics import matching
    from earshot_local.sqlite_store import SqliteStore

    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "calls.db")
        for topic in topics:
            store.create_topic(topic)
        calls: Counter[str] = Counter()
        original = store.replace_feed_matches

        def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls["replace_feed_matches"] += 1
            return original(*args, **kwargs)

        store.replace_feed_matches = counted  # type: ignore[method-assign]
        checks = 0
        for start in range(0, len(episodes), 3):  # feed checks with 3 new episodes each
            feed = new_feed(f"https://calls{start}.example/feed.xml", NOW)
            store.add_feed(feed)
            batch = [e.model_copy(update={"id": f"{start}-{i}"}) for i, (e, _) in enumerate(episodes[start:start + 3])]
            matching.clear_topic_cache()
            matching.match_new_episodes(store, feed, batch)
            checks += 1
        store.close()
    return {"topics": len(topics), "checks": checks, "new_episodes_per_check": 3,
            "replace_calls_per_check": round(calls["replace_feed_matches"] / checks, 1),
            "replace_calls_per_check_before": len(topics)}


# ------------------------------------------------------------------ fan-out counts
def part_fanout(feeds: int, per_feed: int, segments: int, page_size: int) -> dict:
    import boto3

    from earshot import runtime
    from earshot.models import Episode, FeedState
    from earshot.store import feed_id_for
    from earshot.store.dynamodb.base import serialize
    from earshot.topics.service import add_topic, backfill_status
    from tests.support.aws_stack import REGION, EmbeddedBackend

    rng = random.Random(1)
    with EmbeddedBackend(extra_env={"EARSHOT_BACKFILL_PAGE_SIZE": str(page_size)}) as backend:
        repo = runtime.store()
        sizes = []
        for f in range(feeds):
            url = f"https://show{f}.example/feed.xml"
            repo.add_feed(FeedState(feed_id=feed_id_for(url), url=url, title=f"Show {f}", created_at=NOW))
            eps = [Episode.model_validate(_synthetic_episode(rng, f, n)) for n in range(per_feed)]
            repo.put_new_episodes(feed_id_for(url), eps, NOW)
            sizes += [len(json.dumps(serialize(repo._episode_item(feed_id_for(url), e, NOW)))) for e in eps[:3]]
        backend.reset_counters()
        add_topic(repo, "bench", name="Bench", query=BACKFILL_QUERY, now=NOW,
                  fan_out=runtime.backfill_queue().send_messages, segments=segments)
        coordinator = dict(backend.aws_calls)
        backend.reset_counters()
        url = backend.settings.backfill_queue_url
        sqs = boto3.client("sqs", region_name=REGION)
        invocations = 0
        while (event := backend.receive_sqs_event(url, max_messages=1)) is not None:
            backend.invoke("backfill_worker", event)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=event["Records"][0]["receiptHandle"])
            invocations += 1
        workers = dict(backend.aws_calls)
        job = repo.get_backfill("bench")
        assert job is not None and backfill_status(repo, "bench") == "backfilled"
        # The harness's own ReceiveMessage/DeleteMessage stand in for the event source mapping.
        for op in ("ReceiveMessage", "DeleteMessage"):
            workers.pop(op, None)
        return {"feeds": feeds, "episodes": feeds * per_feed, "segments": segments, "page_size_items": page_size,
                "worker_invocations": invocations, "coordinator_requests": coordinator,
                "worker_requests": workers, "matched": job.matched, "scanned": job.scanned,
                "episode_item_bytes_avg": round(sum(sizes) / len(sizes)),
                "items_read": feeds * (per_feed + 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--parts", default="fanout,percolation,memory")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run, not for the doc)")
    parser.add_argument("--memory-child", nargs=2, metavar=("DB", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(Path(args.memory_child[0]), args.memory_child[1])
        return
    out: dict = {}
    if args.out and args.out.exists():  # a part re-run keeps the other parts' results
        out = json.loads(args.out.read_text())
    out.update({"load_average": os.getloadavg(), "quick": args.quick})
    parts = args.parts.split(",")
    if "fanout" in parts:
        out["fanout"] = part_fanout(*((20, 20, 4, 50) if args.quick else (100, 40, 8, 100)))
    if "percolation" in parts:
        out["percolation"] = part_percolation(*((1000, 200) if args.quick else (10_000, 600)))
    if "memory" in parts:
        out["memory"] = part_memory([5_000, 20_000] if args.quick else [50_000, 200_000])
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
