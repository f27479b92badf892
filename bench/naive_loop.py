"""The naive baseline: ``feedparser.parse(url)`` one feed after another, then one
``put_item`` per entry into a moto DynamoDB table. No validators, no hashing, no
threads: what a first script would do. Prints one JSON object (per cycle: wall, CPU,
parses, entries, put_item count and the time spent inside moto).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=Path, required=True)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="where the JSON result goes (stdout carries logs)")
    args = parser.parse_args()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ[key] = value

    import boto3
    import feedparser
    from moto import mock_aws

    urls = [u for u in args.feeds.read_text().split() if u]
    out = {"feeds": len(urls), "cycles": []}
    with mock_aws():
        ddb = boto3.resource("dynamodb", region_name="us-east-1")
        table = ddb.create_table(
            TableName="naive", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "feed", "KeyType": "HASH"}, {"AttributeName": "id", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "feed", "AttributeType": "S"},
                                  {"AttributeName": "id", "AttributeType": "S"}],
        )
        for cycle in range(1, args.cycles + 1):
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            parses = entries = puts = errors = 0
            moto_s = 0.0
            for n, url in enumerate(urls, 1):
                d = feedparser.parse(url)
                parses += 1
                if d.get("status") not in (200, None) or not d.get("version"):
                    errors += 1
                for e in d.entries:
                    entries += 1
                    item = {"feed": url, "id": e.get("id") or e.get("link") or e.get("title") or str(entries),
                            "title": e.get("title", ""), "link": e.get("link", ""),
                            "published": e.get("published", ""), "summary": e.get("summary", "")[:20000],
                            "audio": next((x.get("href", "") for x in e.get("enclosures", [])), "")}
                    t = time.perf_counter()
                    table.put_item(Item=item)
                    moto_s += time.perf_counter() - t
                    puts += 1
                if n % 50 == 0:
                    print(f"\r  naive cycle {cycle}: {n}/{len(urls)}", end="", file=sys.stderr, flush=True)
            wall = time.perf_counter() - started
            usage1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
            out["cycles"].append({"cycle": cycle, "seconds": round(wall, 3), "cpu_s": round(cpu, 3),
                                  "parses": parses, "entries": entries, "errors": errors,
                                  "aws_calls": {"PutItem": puts}, "aws_seconds": round(moto_s, 3)})
            print(f"\r  naive cycle {cycle}: {wall:.1f}s wall, {cpu:.1f}s CPU, {puts} put_item, moto {moto_s:.1f}s",
                  file=sys.stderr, flush=True)
    args.out.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
