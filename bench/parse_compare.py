"""The parse table: every corpus file through earshot.ingest.parser.parse_feed, the raw lxml
recover-parse floor, and the alternatives; speed, and output compared field by field.

- ``earshot``: ``earshot.ingest.parser.parse_feed`` (expat pass + feedparser + mapping), with a
  breakdown of where its time goes (expat pass, feedparser, the rest = mapping/pydantic);
- ``feedparser`` alone (what Earshot calls inside);
- ``lxml floor``: ``lxml.etree.fromstring`` with ``recover=True`` and the items counted;
- ``fast path``: ``bench/fastpath.py`` (feedparser-rs + Earshot's own mapping, feedparser
  fallback), compared on every Episode field;
- ``feedparser-rs``, ``fastfeedparser``, ``podcastparser`` raw: their own output adapted
  to the core fields (guid, title, published, audio_url, link, duration) and compared on
  those only (they do not produce sanitized HTML, transcripts or chapters as Earshot does).

Each file runs ``--rounds`` times per parser; the fastest round counts. Prints JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BASE_URL = "https://feeds.example.com/"
CORE = ("guid", "title", "published", "audio_url", "link", "duration_seconds")


def _timed(fn, rounds: int):  # noqa: ANN001, ANN202
    best, result, error = float("inf"), None, None
    for _ in range(rounds):
        started = time.perf_counter()
        try:
            result, error = fn(), None
        except Exception as exc:  # noqa: BLE001 - a rejection is an outcome
            result, error = None, f"{type(exc).__name__}"
        best = min(best, time.perf_counter() - started)
    return best, result, error


def _ws(text: object) -> str:
    return re.sub(r"\s+", " ", str(text or "")).strip()


def _epoch(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, time.struct_time):
        try:
            return int(datetime(*value[:6], tzinfo=UTC).timestamp())
        except (ValueError, OverflowError):
            return None
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
    except (ValueError, OverflowError):
        return None


def core_from_episode(e) -> tuple:  # noqa: ANN001
    return (e.guid or None, _ws(e.title), _epoch(e.published), e.audio_url, e.link, e.duration_seconds)


def core_from_podcastparser(ep: dict) -> tuple:
    enc = (ep.get("enclosures") or [{}])[0]
    return (ep.get("guid") or None, _ws(ep.get("title")), _epoch(ep.get("published") or None),
            enc.get("url"), ep.get("link") or None, ep.get("total_time") or None)


def core_from_feedparser_dict(e) -> tuple:  # noqa: ANN001 - feedparser-rs and fastfeedparser entries
    from earshot.textutil import parse_duration

    enc = next(iter(e.get("enclosures") or []), None) or {}
    href = enc.get("href") or enc.get("url")
    dur = e.get("itunes_duration")
    if dur is None and e.get("itunes") is not None:
        dur = e.get("itunes").get("duration")
    published = e.get("published_parsed") or e.get("updated_parsed") or e.get("published") or e.get("updated")
    return (e.get("id") or None, _ws(e.get("title")), _epoch(published), href or None, e.get("link") or None,
            parse_duration(str(dur)) if dur not in (None, "") else None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        json.dump({"error": f"corpus not found at {args.corpus}"}, sys.stdout)
        return
    rounds = 1 if args.quick else args.rounds

    import fastfeedparser
    import feedparser_rs
    import podcastparser
    from lxml import etree

    import fastpath
    from earshot.ingest import parser as ep
    from earshot.ingest.parser import parse_feed

    files = sorted(p for p in args.corpus.iterdir() if p.is_file())
    lxml_parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=True)
    item_tags = ("item", "{http://purl.org/rss/1.0/}item", "{http://www.w3.org/2005/Atom}entry")

    def lxml_floor(body: bytes) -> int:
        root = etree.fromstring(body, lxml_parser)
        return 0 if root is None else sum(1 for _ in root.iter(*item_tags))

    names = ("earshot", "feedparser", "expat pass", "lxml floor", "fast path", "feedparser-rs", "fastfeedparser",
             "podcastparser")
    totals = {n: {"seconds": 0.0, "episodes": 0, "errors": 0} for n in names}
    identical = Counter()
    compared = Counter()
    field_diffs: dict[str, Counter] = {n: Counter() for n in ("fast path", "feedparser-rs", "fastfeedparser", "podcastparser")}
    per_file: list[dict] = []
    total_bytes = 0
    for n, path in enumerate(files, 1):
        body = path.read_bytes()
        total_bytes += len(body)
        url = BASE_URL + path.name
        runs = {
            "earshot": lambda: parse_feed(body, url=url),
            "feedparser": lambda: ep._run_feedparser(body),
            "expat pass": lambda: ep._scan(body),
            "lxml floor": lambda: lxml_floor(body),
            "fast path": lambda: fastpath.parse_feed_fast(body, url=url),
            "feedparser-rs": lambda: feedparser_rs.parse(body),
            "fastfeedparser": lambda: fastfeedparser.parse(body),
            "podcastparser": lambda: podcastparser.parse(url, io.BytesIO(body)),
        }
        out = {}
        for name, fn in runs.items():
            seconds, result, error = _timed(fn, rounds)
            totals[name]["seconds"] += seconds
            totals[name]["errors"] += error is not None
            out[name] = (result, error)
        ref, ref_err = out["earshot"]
        count = {
            "earshot": len(ref.episodes) if ref else 0,
            "feedparser": len(out["feedparser"][0].get("entries", [])) if out["feedparser"][0] else 0,
            "expat pass": 0,
            "lxml floor": out["lxml floor"][0] or 0,
            "fast path": len(out["fast path"][0].episodes) if out["fast path"][0] else 0,
            "feedparser-rs": len(out["feedparser-rs"][0].entries) if out["feedparser-rs"][0] else 0,
            "fastfeedparser": len(out["fastfeedparser"][0].get("entries", [])) if out["fastfeedparser"][0] else 0,
            "podcastparser": len(out["podcastparser"][0].get("episodes", [])) if out["podcastparser"][0] else 0,
        }
        for name, c in count.items():
            totals[name]["episodes"] += c
        row = {"file": path.name, "bytes": len(body), "earshot_episodes": count["earshot"],
               "earshot_error": ref_err, "differences": {}}
        # --- fast path: every Episode field, plus the outcome (rejection kind).
        fast, fast_err = out["fast path"]
        compared["fast path"] += 1
        if ref_err or fast_err:
            same = ref_err == fast_err
            if not same:
                row["differences"]["fast path"] = {"outcome": f"{ref_err or 'ok'} vs {fast_err or 'ok'}"}
        else:
            a = [e.model_dump(mode="json") for e in ref.episodes]
            b = [e.model_dump(mode="json") for e in fast.episodes]
            diff = Counter()
            if len(a) != len(b):
                diff["episode count"] += 1
            for x, y in zip(a, b):
                for key in x:
                    if key != "content_hash" and x[key] != y[key]:
                        diff[key] += 1
            same = not diff
            if diff:
                row["differences"]["fast path"] = dict(diff)
                field_diffs["fast path"].update(diff.keys())
        identical["fast path"] += same
        # --- raw alternatives: core fields, as multisets (podcastparser sorts by date).
        ref_core = sorted(map(repr, (core_from_episode(e) for e in ref.episodes))) if ref else None
        adapters = {
            "feedparser-rs": lambda r: [core_from_feedparser_dict(e) for e in r.entries],
            "fastfeedparser": lambda r: [core_from_feedparser_dict(e) for e in r.get("entries", [])],
            "podcastparser": lambda r: [core_from_podcastparser(e) for e in r.get("episodes", [])],
        }
        for name, adapt in adapters.items():
            result, error = out[name]
            compared[name] += 1
            if ref_core is None or result is None:
                same = (ref_core is None) == (result is None) or (ref_core is None and not adapt(result))
                if not same:
                    row["differences"][name] = {"outcome": f"{ref_err or 'ok'} vs {error or 'ok'}"}
            else:
                alt = [tuple(t) for t in adapt(result)]
                alt_core = sorted(map(repr, alt))
                same = alt_core == ref_core
                if not same:
                    diff = Counter()
                    if len(alt) != len(ref.episodes):
                        diff["episode count"] += 1
                    ref_t = sorted((core_from_episode(e) for e in ref.episodes), key=repr)
                    for x, y in zip(ref_t, sorted(alt, key=repr)):
                        for i, key in enumerate(CORE):
                            if x[i] != y[i]:
                                diff[key] += 1
                    row["differences"][name] = dict(diff) or {"order/multiset": 1}
                    field_diffs[name].update((diff or {"order/multiset": 1}).keys())
            identical[name] += same
        per_file.append(row)
        if n % 20 == 0:
            print(f"  parse: {n}/{len(files)} files", file=sys.stderr, flush=True)

    mb = total_bytes / 1e6
    table = {}
    for name, t in totals.items():
        s = t["seconds"] or 1e-9
        table[name] = {"seconds": round(t["seconds"], 3), "mb_per_s": round(mb / s, 2),
                       "episodes": t["episodes"], "episodes_per_s": round(t["episodes"] / s, 1),
                       "errors": t["errors"]}
    earshot_s = totals["earshot"]["seconds"]
    for name in table:
        table[name]["speedup_vs_earshot"] = round(earshot_s / (totals[name]["seconds"] or 1e-9), 2)
    result = {
        "files": len(files), "mb": round(mb, 2), "rounds": rounds, "table": table,
        "identical": {n: {"files": identical[n], "of": compared[n], "share": round(identical[n] / compared[n], 4)}
                      for n in compared},
        "field_diffs": {n: dict(c) for n, c in field_diffs.items()},
        "fallbacks": {"count": fastpath.FALLBACKS["count"] // rounds,
                      "reasons": {k: v // rounds for k, v in fastpath.FALLBACKS["reasons"].items()}},
        "per_file": per_file,
        "breakdown": {
            "feedparser_s": round(totals["feedparser"]["seconds"], 3),
            "expat_s": round(totals["expat pass"]["seconds"], 3),
            "mapping_s": round(max(0.0, earshot_s - totals["feedparser"]["seconds"] - totals["expat pass"]["seconds"]), 3),
        },
    }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
