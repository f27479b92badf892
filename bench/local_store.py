"""The "local store on the corpus" table: does a command slow down as the database fills?

1. Ingest the corpus (every file of ``shared/corpus/feeds``, as local file paths) into a
   fresh database with ``earshot --db corpus.db run --feeds LIST --no-transcripts --json``
   (timed once; the corpus's transcripts live on hosts the benchmark does not contact).
2. Define the same topics (``TOPICS``) in that database and in an empty one.
3. Time each command as a whole CLI process (``earshot --db DB ...``: start-up, imports,
   opening the database, the work, printing) several times on each database, the two
   databases interleaved so load on the machine hits both alike; the median counts:
   ``topics list``, ``topics show SLUG`` (the topic with the most matches), ``feeds list``,
   ``info``, and ``topics add`` (a new topic, backfilled over every stored episode; it is
   removed again, untimed, between runs). ``earshot --help`` is timed too: the start-up
   every command pays before it touches the database.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EARSHOT = Path(sys.executable).parent / "earshot"
# Two topics a user might follow on this corpus (plain words; both match hundreds of episodes).
TOPICS = (
    ("history", "History", "history OR empire OR war"),
    ("open-source", "Open source", 'python OR linux OR "open source"'),
)
BACKFILL = ("bench-backfill", "Science", "science OR climate OR energy OR space")
COMMANDS = (
    ("topics list", ["topics", "list"]),
    ("topics show", ["topics", "show", "{show}"]),
    ("feeds list", ["feeds", "list"]),
    ("info", ["info"]),
)


def run(db: Path | None, argv: list[str], *, check: bool = True) -> tuple[float, str]:
    cmd = [str(EARSHOT), *(["--db", str(db)] if db else []), *argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EARSHOT_")}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return wall, proc.stdout


def summary(samples: list[float]) -> dict:
    return {"median_s": round(statistics.median(samples), 3), "min_s": round(min(samples), 3),
            "max_s": round(max(samples), 3), "runs": [round(s, 3) for s in samples]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=7, help="runs per command and database (median)")
    parser.add_argument("--backfill-runs", type=int, default=5)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="earshot-store-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus_db, empty_db = work / "corpus.db", work / "empty.db"
    for db in (corpus_db, empty_db):
        for path in db.parent.glob(db.name + "*"):
            path.unlink()
    files = sorted(p for p in args.corpus.glob("*") if p.is_file() and p.name != "MANIFEST.tsv")
    feed_list = work / "corpus-feeds.txt"
    feed_list.write_text("".join(f"{p.resolve()}\n" for p in files))
    out: dict = {"corpus_files": len(files), "runs": args.runs, "backfill_runs": args.backfill_runs}

    print(f"  local store: ingesting {len(files)} corpus files", file=sys.stderr, flush=True)
    wall, stdout = run(corpus_db, ["run", "--feeds", str(feed_list), "--no-transcripts", "--json"])
    out["ingest"] = {"process_s": round(wall, 2), "cycle": json.loads(stdout.strip().splitlines()[-1])}
    run(empty_db, ["info"])  # creates the empty database
    for db in (corpus_db, empty_db):
        for slug, name, query in TOPICS:
            run(db, ["topics", "add", slug, "--name", name, "--query", query])
    infos = {label: json.loads(run(db, ["info", "--json"])[1]) for label, db in (("corpus", corpus_db),
                                                                                   ("empty", empty_db))}
    matches = {}
    for slug, _, _ in TOPICS:
        shown = json.loads(run(corpus_db, ["topics", "show", slug, "--json"])[1])
        matches[slug] = shown["report"]["episodes"]
    show = max(matches, key=matches.get)
    out.update({"databases": infos, "topic_matches": matches, "show_slug": show,
                "db_bytes": {"corpus": sum(p.stat().st_size for p in work.glob("corpus.db*")),
                             "empty": sum(p.stat().st_size for p in work.glob("empty.db*"))}})

    samples: dict[str, dict[str, list[float]]] = {}
    samples["earshot --help"] = {"startup": [run(None, ["--help"])[0] for _ in range(args.runs)]}
    for label, argv in COMMANDS:
        argv = [a.format(show=show) for a in argv]
        per_db: dict[str, list[float]] = {"corpus": [], "empty": []}
        run(corpus_db, argv), run(empty_db, argv)  # one unmeasured run each: file cache warm
        for _ in range(args.runs):
            for key, db in (("empty", empty_db), ("corpus", corpus_db)):
                per_db[key].append(run(db, argv)[0])
        samples[label] = per_db
        print(f"  local store: {label}: corpus {statistics.median(per_db['corpus']):.2f}s, "
              f"empty {statistics.median(per_db['empty']):.2f}s", file=sys.stderr, flush=True)
    slug, name, query = BACKFILL
    per_db = {"corpus": [], "empty": []}
    added = {}
    for _ in range(args.backfill_runs):
        for key, db in (("empty", empty_db), ("corpus", corpus_db)):
            wall, stdout = run(db, ["topics", "add", slug, "--name", name, "--query", query])
            per_db[key].append(wall)
            added[key] = stdout.strip()
            run(db, ["topics", "remove", slug])
    samples["topics add"] = per_db
    print(f"  local store: topics add: corpus {statistics.median(per_db['corpus']):.2f}s, "
          f"empty {statistics.median(per_db['empty']):.2f}s", file=sys.stderr, flush=True)

    out["backfill"] = {"slug": slug, "query": query, "output": added}
    out["commands"] = {}
    for label, per_db in samples.items():
        row = {key: summary(values) for key, values in per_db.items()}
        if "corpus" in row:
            row["ratio"] = round(row["corpus"]["median_s"] / row["empty"]["median_s"], 2)
        out["commands"][label] = row
    print(json.dumps(out))


if __name__ == "__main__":
    main()
