"""The memory table: peak RSS of one process fetching (and parsing) a 50 MB feed served
on loopback, with the default 15 MiB body cap and with the cap raised to 100 MB; parsed
by ``parse_feed`` as Earshot runs it (the fast path) and with ``parser="feedparser"``.

The parent builds the feed, starts ``feedserver.py`` (no delay) and runs each probe in a
fresh child (``--child``), so every peak RSS is that probe's alone. A baseline child
that only imports what the worker imports is measured too. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MiB = 1024 * 1024


def peak_rss_mb() -> float:
    """This process's peak RSS. Linux's VmHWM belongs to the address space exec() made;
    ``ru_maxrss`` would also count the parent's RSS from before exec (it survives exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, url: str, cap: int) -> None:
    import earshot.ingest.fetcher as fetcher
    from earshot.errors import EarshotError
    from earshot.ingest.parser import parse_feed
    from earshot.settings import Settings

    out: dict = {"mode": mode, "cap_bytes": cap}
    baseline = peak_rss_mb()
    out["rss_after_imports_mb"] = round(baseline, 1)
    if mode != "baseline":
        settings = Settings.from_env(EARSHOT_ALLOW_PRIVATE_ADDRESSES="true", EARSHOT_MAX_BODY_BYTES=str(cap))
        started = time.perf_counter()
        try:
            with fetcher.make_client(settings) as client:
                result = fetcher.fetch_feed(url, settings=settings, client=client)
            out["fetched_bytes"] = len(result.body or b"")
            out["fetch_s"] = round(time.perf_counter() - started, 2)
            out["rss_after_fetch_mb"] = round(peak_rss_mb(), 1)
            parsed = parse_feed(result.body or b"", url=url, parser="feedparser" if mode == "feedparser" else "auto")
            out["episodes"] = len(parsed.episodes)
            out["outcome"] = "parsed"
        except EarshotError as exc:
            out["outcome"] = f"error {getattr(exc, 'kind', type(exc).__name__)}"
            out["message"] = str(exc)[:200]
        out["seconds"] = round(time.perf_counter() - started, 2)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, required=False)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "URL", "CAP"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return

    sys.path.insert(0, str(BENCH))
    from workload import write_big_feed

    size = 50_000_000
    work = (args.workdir or Path("/tmp")) / "memory"
    (work / "feeds").mkdir(parents=True, exist_ok=True)
    items = write_big_feed(work / "feeds" / "big.xml", size)
    actual = (work / "feeds" / "big.xml").stat().st_size
    (work / "manifest.json").write_text(json.dumps({"feeds": [
        {"index": 0, "name": "big.xml", "group": "no_validators", "size_bytes": actual, "items": items}]}))
    port_file = work / "port"
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen([sys.executable, str(BENCH / "feedserver.py"), "--dir", str(work), "--no-delay",
                               "--port-file", str(port_file)])
    try:
        while not port_file.exists():
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port_file.read_text()}/mem/feeds/big.xml"
        probes = [("baseline", 15 * MiB), ("fetch", 15 * MiB), ("parse", 100_000_000)]
        if not args.quick:
            probes.append(("feedparser", 100_000_000))
        rows = []
        for mode, cap in probes:
            print(f"  memory: {mode}, cap {cap / MiB:.0f} MiB", file=sys.stderr, flush=True)
            proc = subprocess.run([sys.executable, __file__, "--child", mode, url, str(cap)], capture_output=True,
                                  text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if proc.returncode != 0:
                rows.append({"mode": mode, "cap_bytes": cap, "outcome": f"crashed: {proc.stderr.strip()[-300:]}"})
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(json.dumps({"feed_bytes": actual, "feed_items": items, "probes": rows}))


if __name__ == "__main__":
    main()
