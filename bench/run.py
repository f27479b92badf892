"""``make bench``: Earshot's benchmarks, one run, one workload, ratios side by side.

    python bench/run.py --out docs/benchmarks.md          # the default: 1,000 feeds (~15 min)
    python bench/run.py --quick --out /tmp/bench.md       # ~100 feeds, for iterating

Steps (each prints progress to stderr):
1. build the workload (``workload.py``: feeds spread over loopback hosts 127.0.0.N) and
   start the loopback feed server (``feedserver.py``, its own process, listening on each
   of those addresses);
2. cycle table: Earshot's local mode on SQLite (``earshot_cycles.py``), rss2email 3.14
   (``r2e run --no-send``) and the naive loop (``naive_loop.py``), each cold then warm,
   each in a child process; then the deployed path's request counts on a sample of the
   same feeds (``deployed_counts.py``: dispatcher + fetch_worker on the moto test double);
3. local store table (``local_store.py``: the corpus ingested, CLI commands timed on it
   and on an empty database), parse table (``parse_compare.py``), digest table
   (``digest_bench.py``), memory table (``memory_probe.py``), each in a child process;
4. what the deployed stack writes to CloudWatch and sends to readers
   (``observability_counts.py``: the worker's log and EMF bytes, the topic page's and
   feed's sizes), then the cost table from the deployed path's request counts and those
   (``cost.py``);
5. write the Markdown report, and the raw results next to it (``bench/last-results.json``).

``--render-from RESULTS.json`` writes the report again from a run's raw results without
running anything (after a wording change in report.py or cost.py); with
``--measure observability`` it first measures that step again, recomputes the cost
table, and keeps the rest of the run as it was. ``--section cost`` writes only section 5
and the summary's cost row into the existing report (the other sections stay as they
were rendered, for results older than the report's code).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import cost  # noqa: E402
import report  # noqa: E402
from measure import measured  # noqa: E402
from workload import build_workload, corpus_dir_for, summarize_sizes  # noqa: E402

PY = sys.executable
VENV_BIN = Path(sys.executable).parent
# The child processes see the machine's environment without Earshot's own settings (a
# developer's EARSHOT_DB or per-host limit must not leak into the measurement).
CHILD_ENV = {k: v for k, v in os.environ.items() if not k.startswith("EARSHOT_")}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ machine facts
def machine_facts() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    packages = {}
    for name in ("earshot", "feedparser", "lxml", "nh3", "httpx", "pydantic", "boto3", "moto", "rss2email",
                 "psutil", "jinja2"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}", "packages": packages, "commit": commit,
            "sqlite": sqlite3.sqlite_version, "load_start": load_average(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


class LoadSampler:
    """The machine's 1-minute load average every few seconds, for the whole run: each
    measured cycle is shown with the mean load while it ran (other work on a 2-core machine
    slows CPU-bound readers, and can change between one reader and the next)."""

    def __init__(self, every_s: float = 5.0) -> None:
        import threading

        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)
        self._thread.start()

    def _run(self, every_s: float) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), os.getloadavg()[0]))
            except OSError:
                return
            self._stop.wait(every_s)

    def mean(self, t0: float, t1: float) -> float | None:
        values = [load for t, load in self.samples if t0 <= t <= t1 + 60]  # the 1-min average lags
        return round(sum(values) / len(values), 2) if values else None

    def stop(self) -> None:
        self._stop.set()


def annotate_load(result: dict, sampler: LoadSampler) -> None:
    for cycle in result.get("cycles", []):
        if "started_at" in cycle:
            cycle["load"] = sampler.mean(cycle["started_at"], cycle["ended_at"])


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages: other work on the machine skews every timing."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# ------------------------------------------------------------------ feed server
class Server:
    def __init__(self, workdir: Path, seed: int) -> None:
        port_file = workdir / "port"
        port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen([PY, str(BENCH / "feedserver.py"), "--dir", str(workdir), "--seed", str(seed),
                                      "--port-file", str(port_file)])
        deadline = time.time() + 120
        while not port_file.exists():
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("feed server did not start")
            time.sleep(0.1)
        self.port = int(port_file.read_text())
        self.base = f"http://127.0.0.1:{self.port}"

    def call(self, path: str) -> dict | str:
        with urllib.request.urlopen(self.base + path, timeout=30) as resp:
            body = resp.read().decode()
        return json.loads(body) if path.startswith("/_stats") else body

    def urls(self, client: str, manifest: dict) -> list[str]:
        """One URL per feed, on its host's loopback address (``host`` in the manifest)."""
        return [f"http://{f.get('host', '127.0.0.1')}:{self.port}/{client}/feeds/{f['name']}"
                for f in manifest["feeds"]]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ------------------------------------------------------------------ the three readers
def run_earshot(server: Server, manifest: dict, workdir: Path) -> dict:
    feeds_file = workdir / "earshot-feeds.txt"
    feeds_file.write_text("\n".join(server.urls("earshot", manifest)) + "\n")
    db = workdir / "earshot-db" / "earshot.db"
    shutil.rmtree(db.parent, ignore_errors=True)
    server.call("/_reset")
    log(f"Earshot: earshot --db {db.parent.name}/{db.name} run --feeds {feeds_file.name} --cycles 2 --no-transcripts --json "
        f"({len(manifest['feeds'])} feeds, local mode on SQLite)")
    out_file = workdir / "earshot.json"
    m = measured([PY, str(BENCH / "earshot_cycles.py"), "--feeds", str(feeds_file), "--cycles", "2",
                  "--db", str(db), "--out", str(out_file)], cwd=workdir, env=CHILD_ENV, stderr_to_terminal=True)
    if m.rc != 0:
        raise RuntimeError(f"earshot_cycles failed (rc {m.rc})")
    result = json.loads(out_file.read_text())
    result["process"] = {"wall_s": round(m.wall_s, 2), "cpu_s": round(m.cpu_s, 2), "max_rss_mb": result.get("max_rss_mb")}
    result["server"] = server.call("/_stats")
    shutil.rmtree(db.parent, ignore_errors=True)
    return result


def network_floor(manifest: dict, seed: int, client: str, *, slots: int, concurrency: int) -> dict:
    """Per cycle, the least time any client could take with ``slots`` requests per host and
    ``concurrency`` overall: the feed server's own seeded delays (``feedserver.py``), summed
    per host and divided by the slots (the biggest host), and over all feeds / concurrency."""
    import random

    from feedserver import DELAY_MAX_S, DELAY_MIN_S

    out = {}
    for cycle in (1, 2):
        per_host: dict[str, list[float]] = {}
        for f in manifest["feeds"]:
            path = f"/{client}/feeds/{f['name']}"
            delay = random.Random(f"{seed}:{path}:{cycle}").uniform(DELAY_MIN_S, DELAY_MAX_S)
            per_host.setdefault(f["host"], []).append(delay)
        host = max(per_host, key=lambda h: sum(per_host[h]))
        total = sum(sum(v) for v in per_host.values())
        out[str(cycle)] = {"biggest_host": host, "biggest_host_feeds": len(per_host[host]),
                           "biggest_host_delay_s": round(sum(per_host[host]), 2), "slots": slots,
                           "biggest_host_s": round(max(sum(per_host[host]) / slots, max(per_host[host])), 2),
                           "concurrency": concurrency, "all_hosts_s": round(total / concurrency, 2)}
    return out


def run_deployed(server: Server, manifest: dict, workdir: Path, every: int) -> dict:
    urls = server.urls("deployed", manifest)[::every]
    feeds_file = workdir / "deployed-feeds.txt"
    feeds_file.write_text("\n".join(urls) + "\n")
    server.call("/_reset")
    log(f"deployed path: dispatcher + fetch_worker handlers on the moto test double, {len(urls)} feeds "
        f"(every {every}th), request counts for the cost table")
    out_file = workdir / "deployed.json"
    m = measured([PY, str(BENCH / "deployed_counts.py"), "--feeds", str(feeds_file), "--out", str(out_file)],
                 cwd=workdir, env=CHILD_ENV, stderr_to_terminal=True)
    if m.rc != 0:
        raise RuntimeError(f"deployed_counts failed (rc {m.rc})")
    result = json.loads(out_file.read_text())
    result["every"] = every
    result["server"] = server.call("/_stats")
    return result


def run_r2e(server: Server, manifest: dict, workdir: Path) -> dict:
    r2e = VENV_BIN / "r2e"
    home = workdir / "r2e"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    cfg, data = home / "rss2email.cfg", home / "rss2email.json"
    base = [str(r2e), "-c", str(cfg), "-d", str(data)]
    # `r2e new` writes the real default config; the feed sections are then appended in
    # the exact format `r2e add NAME URL` writes (1,000 separate `r2e add` processes
    # would take minutes and measure nothing of interest).
    subprocess.run([*base, "new", "bench@example.com"], check=True, capture_output=True)
    urls = server.urls("r2e", manifest)
    subprocess.run([*base, "add", "f00000", urls[0]], check=True, capture_output=True)
    text = cfg.read_text().replace("verbose = info", "verbose = warning")
    text += "".join(f"\n[feed.f{i:05d}]\nurl = {u}\n" for i, u in enumerate(urls) if i)
    cfg.write_text(text)
    server.call("/_reset")
    cycles = []
    for cycle in (1, 2):
        log(f"rss2email {metadata.version('rss2email')}: r2e run --no-send, cycle {cycle} ({len(urls)} feeds, sequential)")
        started_at = time.time()
        m = measured([*base, "run", "--no-send"], cwd=home, env=CHILD_ENV)
        stats = server.call("/_stats")
        prev = cycles[-1]["server_total"] if cycles else {"requests": 0, "status": {}}
        status = {k: v - prev["status"].get(k, 0) for k, v in stats["status"].items()}
        errors = sum(1 for line in m.stderr.splitlines() if "[ERROR]" in line)
        cycles.append({"cycle": cycle, "seconds": round(m.wall_s, 3), "cpu_s": round(m.cpu_s, 3), "rc": m.rc,
                       # r2e hands every 200 to feedparser; a 304 is not parsed.
                       "parses": status.get("200", 0), "status": status, "errors_logged": errors,
                       "max_rss_mb": round(m.max_rss_mb, 1), "server_total": stats,
                       "started_at": started_at, "ended_at": time.time()})
        log(f"  r2e cycle {cycle}: {m.wall_s:.1f}s wall, {m.cpu_s:.1f}s CPU, {status}")
    seen = json.loads(data.read_text())
    return {"cycles": cycles, "seen_entries": sum(len(f.get("seen", {})) for f in seen.get("feeds", [])),
            "server": cycles[-1]["server_total"],
            "commands": [f"r2e -c CFG -d DATA new bench@example.com", "r2e -c CFG -d DATA add f00000 URL",
                         "(999 more [feed.fNNNNN] url = URL sections)", "r2e -c CFG -d DATA run --no-send  # twice"]}


def run_naive(server: Server, manifest: dict, workdir: Path, every: int) -> dict:
    urls = server.urls("naive", manifest)[::every]
    feeds_file = workdir / "naive-feeds.txt"
    feeds_file.write_text("\n".join(urls) + "\n")
    server.call("/_reset")
    log(f"naive loop: feedparser.parse(url) + one SQLite INSERT per entry, {len(urls)} feeds"
        + (f" (every {every}th feed; extrapolated x{every})" if every > 1 else ""))
    out_file = workdir / "naive.json"
    m = measured([PY, str(BENCH / "naive_loop.py"), "--feeds", str(feeds_file), "--out", str(out_file)],
                 cwd=workdir, env=CHILD_ENV, stderr_to_terminal=True)
    if m.rc != 0:
        raise RuntimeError(f"naive loop failed (rc {m.rc})")
    result = json.loads(out_file.read_text())
    result["every"] = every
    result["server"] = server.call("/_stats")
    return result


def run_child_json(script: str, args: list[str], label: str, timeout_s: float = 1800, *,
                   out_arg: bool = False) -> dict:
    """Run a bench script in a child process; its JSON from stdout, or from ``--out FILE``
    (``out_arg``: for scripts whose handlers print to stdout themselves)."""
    log(label)
    out_file = Path(tempfile.mkstemp(suffix=".json")[1]) if out_arg else None
    m = measured([PY, str(BENCH / script), *args, *(["--out", str(out_file)] if out_file else [])],
                 cwd=REPO, env=CHILD_ENV, timeout_s=timeout_s)
    if m.rc != 0:
        log(f"  {script} failed (rc {m.rc}): {m.stderr[-2000:]}")
        return {"error": f"{script} exited {m.rc}: {m.stderr.strip().splitlines()[-1] if m.stderr.strip() else ''}"}
    sys.stderr.write(m.stderr[-4000:])
    if out_file:
        try:
            return json.loads(out_file.read_text())
        finally:
            out_file.unlink(missing_ok=True)
    return json.loads(m.stdout)


# ------------------------------------------------------------------ cost
LAST_RESULTS = BENCH / "last-results.json"  # the raw results docs/benchmarks.md was rendered from


def measure_observability() -> dict:
    return run_child_json("observability_counts.py", ["--corpus", str(corpus_dir_for(REPO))],
                          "observability: the worker's log and EMF bytes, the topic page's and feed's sizes (moto)",
                          out_arg=True)


def cost_results(results: dict) -> dict:
    """The cost table (hourly and adaptive), each knob moved, and the scale rows."""
    from earshot_local.functions import load_template  # the template's alarms are counted, not typed here

    obs = results.get("observability") or {}
    obs = obs if "worker" in obs else None
    template = load_template()
    alarms = cost.template_alarms(template)
    cost.use_template_defaults(template)
    out = cost.monthly_cost(results["deployed"], results.get("digest"),
                            interval_s=results.get("earshot", {}).get("interval_s"), observability=obs, alarms=alarms)
    if obs and "adaptive" in out:
        rate = out["adaptive"]["checks_per_hour"]
        out["knobs"] = cost.knob_table(results["deployed"], results.get("digest"), obs, checks_per_hour=rate,
                                       alarms=alarms)
        out["scale"] = cost.scale_table(results["deployed"], results.get("digest"), obs, checks_per_hour=rate,
                                        alarms=alarms)
    return out


def render_from(path: Path, out: Path, *, measure: set[str], section: str | None = None) -> int:
    results = json.loads(path.read_text())
    if "observability" in measure:
        results["observability"] = measure_observability()
        results["observability"]["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if "deployed" in results:
        results["cost"] = cost_results(results)
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        results["cost_priced"] = {"at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit}
    if out.resolve() == (REPO / "docs" / "benchmarks.md").resolve():
        LAST_RESULTS.write_text(json.dumps(results, indent=1, default=str))
    if section == "cost":
        out.write_text(report.splice_cost_section(out.read_text(), results))
    else:
        out.write_text(report.render(results))
    log(f"wrote {out} from {path}" + (" (section 5 and the summary's cost row only)" if section == "cost" else ""))
    return 0


# ------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description="Earshot benchmarks (make bench)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--feeds", type=int, default=1000, help="feeds in the workload (default 1000)")
    parser.add_argument("--quick", action="store_true", help="~100 feeds and smaller probes, for iterating")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--naive-every", type=int, default=None,
                        help="run the naive loop on every k-th feed and extrapolate (default: 4 when >= 500 feeds)")
    parser.add_argument("--deployed-every", type=int, default=None,
                        help="request counts of the deployed path on every k-th feed (default: 5, --quick 2)")
    parser.add_argument("--only", default="cycle,store,parse,digest,memory",
                        help="comma list of sections to run (cost always follows cycle)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (feeds, raw results)")
    parser.add_argument("--render-from", type=Path, default=None,
                        help="re-render the report from this results.json (no workload run)")
    parser.add_argument("--measure", default="", help="with --render-from: steps to measure again (observability)")
    parser.add_argument("--section", choices=["cost"], default=None,
                        help="with --render-from: render only section 5 (and the summary's cost row) into the "
                             "existing --out, leaving the other sections as they were rendered")
    args = parser.parse_args()
    if args.render_from:
        return render_from(args.render_from, args.out, measure=set(filter(None, args.measure.split(","))),
                           section=args.section)
    feeds = 100 if args.quick and args.feeds == 1000 else args.feeds
    naive_every = args.naive_every or (4 if feeds >= 500 else 1)
    deployed_every = args.deployed_every or (2 if args.quick else 5)
    sections = set(args.only.split(","))
    started = time.perf_counter()

    facts = machine_facts()
    sampler = LoadSampler()
    log(f"{facts['cpu']}, {facts['cores']} cores, Python {facts['python']}")
    workdir = Path(tempfile.mkdtemp(prefix="earshot-bench-"))
    corpus = corpus_dir_for(REPO)
    results: dict = {"facts": facts, "args": {"feeds": feeds, "quick": args.quick, "seed": args.seed,
                                                "naive_every": naive_every, "deployed_every": deployed_every},
                     "argv": " ".join(["python bench/run.py", *sys.argv[1:]])}
    try:
        if "cycle" in sections:
            log(f"building the workload: {feeds} feeds (corpus: {corpus if corpus.is_dir() else 'absent'})")
            manifest = build_workload(workdir, feeds=feeds, seed=args.seed,
                                      corpus_dir=corpus if corpus.is_dir() else None,
                                      corpus_share=0.25 if args.quick else 1.0)
            results["workload"] = summarize_sizes(manifest)
            log(f"  {results['workload']}")
            server = Server(workdir, args.seed)
            try:
                results["earshot"] = run_earshot(server, manifest, workdir)
                results["earshot"]["bounds"] = network_floor(
                    manifest, args.seed, "earshot",
                    # the most a host can get: the adaptive pace's ceiling
                    slots=results["earshot"].get("host_concurrency_ceiling",
                                                 results["earshot"]["max_requests_per_host"]),
                    concurrency=results["earshot"]["concurrency"])
                results["r2e"] = run_r2e(server, manifest, workdir)
                results["naive"] = run_naive(server, manifest, workdir, naive_every)
                results["deployed"] = run_deployed(server, manifest, workdir, deployed_every)
            finally:
                server.stop()
            for key in ("earshot", "r2e", "naive"):
                annotate_load(results[key], sampler)
        if "store" in sections:
            results["store"] = run_child_json(
                "local_store.py", ["--corpus", str(corpus), "--workdir", str(workdir / "store")]
                + (["--runs", "3", "--backfill-runs", "3"] if args.quick else []),
                "local store table: the corpus ingested into SQLite; CLI commands on it vs an empty database")
        if "parse" in sections:
            results["parse"] = run_child_json(
                "parse_compare.py", ["--corpus", str(corpus)] + (["--quick"] if args.quick else []),
                "parse table: parse_feed (fast path + feedparser) vs the feedparser path vs the former parse_feed")
        if "digest" in sections:
            results["digest"] = run_child_json(
                "digest_bench.py", ["--subscribers", "2000" if args.quick else "10000"],
                "digest table: render once + MIME per subscriber")
        if "memory" in sections:
            results["memory"] = run_child_json(
                "memory_probe.py", ["--workdir", str(workdir)] + (["--quick"] if args.quick else []),
                "memory table: 50 MB feed on loopback, 15 MiB cap and 100 MB cap")
        if "deployed" in results:
            results["observability"] = measure_observability()
            results["cost"] = cost_results(results)
        results["facts"]["load_end"] = load_average()
        sampler.stop()
        loads = [load for _, load in sampler.samples]
        results["facts"]["load_mean"] = round(sum(loads) / len(loads), 2) if loads else None
        results["facts"]["load_max"] = round(max(loads), 2) if loads else None
        results["total_seconds"] = round(time.perf_counter() - started, 1)
        (workdir / "results.json").write_text(json.dumps(results, indent=1, default=str))
        if args.out.resolve() == (REPO / "docs" / "benchmarks.md").resolve():
            LAST_RESULTS.write_text(json.dumps(results, indent=1, default=str))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report.render(results))
        log(f"wrote {args.out} in {results['total_seconds']:.0f}s (raw results: {workdir / 'results.json'})")
    finally:
        if not args.keep:
            for child in ("feeds", "r2e", "store", "earshot-db"):
                shutil.rmtree(workdir / child, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
