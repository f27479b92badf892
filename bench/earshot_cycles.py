"""Earshot's side of the cycle table: ``earshot run --feeds FILE --cycles 2 --json --fresh``
through its Python API, with CPU and timing probes around it.

It runs exactly what ``earshot.cli.ingest.cmd_run`` runs (the embedded moto backend, the
real dispatcher and fetch_worker handlers, ``run_cycle`` per cycle) and adds, per cycle:
CPU seconds of this process, the wall time of each fetch_worker invocation (one SQS batch
of up to 10 feeds), and the time spent inside ``parse_feed`` (wrapped here, not changed).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=Path, required=True, help="text file of feed URLs")
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="where the JSON result goes (stdout carries logs)")
    args = parser.parse_args()

    import earshot.ingest.refresh as refresh
    from earshot import runtime
    from earshot_local.cli.ingest import LOCAL_CLI_ENV, add_feeds, read_feed_list, run_cycle
    from tests.support.aws_stack import EmbeddedBackend

    parse_stats = {"calls": 0, "seconds": 0.0, "episodes": 0, "bytes": 0}
    lock = threading.Lock()
    real_parse = refresh.parse_feed

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
            parse_stats["episodes"] += len(parsed.episodes)
        return parsed

    refresh.parse_feed = timed_parse

    class TimedBackend(EmbeddedBackend):
        batch_seconds: list[float] = []
        dispatch_seconds: float = 0.0

        def invoke(self, function, event):  # noqa: ANN001, ANN201
            started = time.perf_counter()
            try:
                return super().invoke(function, event)
            finally:
                spent = time.perf_counter() - started
                if function == "fetch_worker":
                    self.batch_seconds.append(spent)
                elif function == "dispatcher":
                    self.dispatch_seconds += spent

    # CPU time (per thread, so GIL waits don't count) spent inside boto3 calls = moto.
    moto_cpu = {"s": 0.0}
    local = threading.local()

    def hook_moto_cpu() -> None:
        import boto3

        events = boto3.DEFAULT_SESSION._session.get_component("event_emitter")
        events.register("before-call", lambda **_: setattr(local, "t", time.thread_time()),
                        unique_id="bench-moto-cpu-before")

        def after(**_):  # noqa: ANN003, ANN202
            started = getattr(local, "t", None)
            if started is not None:
                with lock:
                    moto_cpu["s"] += time.thread_time() - started
                local.t = None

        events.register("after-call", after, unique_id="bench-moto-cpu-after")

    urls = read_feed_list(args.feeds).urls
    out = {"command": "earshot run --feeds FILE --cycles 2 --json --fresh", "cycles": []}
    with TimedBackend(state_path=None, extra_env=LOCAL_CLI_ENV) as backend:
        # Before the first client is built: boto3 clients copy the session's event
        # emitter when they are created, so a later hook would miss them.
        hook_moto_cpu()
        repo = runtime.store()
        started = time.perf_counter()
        add_feeds(repo, urls, test_fetch=False, out=sys.stderr)
        out["add_seconds"] = round(time.perf_counter() - started, 3)
        for cycle in range(1, args.cycles + 1):
            for key in parse_stats:
                parse_stats[key] = 0 if key != "seconds" else 0.0
            backend.batch_seconds = []
            backend.dispatch_seconds = 0.0
            moto_cpu["s"] = 0.0
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            report = run_cycle(backend, cycle)
            usage1 = resource.getrusage(resource.RUSAGE_SELF)
            row = report.model_dump(mode="json")
            row["cpu_s"] = round((usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime), 3)
            row["parse"] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in parse_stats.items()}
            row["batch_seconds"] = [round(s, 4) for s in backend.batch_seconds]
            row["dispatch_seconds"] = round(backend.dispatch_seconds, 3)
            row["moto_cpu_s"] = round(moto_cpu["s"], 3)
            out["cycles"].append(row)
            print(f"  earshot cycle {cycle}: {report.seconds:.1f}s wall, {row['cpu_s']:.1f}s CPU, "
                  f"{report.parsed} parsed, aws {report.aws_seconds:.1f}s", file=sys.stderr, flush=True)
        out["feed_item_sizes"] = _feed_item_sizes(repo)
        # The check interval Earshot chose for each feed (its adaptive schedule).
        out["interval_s"] = [f.interval_s for f in repo.list_feeds() if f.interval_s and f.status == "active"]
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    args.out.write_text(json.dumps(out))


def _feed_item_sizes(repo) -> dict:  # noqa: ANN001
    """DynamoDB item sizes (bytes, by AWS's rule: names + values) of the feed-state items
    and of a sample of episode items: they turn request counts into write units."""
    from earshot.store.dynamodb import TYPE_INDEX, serialize

    def size(item: dict) -> int:
        total = 0
        for name, value in item.items():
            total += len(name.encode())
            kind, v = next(iter(value.items()))
            if kind == "S":
                total += len(v.encode())
            elif kind == "N":
                total += len(v) // 2 + 1
            elif kind in ("BOOL", "NULL"):
                total += 1
            else:
                total += len(json.dumps(v))
        return total

    feed_sizes = [size(i) for i in repo._query_all(
        IndexName=TYPE_INDEX, KeyConditionExpression="type_pk = :t",
        ExpressionAttributeValues=serialize({":t": "FEED"}))]
    client = repo.client
    resp = client.scan(TableName=repo.table_name, Limit=2000)
    ep_sizes = [size(i) for i in resp.get("Items", []) if i["sk"]["S"].startswith("EP#")]
    avg = lambda xs: round(sum(xs) / len(xs), 1) if xs else 0  # noqa: E731
    return {"feed_avg_bytes": avg(feed_sizes), "feed_max_bytes": max(feed_sizes, default=0),
            "episode_avg_bytes": avg(ep_sizes), "episode_sample": len(ep_sizes)}


if __name__ == "__main__":
    main()
