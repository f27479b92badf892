"""The scale model of docs/scale.md: figures derived from measured request counts.

Reads the scale bench's results (``bench/scale.py``: ``docs/scale-results.json``) and the
deployed path's measured counts quoted below (docs/benchmarks.md, the deployed-path
table and the cost section), applies the formulas shown in docs/scale.md and prints the
tables as markdown:

    .venv/bin/python bench/scale_model.py docs/scale-results.json

Every input is a named constant here or a field of the results file; assumptions (not
measured by Earshot) are marked ASSUMED.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cost import PRICES  # noqa: E402 - the cost model's price list, one source

FEED_COUNTS = (10_000, 100_000, 1_000_000, 4_000_000)
TOPICS = 10_000
# Measured, deployed path (docs/benchmarks.md, warm cycle of 200 feeds on the moto double):
UPDATE_PER_CHECK = 200 / 200  # UpdateItem: the feed's state
QUERY_PER_CHECK = (28 - 4) / 200  # episode-hash Query per parsed feed (4 of 28 were the dispatcher's shards)
SQS_PER_CHECK = (20 + 21 + 20) / 200  # SendMessageBatch + ReceiveMessage + DeleteMessageBatch
WRU_PER_CHECK = 4  # feed item 632 B: table 1 + due key move 2 + type index 1
WORKER_S_PER_BATCH = 0.544  # fetch_worker wall time per batch of 10 checks (moto standing in for DynamoDB)
CHECKS_PER_FEED_HOUR = {"adaptive": 0.069, "hourly": 1.0}  # Earshot's own schedule on the workload; hourly
EPISODE_ITEM_BYTES = 1825  # a real episode item (cost section)
NEW_EPISODES_PER_FEED_HOUR = 1.5 / 168  # a typical podcast: 1.5 episodes a week
EPISODES_PER_FEED = 25  # the archive the issue sizes: 100M episodes / 4M feeds
DUE_SHARDS = 4  # EARSHOT_DUE_SHARDS default
DUE_PROJECTION_BYTES = 400  # ASSUMED: a due-index entry (url, validators, counters)
PARTITION_WCU_S, PARTITION_RCU_S, PARTITION_GB = 1000, 3000, 10  # DynamoDB's per-partition ceilings
SQS_BATCH_CALL_S = 0.02  # ASSUMED: one SendMessageBatch round trip in-region
SCAN_PAGE_S = 0.1  # ASSUMED: one 1 MB Scan page round trip
DISPATCHER_TIMEOUT_S = 120  # template.yaml DispatcherFunction
WORKER_GB = 1.0
BACKFILL_EPISODES = 100_000_000
BACKFILL_FEEDS = 4_000_000
BACKFILL_SEGMENTS = 32  # EARSHOT_BACKFILL_SEGMENTS default = the worker mapping's MaximumConcurrency
BACKFILL_PAGE_ITEMS = 500  # EARSHOT_BACKFILL_PAGE_SIZE default
MATCH_SHARE = 0.001  # ASSUMED: a topic matches 1 episode in 1,000


def _fmt(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def ingest_table(results: dict, schedule: str) -> list[str]:
    perc = results["percolation"]
    matches_per_episode = perc["matches"] / perc["episodes"]
    ms_every = perc["every_topic_us_per_episode"] / 1000 * TOPICS / perc["topics"]
    ms_perc = perc["percolated_us_per_episode"] / 1000
    rate = CHECKS_PER_FEED_HOUR[schedule]
    rows = ["| feeds | checks/h | DynamoDB requests/h | WRU/h | SQS requests/h | new episodes/h "
            "| matching CPU-s/h (percolated / every topic) | match writes/h | worker concurrency (avg) "
            "| due-index WCU/s per shard (avg) | table partitions (size) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for feeds in FEED_COUNTS:
        checks = feeds * rate
        new = feeds * NEW_EPISODES_PER_FEED_HOUR
        match_writes = new * matches_per_episode
        ddb = checks * (UPDATE_PER_CHECK + QUERY_PER_CHECK) + match_writes + DUE_SHARDS
        wru = checks * WRU_PER_CHECK + new * math.ceil(EPISODE_ITEM_BYTES / 1024) + match_writes * 2
        sqs = checks * SQS_PER_CHECK
        cpu_perc, cpu_every = new * ms_perc / 1000, new * ms_every / 1000
        concurrency = (checks / 10 * WORKER_S_PER_BATCH + cpu_perc) / 3600
        due_wcu = checks * 2 / 3600 / DUE_SHARDS
        size_gb = feeds * EPISODES_PER_FEED * EPISODE_ITEM_BYTES / 1e9
        rows.append(f"| {feeds:,} | {_fmt(checks)} | {_fmt(ddb)} | {_fmt(wru)} | {_fmt(sqs)} | {_fmt(new)} | "
                    f"{_fmt(cpu_perc)} / {_fmt(cpu_every)} | {_fmt(match_writes)} | {_fmt(concurrency)} | "
                    f"{_fmt(due_wcu)} | {max(1, math.ceil(size_gb / PARTITION_GB))} ({_fmt(size_gb)} GB) |")
    return rows


def dispatcher_table() -> list[str]:
    rows = ["| feeds | schedule | due per run | SendMessageBatch calls | send time (s) | checks in memory (MB) | "
            "due-index read per shard (RRU) | fits 120 s? |", "|---:|---|---:|---:|---:|---:|---:|---|"]
    for feeds in FEED_COUNTS:
        for schedule, rate in CHECKS_PER_FEED_HOUR.items():
            due = feeds * rate
            calls = math.ceil(due / 10)
            send_s = calls * SQS_BATCH_CALL_S
            rru = due / DUE_SHARDS * DUE_PROJECTION_BYTES / 4096 / 2
            rows.append(f"| {feeds:,} | {schedule} | {_fmt(due)} | {calls:,} | {_fmt(send_s)} | "
                        f"{_fmt(due * DUE_PROJECTION_BYTES / 1e6)} | {_fmt(rru)} | "
                        f"{'yes' if send_s < DISPATCHER_TIMEOUT_S else '**no**'} |")
    return rows


def backfill_rows(results: dict) -> tuple[list[str], dict]:
    fan = results["fanout"]
    mem = results["memory"]
    largest = mem["sizes"][max(mem["sizes"], key=int)]["segmented"]
    cpu_s_per_episode = largest["seconds"] / int(max(mem["sizes"], key=int))
    items = BACKFILL_EPISODES + BACKFILL_FEEDS
    pages = math.ceil(items / BACKFILL_PAGE_ITEMS)
    # Per page, measured on moto (fanout part): Scan, BatchGetItem (the page's feeds), UpdateItem (progress).
    scans_per_page = fan["worker_requests"]["Scan"] / fan["worker_requests"]["Scan"]
    batchget_per_page = fan["worker_requests"].get("BatchGetItem", 0) / fan["worker_requests"]["Scan"]
    update_per_page = (fan["worker_requests"]["UpdateItem"] - 1) / fan["worker_requests"]["Scan"]
    page_bytes = BACKFILL_PAGE_ITEMS * EPISODE_ITEM_BYTES
    scan_rru = items * EPISODE_ITEM_BYTES / 4096 / 2  # eventually consistent: 8 KB per unit
    feeds_per_page = BACKFILL_PAGE_ITEMS / (EPISODES_PER_FEED + 1)
    batchget_rru = pages * feeds_per_page * 0.5
    job_item_kb = BACKFILL_SEGMENTS * 0.12 + 0.3  # ASSUMED ~120 B per segment entry in the run's item
    update_wru = pages * update_per_page * math.ceil(job_item_kb)
    matches = BACKFILL_EPISODES * MATCH_SHARE
    match_wru = matches * 2
    page_s = SCAN_PAGE_S + BACKFILL_PAGE_ITEMS * cpu_s_per_episode
    hours = pages / BACKFILL_SEGMENTS * page_s / 3600
    gb_s = pages * page_s * WORKER_GB
    invocations = math.ceil(pages * page_s / (900 - 30))
    cost = {
        "Scan reads": scan_rru * PRICES["ddb_rru"],
        "feed titles (BatchGetItem)": batchget_rru * PRICES["ddb_rru"],
        "progress (UpdateItem)": update_wru * PRICES["ddb_wru"],
        "match writes": match_wru * PRICES["ddb_wru"],
        "Lambda duration": gb_s * PRICES["lambda_gb_s_arm64"],
        "Lambda requests + SQS": invocations * (PRICES["lambda_request"] + 3 * PRICES["sqs_request"]),
    }
    read_rate = BACKFILL_SEGMENTS * (page_bytes / 8192) / page_s
    facts = {"pages": pages, "page_s": page_s, "hours": hours, "cost": sum(cost.values()), "read_rru_s": read_rate,
             "cpu_us_per_episode": cpu_s_per_episode * 1e6, "scan_rru": scan_rru, "scans_per_page": scans_per_page,
             "batchget_per_page": batchget_per_page, "update_per_page": update_per_page, "gb_s": gb_s,
             "invocations": invocations}
    rows = ["| item | quantity | formula | USD |", "|---|---:|---|---:|",
            f"| Scan reads | {scan_rru / 1e6:.1f} M RRU | (100 M episodes + 4 M feeds) x {EPISODE_ITEM_BYTES} B / 8 KB "
            f"| {cost['Scan reads']:.2f} |",
            f"| feed titles | {batchget_rru / 1e6:.2f} M RRU | {pages:,} pages x {feeds_per_page:.0f} feeds x 0.5 "
            f"| {cost['feed titles (BatchGetItem)']:.2f} |",
            f"| progress | {update_wru / 1e6:.2f} M WRU | {pages:,} pages x {update_per_page:.2f} UpdateItem x "
            f"{math.ceil(job_item_kb)} WRU | {cost['progress (UpdateItem)']:.2f} |",
            f"| matches | {match_wru / 1e6:.2f} M WRU | 100 M x {MATCH_SHARE} x 2 WRU | {cost['match writes']:.2f} |",
            f"| Lambda | {gb_s / 1e3:.0f} k GB-s | {pages:,} pages x {page_s:.3f} s x 1 GB | "
            f"{cost['Lambda duration']:.2f} |",
            f"| requests | {invocations:,} invocations | one per 870 s of a segment's work, 3 SQS requests each | "
            f"{cost['Lambda requests + SQS']:.2f} |",
            f"| **total** | | | **{sum(cost.values()):.2f}** |"]
    return rows, facts


def main() -> None:
    results = json.loads(Path(sys.argv[1]).read_text())
    print("### Ingest, adaptive schedule (0.069 checks per feed-hour)\n")
    print("\n".join(ingest_table(results, "adaptive")))
    print("\n### Ingest, every feed hourly\n")
    print("\n".join(ingest_table(results, "hourly")))
    print("\n### Dispatcher, one run\n")
    print("\n".join(dispatcher_table()))
    rows, facts = backfill_rows(results)
    print("\n### One backfill over 100 M episodes\n")
    print("\n".join(rows))
    print("\n" + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in facts.items()}))


if __name__ == "__main__":
    main()
