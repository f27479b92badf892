"""The naive baseline: ``feedparser.parse(url)`` one feed after another, then one
``INSERT OR REPLACE`` per entry into a SQLite file (stdlib ``sqlite3``, one commit per
feed). No validators, no hashing, no threads: what a first script would do. Writes one
JSON object (per cycle: wall, CPU, parses, entries, inserts and the time spent in SQLite).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=Path, required=True)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="where the JSON result goes (stdout carries logs)")
    args = parser.parse_args()
    import feedparser

    urls = [u for u in args.feeds.read_text().split() if u]
    out = {"feeds": len(urls), "cycles": []}
    with tempfile.TemporaryDirectory(prefix="naive-") as tmp:
        db = sqlite3.connect(os.path.join(tmp, "naive.db"))
        db.execute("CREATE TABLE entries (feed TEXT, id TEXT, title TEXT, link TEXT, published TEXT, "
                   "summary TEXT, audio TEXT, PRIMARY KEY (feed, id))")
        for cycle in range(1, args.cycles + 1):
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            started, started_at = time.perf_counter(), time.time()
            parses = entries = puts = errors = 0
            store_s = 0.0
            for n, url in enumerate(urls, 1):
                d = feedparser.parse(url)
                parses += 1
                if d.get("status") not in (200, None) or not d.get("version"):
                    errors += 1
                for e in d.entries:
                    entries += 1
                    row = (url, e.get("id") or e.get("link") or e.get("title") or str(entries), e.get("title", ""),
                           e.get("link", ""), e.get("published", ""), e.get("summary", "")[:20000],
                           next((x.get("href", "") for x in e.get("enclosures", [])), ""))
                    t = time.perf_counter()
                    db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", row)
                    store_s += time.perf_counter() - t
                    puts += 1
                t = time.perf_counter()
                db.commit()
                store_s += time.perf_counter() - t
                if n % 50 == 0:
                    print(f"\r  naive cycle {cycle}: {n}/{len(urls)}", end="", file=sys.stderr, flush=True)
            wall = time.perf_counter() - started
            usage1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
            out["cycles"].append({"cycle": cycle, "seconds": round(wall, 3), "cpu_s": round(cpu, 3),
                                  "parses": parses, "entries": entries, "errors": errors,
                                  "inserts": puts, "store_seconds": round(store_s, 3),
                                  "started_at": started_at, "ended_at": time.time()})
            print(f"\r  naive cycle {cycle}: {wall:.1f}s wall, {cpu:.1f}s CPU, {puts} inserts, SQLite {store_s:.1f}s",
                  file=sys.stderr, flush=True)
        db.close()
    args.out.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
