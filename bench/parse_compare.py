"""The parse table: every corpus file through ``parse_feed`` as Earshot runs it (the lxml fast
path, feedparser for what it declines), through the feedparser path alone, and through the
former ``parse_feed`` (feedparser with its own sanitizer, before the fast path), with the
output of the two current paths compared field by field.

- ``earshot``: ``parse_feed(body, url=...)`` (``EARSHOT_PARSER=auto``, the default);
- ``fallback``: ``parse_feed(body, url=..., parser="feedparser")``, the reference for *identical*;
- ``fast path``: ``parse_fast`` alone on the files it reads (it declines the others), with how
  many of their channels the channel reader read and how many it left to feedparser;
- ``former``: ``parse_feed`` of commit ``FORMER_COMMIT`` (the last before the fast path),
  extracted with ``git archive`` and timed in a child process on the same files;
- ``feedparser`` alone (sanitizer off, as called now), the expat pass alone, and the raw
  ``lxml.etree`` recover-parse floor, for where the time goes.

Each file runs ``--rounds`` times per parser; the fastest round counts. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

BASE_URL = "https://feeds.example.com/"
REPO = Path(__file__).resolve().parents[1]
FORMER_COMMIT = "c66669a"  # parse_feed = expat pass + feedparser with sanitize_html + mapping


def _timed(fn, rounds: int):  # noqa: ANN001, ANN202
    best, result, error = float("inf"), None, None
    for _ in range(rounds):
        started = time.perf_counter()
        try:
            result, error = fn(), None
        except Exception as exc:  # noqa: BLE001 - a rejection is an outcome
            result, error = exc, type(exc).__name__
        best = min(best, time.perf_counter() - started)
    return best, result, error


def former_child(corpus: Path, rounds: int) -> None:
    """Runs with the former commit's ``shared/`` first on sys.path: times its parse_feed."""
    import warnings

    warnings.simplefilter("ignore")
    from earshot.ingest.parser import parse_feed

    total, episodes = 0.0, 0
    for path in sorted(p for p in corpus.iterdir() if p.is_file()):
        body = path.read_bytes()
        seconds, result, error = _timed(lambda: parse_feed(body, url=BASE_URL + path.name), rounds)
        total += seconds
        episodes += len(result.episodes) if error is None else 0
    json.dump({"seconds": total, "episodes": episodes, "module": sys.modules["earshot.ingest.parser"].__file__},
              sys.stdout)


def run_former(corpus: Path, rounds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="earshot-former-") as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", FORMER_COMMIT, "shared/earshot"],
                                 capture_output=True, check=True).stdout
        archive_path = Path(tmp) / "former.tar"
        archive_path.write_bytes(archive)
        with tarfile.open(archive_path) as tar:
            tar.extractall(tmp, filter="data")
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "shared")}
        out = subprocess.run([sys.executable, __file__, "--former-child", "--corpus", str(corpus),
                              "--rounds", str(rounds)], capture_output=True, text=True, env=env, check=True)
        result = json.loads(out.stdout)
        assert result["module"].startswith(tmp), "the child must import the former parser"
        return {"seconds": result["seconds"], "episodes": result["episodes"], "commit": FORMER_COMMIT}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--former-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        json.dump({"error": f"corpus not found at {args.corpus}"}, sys.stdout)
        return
    rounds = 1 if args.quick else args.rounds
    if args.former_child:
        former_child(args.corpus, rounds)
        return

    import warnings

    from lxml import etree

    from earshot.ingest import parser as ep
    from earshot.ingest.channel import read_channel
    from earshot.ingest.fastparse import Declined, read_feed
    from earshot.ingest.parser import parse_fast, parse_feed

    warnings.simplefilter("ignore")
    files = sorted(p for p in args.corpus.iterdir() if p.is_file())
    lxml_parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=True)
    item_tags = ("item", "{http://purl.org/rss/1.0/}item", "{http://www.w3.org/2005/Atom}entry")

    def lxml_floor(body: bytes) -> int:
        root = etree.fromstring(body, lxml_parser)
        return 0 if root is None else sum(1 for _ in root.iter(*item_tags))

    names = ("earshot", "fallback", "fast path", "feedparser", "expat pass", "lxml floor")
    totals = {n: {"seconds": 0.0, "episodes": 0, "errors": 0, "files": 0} for n in names}
    field_diffs: Counter[str] = Counter()
    declines: Counter[str] = Counter()
    channel_declines: Counter[str] = Counter()
    channels_read = 0
    identical_episodes = identical_all = 0
    fast_bytes = fast_fallback_s = 0.0
    per_file: list[dict] = []
    total_bytes = 0
    for n, path in enumerate(files, 1):
        body = path.read_bytes()
        total_bytes += len(body)
        url = BASE_URL + path.name
        runs = {
            "earshot": lambda: parse_feed(body, url=url),
            "fallback": lambda: parse_feed(body, url=url, parser="feedparser"),
            "fast path": lambda: parse_fast(body, url=url),
            "feedparser": lambda: ep._run_feedparser(body),
            "expat pass": lambda: ep._scan(body),
            "lxml floor": lambda: lxml_floor(body),
        }
        out = {}
        for name, fn in runs.items():
            seconds, result, error = _timed(fn, rounds)
            if name == "fast path" and isinstance(result, Declined):
                declines[str(result).split(": ")[0]] += 1
                continue
            totals[name]["seconds"] += seconds
            totals[name]["errors"] += error is not None
            totals[name]["files"] += 1
            out[name] = (result, error, seconds)
        if "fast path" in out:
            fast_bytes += len(body)
            fast_fallback_s += out["fallback"][2]
            try:  # the channel reader, or feedparser on the channel's elements alone
                read_channel(read_feed(body, lambda entry, tags: None).channel, ep.feedparser_date)
                channels_read += 1
            except Declined as exc:
                channel_declines[str(exc)] += 1
        for name in ("earshot", "fallback", "fast path"):
            if name in out and out[name][1] is None:
                totals[name]["episodes"] += len(out[name][0].episodes)
        (ref, ref_err, _), (got, got_err, _) = out["fallback"], out["earshot"]
        row = {"file": path.name, "bytes": len(body), "path": "fast" if "fast path" in out else "feedparser",
               "episodes": len(ref.episodes) if ref_err is None else 0, "error": ref_err, "differences": {}}
        if ref_err or got_err:
            same_episodes = same_all = (ref_err == got_err and str(ref) == str(got))
            if not same_all:
                row["differences"]["outcome"] = f"{ref_err or 'ok'} vs {got_err or 'ok'}"
        else:
            a = [e.model_dump(mode="json") for e in ref.episodes]
            b = [e.model_dump(mode="json") for e in got.episodes]
            diff: Counter[str] = Counter()
            if len(a) != len(b):
                diff["episode count"] += 1
            for x, y in zip(a, b):
                for key in x:
                    if x[key] != y[key]:
                        diff[key] += 1
            same_episodes = not diff
            if ref.feed != got.feed:
                diff.update(f"feed.{k}" for k in ref.feed.model_fields if getattr(ref.feed, k) != getattr(got.feed, k))
            if ref.warnings != got.warnings:
                diff["warnings"] += 1
            same_all = not diff
            row["differences"] = dict(diff)
            field_diffs.update(diff.keys())
        identical_episodes += same_episodes
        identical_all += same_all
        per_file.append(row)
        if n % 20 == 0:
            print(f"  parse: {n}/{len(files)} files", file=sys.stderr, flush=True)

    former = run_former(args.corpus, rounds)
    mb = total_bytes / 1e6
    table = {}
    for name, t in totals.items():
        s = t["seconds"] or 1e-9
        size_mb = fast_bytes / 1e6 if name == "fast path" else mb
        table[name] = {"seconds": round(t["seconds"], 3), "mb_per_s": round(size_mb / s, 2), "files": t["files"],
                       "episodes": t["episodes"], "episodes_per_s": round(t["episodes"] / s, 1),
                       "errors": t["errors"], "speedup_vs_former": round(former["seconds"] / s, 2)}
    table["former"] = {"seconds": round(former["seconds"], 3), "mb_per_s": round(mb / former["seconds"], 2),
                       "files": len(files), "episodes": former["episodes"],
                       "episodes_per_s": round(former["episodes"] / former["seconds"], 1), "errors": 0,
                       "speedup_vs_former": 1.0}
    result = {
        "files": len(files), "mb": round(mb, 2), "rounds": rounds, "table": table, "former_commit": FORMER_COMMIT,
        "identical": {"episodes": {"files": identical_episodes, "of": len(files),
                                   "share": round(identical_episodes / len(files), 4)},
                      "everything": {"files": identical_all, "of": len(files),
                                     "share": round(identical_all / len(files), 4)}},
        "field_diffs": dict(field_diffs),
        "fast_path": {"files": totals["fast path"]["files"], "mb": round(fast_bytes / 1e6, 2),
                      "fallback_s_on_same_files": round(fast_fallback_s, 3),
                      "declined": {"count": sum(declines.values()), "reasons": dict(declines.most_common())},
                      "channels": {"read": channels_read, "declined": sum(channel_declines.values()),
                                   "reasons": dict(channel_declines.most_common())}},
        "per_file": per_file,
    }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
