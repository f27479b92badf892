"""Transcripts: what the corpus offers, and what fetching them costs per 1,000 episodes.

    python bench/transcripts.py [--corpus ../shared/corpus/feeds] [--episodes 1000]

1. **Corpus**: every feed parsed; episodes that list a ``podcast:transcript``, by ``type``
   attribute, by the format Earshot would fetch (``transcripts.choice``) and by host.
2. **Fetching** (loopback, no network): ``--episodes`` jobs sampled from the corpus's
   transcript episodes (their format and duration) are served by a local HTTP server as
   transcripts of that length (150 words a minute; SRT/VTT cues of ~9 words, HTML
   paragraphs; a second scenario serves every one as word-by-word Podcasting 2.0 JSON,
   the largest form) with a seeded 50-300 ms delay per response, and run through the
   transcript worker's line (``process_transcript_jobs``) in batches of 10, as the SQS
   event source hands them over, on a SQLite store. Counted: requests, bytes served,
   archive bytes (gzipped cues, what S3 stores), wall seconds per batch, CPU seconds.
3. **Cost** per 1,000 episodes from those counts and the list prices in ``cost.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from cost import PRICES  # noqa: E402

from earshot.ingest.parser import parse_feed  # noqa: E402
from earshot.ingest.refresh import new_feed  # noqa: E402
from earshot.models import Episode, Transcript  # noqa: E402
from earshot.settings import Settings  # noqa: E402
from earshot.transcripts.choice import choose  # noqa: E402
from earshot.transcripts.cues import format_of_type  # noqa: E402
from earshot.transcripts.retrieval import TranscriptJob, process_transcript_jobs  # noqa: E402

S3_PUT = 0.005 / 1000
S3_GET = 0.0004 / 1000
S3_GB_MONTH = 0.023
WORKER_MEMORY_GB = 0.5  # template.yaml TranscriptWorkerFunction: the global 512 MB
WORDS_PER_MINUTE = 150
DEFAULT_DURATION_S = 3600
WORDS = ("the pipeline midstream partnership distribution yield crude natural gas coverage leverage "
         "earnings policy market energy storage capacity contract volume basin export price rate").split()
TYPES = {"json": "application/json", "vtt": "text/vtt", "srt": "application/x-subrip", "html": "text/html",
         "text": "text/plain"}


def corpus_transcripts(corpus: Path) -> tuple[dict, list[tuple[str, int]]]:
    episodes = with_transcripts = tags = 0
    by_type: Counter[str] = Counter()
    chosen: Counter[str] = Counter()
    hosts: Counter[str] = Counter()
    feeds: Counter[str] = Counter()
    sample: list[tuple[str, int]] = []
    for path in sorted(corpus.glob("*.xml")):
        try:
            parsed = parse_feed(path.read_bytes(), url="https://corpus.invalid/feed.xml")
        except Exception:  # noqa: BLE001 - a broken corpus feed has no transcripts to count
            continue
        for e in parsed.episodes:
            episodes += 1
            if not e.transcripts:
                continue
            with_transcripts += 1
            tags += len(e.transcripts)
            feeds[path.name] += 1
            by_type.update(t.type or "(none)" for t in e.transcripts)
            best = choose(e.transcripts)
            if best:
                fmt = format_of_type(best[0].type) or "unknown"
                chosen[fmt] += 1
                hosts[urlsplit(best[0].url).hostname or ""] += 1
                sample.append((fmt if fmt in TYPES else "text", e.duration_seconds or DEFAULT_DURATION_S))
    return {
        "feeds": len(list(corpus.glob("*.xml"))), "episodes": episodes, "episodes_with_transcripts": with_transcripts,
        "transcript_tags": tags, "feeds_with_transcripts": len(feeds), "by_type_attribute": dict(by_type),
        "chosen_format": dict(chosen), "chosen_hosts": dict(hosts.most_common()),
        "per_feed": dict(feeds.most_common()),
    }, sample


def render(fmt: str, duration_s: int, rng: random.Random) -> bytes:
    """A transcript of ``duration_s`` seconds in ``fmt``."""
    words = [rng.choice(WORDS) for _ in range(duration_s * WORDS_PER_MINUTE // 60)]
    step = 60 / WORDS_PER_MINUTE
    if fmt == "json":
        segments = [{"speaker": "Host", "startTime": round(i * step, 2), "endTime": round((i + 1) * step, 2),
                     "body": w} for i, w in enumerate(words)]
        return json.dumps({"version": "1.0.0", "segments": segments}).encode()
    cues = [words[i:i + 9] for i in range(0, len(words), 9)]

    def stamp(s: float, sep: str) -> str:
        h, rest = divmod(s, 3600)
        m, sec = divmod(rest, 60)
        return f"{int(h):02d}:{int(m):02d}:{sec:06.3f}".replace(".", sep)

    if fmt in ("srt", "vtt"):
        sep = "," if fmt == "srt" else "."
        blocks = [f"{n + 1}\n{stamp(n * 9 * step, sep)} --> {stamp((n + 1) * 9 * step, sep)}\n{' '.join(c)}\n"
                  for n, c in enumerate(cues)]
        return (("WEBVTT\n\n" if fmt == "vtt" else "") + "\n".join(blocks)).encode()
    if fmt == "html":
        return "".join(f"<cite>Host:</cite><time>{stamp(n * 9 * step, '.')[:8]}</time><p>{' '.join(c)}</p>\n"
                       for n, c in enumerate(cues)).encode()
    return "\n\n".join(" ".join(c) for c in cues).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    bodies: dict[str, tuple[str, int, int]]  # path -> (format, duration_s, seed): rendered per request
    requests = 0
    bytes_sent = 0
    lock = threading.Lock()
    rng = random.Random(7)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        fmt, duration_s, seed = self.server.bodies[self.path]
        body, content_type = render(fmt, duration_s, random.Random(seed)), TYPES[fmt]
        with self.server.lock:
            delay_s = self.server.rng.uniform(0.05, 0.3)
            self.server.requests += 1
            self.server.bytes_sent += len(body)
        time.sleep(delay_s)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def fetch_run(sample: list[tuple[str, int]], episodes: int, *, force_format: str | None, seed: int = 11) -> dict:
    """``episodes`` jobs through the worker's line, batches of 10; counts and seconds."""
    from earshot_local.sqlite_store import SqliteStore

    rng = random.Random(seed)
    picks = [rng.choice(sample) for _ in range(episodes)]
    servers = [_Server((f"127.0.0.{n}", 0), _Handler) for n in (2, 3)]  # two hosts, as the corpus has
    for server in servers:
        server.bodies = {}
        threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        feed = new_feed("https://bench.invalid/feed.xml", __import__("datetime").datetime.now(
            __import__("datetime").UTC))
        store.add_feed(feed)
        jobs, episodes_out = [], []
        for i, (fmt, duration_s) in enumerate(picks):
            fmt = force_format or fmt
            server = servers[i % len(servers)]
            path = f"/t/{i}.{fmt}"
            server.bodies[path] = (fmt, duration_s, i)
            host, port = server.server_address[:2]
            episodes_out.append(Episode(id=f"ep-{i}", title=f"Episode {i}", transcripts=(
                Transcript(url=f"http://{host}:{port}{path}", type=TYPES[fmt]),)))
            jobs.append(TranscriptJob(feed_id=feed.feed_id, episode_id=f"ep-{i}"))
        store.put_new_episodes(feed.feed_id, episodes_out, feed.created_at)  # type: ignore[arg-type]
        settings = Settings(EARSHOT_ALLOWED_HOSTS=",".join(f"{s.server_address[0]}:{s.server_address[1]}"
                                                           for s in servers))
        batch_seconds = []
        cpu_started = time.process_time()
        wall_started = time.perf_counter()
        results: Counter[str] = Counter()
        for start in range(0, len(jobs), 10):
            t0 = time.perf_counter()
            for outcome in process_transcript_jobs(jobs[start:start + 10], repo=store, archive=store,
                                                   settings=settings):
                results[outcome.result] += 1
            batch_seconds.append(time.perf_counter() - t0)
        wall_s = time.perf_counter() - wall_started
        cpu_s = time.process_time() - cpu_started
        archive_bytes = sum(len(b) for (b,) in store._read("SELECT cues FROM transcripts"))
        cue_count = sum(s.cue_count for s in store.iter_transcript_states())
        store.close()
    for server in servers:
        server.shutdown()
    requests = sum(s.requests for s in servers)
    served = sum(s.bytes_sent for s in servers)
    return {
        "episodes": episodes, "format": force_format or "corpus mix", "results": dict(results),
        "requests": requests, "bytes_served": served, "archive_bytes": archive_bytes, "cues": cue_count,
        "wall_s": round(wall_s, 2), "cpu_s": round(cpu_s, 2), "batch_seconds_avg": round(
            sum(batch_seconds) / len(batch_seconds), 3),
    }


def cost_per_1000(run: dict) -> dict:
    """USD per 1,000 episodes' transcripts (the first fetch; a re-check is a 304)."""
    scale = 1000 / run["episodes"]
    batches = 100  # 1,000 jobs, 10 a batch
    gb_s = run["batch_seconds_avg"] * batches * WORKER_MEMORY_GB
    lines = {
        "lambda_requests": batches * PRICES["lambda_request"],
        "lambda_duration": gb_s * PRICES["lambda_gb_s_arm64"],
        # SendMessageBatch from the fetch worker (~1 per feed's new episodes), receive and
        # delete by the event source: ~0.3 requests a job.
        "sqs": 1000 * 0.3 * PRICES["sqs_request"],
        # GetItem episode, feed, state (1 RRU each), PutItem state (1 WRU); a topic that
        # searches transcripts adds a Query and a match write per episode (not counted).
        "dynamodb": 1000 * (3 * PRICES["ddb_rru"] + PRICES["ddb_wru"]),
        "s3_put": 1000 * S3_PUT,
        "s3_storage_month": run["archive_bytes"] * scale / 1e9 * S3_GB_MONTH,
    }
    return {"usd": {k: round(v, 6) for k, v in lines.items()}, "total_usd": round(sum(lines.values()), 4),
            "lambda_gb_s": round(gb_s, 1), "archive_mb": round(run["archive_bytes"] * scale / 1e6, 2),
            "served_mb": round(run["bytes_served"] * scale / 1e6, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus" / "feeds")
    parser.add_argument("--episodes", type=int, default=1000)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    corpus, sample = corpus_transcripts(args.corpus)
    # The all-JSON scenario on a fifth of the episodes (its bodies are ~8x larger); per
    # 1,000 below either way.
    runs = [fetch_run(sample, args.episodes, force_format=None),
            fetch_run(sample, max(10, args.episodes // 5), force_format="json")]
    out = {"corpus": corpus, "runs": [{**r, "cost_per_1000": cost_per_1000(r)} for r in runs]}
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
