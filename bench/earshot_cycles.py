"""Earshot's side of the cycle table: the local product's fetch cycle, on SQLite.

It runs exactly what ``earshot --db DB run --feeds FILE --cycles 2 --no-transcripts --json`` runs
(``earshot_local.cli.ingest.cmd_run``): a :class:`~earshot_local.runtime.LocalRuntime` on a
fresh database file, ``add_feeds``, then ``run_cycle`` per cycle (the first checks the due
feeds, i.e. all of them; the second checks every feed, as ``--cycles`` does), with the
default concurrency (``EARSHOT_LOCAL_CONCURRENCY``, 32 requests in flight) and the
per-host limit (``EARSHOT_MAX_REQUESTS_PER_HOST``, 2 at first, adaptive up to
``EARSHOT_HOST_CONCURRENCY_CEILING``, 6). New episodes' transcripts stay queued (the
workload's transcript links are on hosts the benchmark does not serve, and rss2email
fetches none; the transcript section measures them apart). Around it, per cycle: CPU seconds
of this process, the CPU time spent parsing (``parse_in_batches`` as the refresh calls it,
wrapped here, not changed: the parse pass, not the reading back of the set-aside episodes),
and the calls, wall and CPU time spent inside the SQLite store's methods. Writes one
JSON object to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

# Store methods a fetch cycle calls (reads and writes), timed per call.
STORE_METHODS = ("due_feeds", "save_feed_state", "episode_hashes", "put_new_episodes", "update_changed_episodes",
                 "list_topics", "replace_feed_matches", "atomic")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=Path, required=True, help="text file of feed URLs")
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--db", type=Path, default=None, help="database file (default: a fresh one in a temp dir)")
    parser.add_argument("--out", type=Path, required=True, help="where the JSON result goes (stdout carries logs)")
    args = parser.parse_args()

    import earshot.ingest.refresh as refresh
    from earshot_local.cli.ingest import add_feeds, read_feed_list, run_cycle
    from earshot_local.runtime import LocalRuntime
    from earshot_local.settings import LocalSettings

    lock = threading.Lock()
    parse_stats = {"calls": 0, "seconds": 0.0, "episodes": 0, "bytes": 0}
    real_parse = refresh.parse_in_batches

    def timed_parse(body: bytes, *a, **kw):  # noqa: ANN002, ANN003, ANN202
        started = time.thread_time()  # CPU of this thread: other threads' waits don't count
        try:
            parsed = real_parse(body, *a, **kw)
        finally:
            spent = time.thread_time() - started
            with lock:
                parse_stats["calls"] += 1
                parse_stats["seconds"] += spent
                parse_stats["bytes"] += len(body)
        with lock:
            parse_stats["episodes"] += parsed.episode_count
        return parsed

    refresh.parse_in_batches = timed_parse

    store_stats: dict[str, dict[str, float]] = defaultdict(lambda: {"calls": 0, "wall_s": 0.0, "cpu_s": 0.0})

    def time_store(store: object) -> None:
        """Wrap the store's cycle methods on this instance (plain calls and ``atomic()``)."""
        for name in STORE_METHODS:
            method = getattr(store, name)
            wrap = _timed_atomic if name == "atomic" else _timed
            setattr(store, name, wrap(name, method, store_stats, lock))

    db = args.db or Path(tempfile.mkdtemp(prefix="earshot-bench-db-")) / "earshot.db"
    local_cfg = LocalSettings.from_env(EARSHOT_DB=str(db))
    urls = read_feed_list(args.feeds).urls
    out: dict = {"command": "earshot --db DB run --feeds FILE --cycles 2 --no-transcripts --json", "db": str(db),
                 "concurrency": local_cfg.concurrency, "cycles": []}
    with LocalRuntime(local_cfg) as local:
        out["max_requests_per_host"] = local.settings.max_requests_per_host
        out["host_concurrency_ceiling"] = local.settings.host_concurrency_ceiling
        started = time.perf_counter()
        add_feeds(local.store, urls, test_fetch=False, out=sys.stderr)
        out["add_seconds"] = round(time.perf_counter() - started, 3)
        time_store(local.store)
        for cycle in range(1, args.cycles + 1):
            for key in parse_stats:
                parse_stats[key] = 0 if key != "seconds" else 0.0
            store_stats.clear()
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            started_at = time.time()
            report = run_cycle(local, cycle, check_all=cycle > 1, concurrency=local_cfg.concurrency,
                               transcripts=False)
            usage1 = resource.getrusage(resource.RUSAGE_SELF)
            row = report.model_dump(mode="json")
            row["started_at"], row["ended_at"] = started_at, time.time()
            row["cpu_s"] = round((usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime), 3)
            row["parse"] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in parse_stats.items()}
            row["store"] = {k: {m: round(v, 3) if isinstance(v, float) else v for m, v in s.items()}
                            for k, s in sorted(store_stats.items())}
            row["store_wall_s"] = round(sum(s["wall_s"] for s in store_stats.values()), 3)
            row["store_cpu_s"] = round(sum(s["cpu_s"] for s in store_stats.values()), 3)
            out["cycles"].append(row)
            print(f"  earshot cycle {cycle}: {report.seconds:.1f}s wall, {row['cpu_s']:.1f}s CPU, "
                  f"{report.parsed} parsed, store {row['store_wall_s']:.1f}s wall / {row['store_cpu_s']:.1f}s CPU",
                  file=sys.stderr, flush=True)
        # The check interval Earshot chose for each feed (its adaptive schedule; the cost model uses it).
        feeds = list(local.store.list_feeds())
        out["interval_s"] = [f.interval_s for f in feeds if f.interval_s and f.status == "active"]
        out["counts"] = local.store.counts()
        out["transcripts_queued"] = local.transcript_queue.depth()
    out["db_bytes"] = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    args.out.write_text(json.dumps(out))


def _timed(name, method, stats, lock):  # noqa: ANN001, ANN202
    def wrapper(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            result = method(*a, **kw)
            if name == "due_feeds":  # a generator: the time is in consuming it
                result = list(result)
            return result
        finally:
            wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
            with lock:
                s = stats[name]
                s["calls"] += 1
                s["wall_s"] += wall
                s["cpu_s"] += cpu
    return wrapper


def _timed_atomic(name, method, stats, lock):  # noqa: ANN001, ANN202
    """``atomic()``: time its entry (BEGIN IMMEDIATE: waiting for the write lock) and its
    exit (COMMIT) apart, so the calls made inside are not counted twice."""
    from contextlib import contextmanager

    def record(key: str, wall: float, cpu: float) -> None:
        with lock:
            s = stats[key]
            s["calls"] += 1
            s["wall_s"] += wall
            s["cpu_s"] += cpu

    @contextmanager
    def wrapper():  # noqa: ANN202
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        cm = method()
        cm.__enter__()
        record("atomic_begin", time.perf_counter() - wall0, time.thread_time() - cpu0)
        try:
            yield
        except BaseException:
            if not cm.__exit__(*sys.exc_info()):
                raise
        else:
            wall0, cpu0 = time.perf_counter(), time.thread_time()
            cm.__exit__(None, None, None)
            record("atomic_commit", time.perf_counter() - wall0, time.thread_time() - cpu0)
    return wrapper


if __name__ == "__main__":
    main()
