"""Request counts of the *deployed* fetch path, for the cost table (counts, not speed).

The deployed cycle is the dispatcher Lambda (``functions/dispatcher``: a Query per due
shard, SendMessageBatch of 10) and the fetch_worker Lambda on each SQS batch of 10 feeds
(``functions/fetch_worker``: the conditional GET, then DynamoDB reads and writes). Here
both real handlers run against the AWS test double, ``tests.support.aws_stack.EmbeddedBackend``
(moto in-process, tables and queues built from ``template.yaml``), which counts every
boto3 request by operation. The workload is a sample of the cycle table's feeds (every
k-th), served by the same loopback feed server under their own URL prefix, so they see
the same cold and warm responses.

Two cycles, each: the dispatcher forced (every feed, as ``earshot run`` checks them),
then the worker on each SQS batch, **one invocation at a time** (in AWS each invocation
has its own CPU; here they would share one GIL). Per cycle: requests by operation, the
outcome counts, and each worker invocation's wall time; those times include moto's
in-process answers (a few ms each, standing in for DynamoDB's network round trips), so
they are an estimate of the worker's Lambda duration, not a speed result. Also: the
DynamoDB item sizes (feed state, episodes) that turn request counts into write units.
Writes one JSON object to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=Path, required=True, help="text file of feed URLs (the sample)")
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))

    from earshot import runtime
    from earshot.ingest.refresh import new_feed
    from earshot_local.functions import sample_event
    from tests.support.aws_stack import EmbeddedBackend

    urls = [u for u in args.feeds.read_text().split() if u]
    out: dict = {"feeds": len(urls), "cycles": []}
    # The deployed fetcher refuses private addresses; the sample lives on loopback.
    with EmbeddedBackend(extra_env={"EARSHOT_ALLOW_PRIVATE_ADDRESSES": "true"}) as backend:
        repo = runtime.store()
        now = datetime.now(UTC)
        for url in urls:
            repo.add_feed(new_feed(url, now))
        queue_url = backend.settings.fetch_queue_url
        for cycle in range(1, args.cycles + 1):
            before = {f.feed_id: f.episode_count for f in repo.list_feeds()}
            backend.reset_counters()
            started = time.perf_counter()
            dispatch0 = time.perf_counter()
            dispatched = backend.invoke("dispatcher", {**sample_event("dispatcher_scheduled"), "force": True})
            dispatch_s = time.perf_counter() - dispatch0
            batch_seconds, failed_records = [], 0
            while (event := backend.receive_sqs_event(queue_url)) is not None:
                t = time.perf_counter()
                response = backend.invoke("fetch_worker", event)
                batch_seconds.append(round(time.perf_counter() - t, 4))
                failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
                failed_records += len(failed)
                backend.delete_messages(queue_url, event, keep=failed)
                if failed:  # an infrastructure failure: visible again later; not expected here
                    break
            seconds = time.perf_counter() - started
            calls = dict(sorted(backend.aws_calls.items()))
            feeds = list(repo.list_feeds())  # after counting: reporting is not part of the job
            results = Counter(f.last_result for f in feeds)
            out["cycles"].append({
                "cycle": cycle, "feeds": dispatched["queued"], "aws_calls": calls,
                "host_slot_updates": backend.host_slot_writes,
                "parsed": results["parsed"], "not_modified": results["not_modified"],
                "unchanged": results["unchanged"],
                "new_episodes": sum(f.episode_count - before.get(f.feed_id, 0) for f in feeds),
                "errors": dict(Counter(f.last_error_kind for f in feeds if f.last_result in ("error", "gone"))),
                "batch_seconds": batch_seconds, "dispatch_seconds": round(dispatch_s, 3),
                "failed_records": failed_records, "seconds": round(seconds, 3),
            })
            print(f"  deployed path (moto) cycle {cycle}: {sum(calls.values())} AWS requests {calls}",
                  file=sys.stderr, flush=True)
        out["feed_item_sizes"] = _feed_item_sizes(repo)
    args.out.write_text(json.dumps(out))


def item_size(item: dict) -> int:
    """A DynamoDB item's size by AWS's rule (attribute names + values; numbers about one
    byte per two digits; lists and maps counted as their JSON)."""
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


def _feed_item_sizes(repo) -> dict:  # noqa: ANN001
    """DynamoDB item sizes (bytes, by AWS's rule: names + values) of the whole feed-state
    items and episode items in the table: they turn request counts into write units."""

    size = item_size

    feed_sizes, ep_sizes = [], []
    kwargs: dict = {"TableName": repo.table_name}
    while True:
        resp = repo.client.scan(**kwargs)
        for item in resp.get("Items", []):
            sk = item["sk"]["S"]
            if sk == "FEED":
                feed_sizes.append(size(item))
            elif sk.startswith("EP#"):
                ep_sizes.append(size(item))
        if "LastEvaluatedKey" not in resp:
            break
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    avg = lambda xs: round(sum(xs) / len(xs), 1) if xs else 0  # noqa: E731
    return {"feed_avg_bytes": avg(feed_sizes), "feed_max_bytes": max(feed_sizes, default=0),
            "episode_avg_bytes": avg(ep_sizes), "episode_sample": len(ep_sizes)}


if __name__ == "__main__":
    main()
