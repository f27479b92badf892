"""Render the benchmark results (one dict from run.py) as docs/benchmarks.md."""

from __future__ import annotations

WRITE_OPS = ("PutItem", "UpdateItem", "BatchWriteItem", "DeleteItem")


def _f(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:,.1f}×" if b else "–"


def _load(cycle: dict) -> str:
    return "–" if cycle.get("load") is None else f"{cycle['load']:.1f}"


def _calls(calls: dict) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(calls.items())) or "–"


def _cycle_section(r: dict) -> list[str]:
    e, r2e, naive, w = r["earshot"], r["r2e"], r["naive"], r["workload"]
    k = naive.get("every", 1)
    ec, rc, nc = e["cycles"], r2e["cycles"], naive["cycles"]
    h = w["hosts"]
    out = ["## 1. Cycle: Earshot vs rss2email vs a naive loop", ""]
    out.append(f"Workload: **{w['feeds']:,} feeds** ({w['corpus_files']} real corpus files + generated), "
               f"{w['total_mb']} MB, {w['total_items']:,} items; size p50 {w['size_p50_kb']} KB, p90 "
               f"{w['size_p90_kb']} KB, max {w['size_max_mb']} MB; items p50 {w['items_p50']}, max {w['items_max']:,} "
               f"({w['feeds_1000_items']} feeds with 1,000+ items). Every response waits a seeded 50–300 ms. "
               f"Second cycle: {w['groups']['not_modified']} feeds answer 304 to validators, "
               f"{w['groups']['no_validators']} return the same body without validators, "
               f"{w['groups']['new_episodes']} gain 1–3 new episodes.")
    out.append("")
    out.append(f"Hosts: the feeds live on **{h['hosts']} hosts**, each a distinct loopback address (127.0.0.2 – "
               f"127.0.0.254) that the feed server listens on. The {len(h['biggest'])} biggest hosts serve "
               f"{', '.join(map(str, h['biggest']))} feeds; the other {h['tail_hosts']} hosts (the long tail) serve "
               f"{h['tail_feeds']} feeds, at most {h['tail_max']} each. The spread is the corpus's own: its feeds' "
               "self URLs (`atom:link rel=\"self\"`, `itunes:new-feed-url`) are 49 distinct feeds on 40 hosts, the "
               "biggest (a feed-proxy platform) serving 7 of them (14 %), the next three 2 each (4 %), 36 hosts one "
               "feed each; a subscription list looks like that: a few hosting platforms and many shows that host "
               "themselves. Earshot keeps its per-host limit "
               f"(`EARSHOT_MAX_REQUESTS_PER_HOST` = {e.get('max_requests_per_host', 2)} at first, up to "
               f"`EARSHOT_HOST_CONCURRENCY_CEILING` = {e.get('host_concurrency_ceiling', 2)} while a host answers "
               f"fast and cleanly, leased per host in the database) with "
               f"{e.get('concurrency', 32)} requests in flight overall (`earshot run`'s default).")
    out.append("")
    out.append("| reader | cycle | wall s | CPU s | feeds/s | parses | store | time in store s¹ | load² | "
               "Earshot faster by |")
    out.append("|---|---|---:|---:|---:|---:|---|---:|---:|---:|")
    names = {1: "cold", 2: "warm"}
    for i in (0, 1):
        c = ec[i]
        out.append(f"| **Earshot** (local mode) | {names[i + 1]} | {_f(c['seconds'])} | {_f(c['cpu_s'])} | "
                   f"{_f(c['feeds'] / c['seconds'])} | {c['parsed']:,} | SQLite, one transaction per feed | "
                   f"{_f(c['store_wall_s'])} (CPU {_f(c['store_cpu_s'])}) | {_load(c)} | – |")
    for i in (0, 1):
        c = rc[i]
        out.append(f"| rss2email {r['facts']['packages'].get('rss2email')} | {names[i + 1]} | {_f(c['seconds'])} | "
                   f"{_f(c['cpu_s'])} | {_f(w['feeds'] / c['seconds'])} | {c['parses']:,} | JSON file | – | "
                   f"{_load(c)} | **{_ratio(c['seconds'], ec[i]['seconds'])}** |")
    for i in (0, 1):
        c = nc[i]
        wall, cpu, store = c["seconds"] * k, c["cpu_s"] * k, c["store_seconds"] * k
        label = f" (measured on every {k}th feed, ×{k})" if k > 1 else ""
        out.append(f"| naive loop{label} | {names[i + 1]} | {_f(wall)} | {_f(cpu)} | {_f(w['feeds'] / wall)} | "
                   f"{c['parses'] * k:,} | SQLite, {c['inserts'] * k:,} inserts | {_f(store)} | {_load(c)} | "
                   f"**{_ratio(wall, ec[i]['seconds'])}** |")
    out.append("")
    queued = e.get("transcripts_queued")
    out.append("Command (Earshot): `earshot --db DB run --feeds FEEDS.txt --cycles 2 --no-transcripts --json` on a "
               "fresh database, run through its Python API by `bench/earshot_cycles.py` (the same `add_feeds` and "
               "`run_cycle` calls, with probes around them). The cycle is the feeds' work: new episodes' transcripts "
               + (f"({queued:,} of them) " if queued is not None else "")
               + "stay queued for a later run (rss2email fetches none; the cost section prices them). rss2email: `r2e run --no-send`, twice. Naive loop: `feedparser.parse(url)` "
               "one feed after another, one `INSERT` per entry, a commit per feed.")
    out.append("")
    out.append("¹ Wall time inside the SQLite store's methods, summed over the 32 fetch threads (so it can exceed "
               "the cycle's wall time; it includes waiting for the database's write lock), and in brackets the CPU "
               "time of those calls (per-thread clock). The naive loop is single-threaded: its store time is its "
               "own.")
    out.append("")
    out.append(f"² The machine's mean 1-minute load average while that cycle ran (sampled every 5 s; "
               f"{r['facts'].get('cores', 2)} cores). Above {r['facts'].get('cores', 2)}, other processes competed "
               "for the CPUs: CPU-bound work (Earshot's parsing, rss2email's too) then takes longer in wall and in "
               "CPU seconds, and a ratio between two readers measured under different loads is skewed.")
    out.append("")
    bounds = e.get("bounds") or {}
    for i, label in ((0, "cold"), (1, "warm")):
        b = bounds.get(str(i + 1)) or bounds.get(i + 1)
        c = ec[i]
        if not b:
            continue
        floor = max(b["biggest_host_s"], b["all_hosts_s"])
        best = rc[i]["seconds"] / floor if floor else 0
        out.append(f"What bounds the {label} cycle ({_f(c['seconds'])} s): the network floor is the biggest "
                   f"host's {b['biggest_host_feeds']} feeds × their responses' delays (sum {_f(b['biggest_host_delay_s'])} s) "
                   f"/ {b['slots']} slots = **{_f(b['biggest_host_s'])} s** (all {w['feeds']:,} feeds' delays / "
                   f"{b['concurrency']} in flight = {_f(b['all_hosts_s'])} s), so no scheduler can beat "
                   f"{_f(best)}× rss2email on this workload with the per-host limit on; the CPU is "
                   f"{_f(c['cpu_s'])} s in one process ({_f(c['parse']['seconds'])} s of it parsing), "
                   f"and Python runs one thread at a time (the GIL), so the cycle cannot be shorter than about that "
                   f"either.")
        out.append("")
    warm = ec[1]
    out.append(f"Warm cycle checks: **{warm['parsed']} parses** for {warm['feeds']} feeds "
               f"({warm['not_modified']} answered 304, {warm['unchanged']} unchanged bodies found by SHA-256, "
               f"none of them parsed); the {warm['parsed']} parsed feeds wrote {warm['new_episodes']} new episodes. "
               f"Errors (cold): {warm_errors(ec[0])}. "
               f"rss2email cycle 2 parsed every 200 it got ({rc[1]['status']}).")
    out.append("")
    p0, p1 = ec[0]["parse"], ec[1]["parse"]
    out.append(f"Where Earshot's time goes: cold, parsing (`parse_in_batches`) took {_f(p0['seconds'])} CPU-s for {p0['calls']} feeds "
               f"({_f(p0['bytes'] / 1e6)} MB, {p0['episodes']:,} episodes) of {_f(ec[0]['cpu_s'])} CPU-s in total, "
               f"the SQLite store {_f(ec[0]['store_cpu_s'])} CPU-s; warm, parsing {_f(p1['seconds'])} CPU-s of "
               f"{_f(ec[1]['cpu_s'])}, the store {_f(ec[1]['store_cpu_s'])}. The database after both cycles: "
               f"{e['counts']['feeds']:,} feeds, {e['counts']['episodes']:,} episodes, "
               f"{_f(e['db_bytes'] / 1e6)} MB; peak RSS {e.get('max_rss_mb')} MB.")
    out.append("")
    out += _deployed_paragraph(r)
    s = e["server"]
    out.append(f"Feed server (its own process, asyncio): during the Earshot run it served {s['requests']:,} requests "
               f"({s['status']}), {_f(s['bytes_sent'] / 1e6)} MB, with responses late against their intended delay by "
               f"p50 {s['late_ms_p50']} ms / p99 {s['late_ms_p99']} ms / max {s['late_ms_max']} ms, using "
               f"{_f(s['cpu_s'])} CPU-s over {_f(s['wall_s'])} s (at most {s['max_in_flight']} responses in flight): "
               f"it is not the bottleneck.")
    return out


def _deployed_paragraph(r: dict) -> list[str]:
    d = r.get("deployed")
    if not d:
        return []
    cold, warm = d["cycles"][0], d["cycles"][-1]
    writes = sum(v for op, v in warm["aws_calls"].items() if op in WRITE_OPS)
    out = [f"Deployed path, request counts (the cost table's input): the real `dispatcher` and `fetch_worker` "
           f"handlers on the moto test double (`tests/support/aws_stack.EmbeddedBackend`), on every "
           f"{d['every']}th feed of the workload ({d['feeds']} feeds, their own URLs on the same hosts), one worker "
           f"invocation (an SQS batch of 10) at a time. These runs give request counts; their only timing use is "
           f"the cost table's estimate of a worker invocation's Lambda duration (its wall time here, moto's "
           f"in-process answers standing in for DynamoDB's round trips). They are no speed result.", "",
           "| cycle | AWS requests | parses | DynamoDB writes per feed |", "|---|---|---:|---:|"]
    for c, label in ((cold, "cold"), (warm, "warm")):
        w = sum(v for op, v in c["aws_calls"].items() if op in WRITE_OPS)
        out.append(f"| {label} | {_calls(c['aws_calls'])} | {c['parsed']:,} | {w / max(1, c['feeds']):.2f} |")
    out.append("")
    out.append(f"Warm: {warm['not_modified'] + warm['unchanged']} of {warm['feeds']} feeds unchanged "
               f"({warm['not_modified']} answered 304, {warm['unchanged']} same body), none parsed; "
               f"{writes:,} DynamoDB writes ({_calls({k: v for k, v in warm['aws_calls'].items() if k in WRITE_OPS})}) "
               f"= one feed-state UpdateItem per feed plus the {warm['parsed']} parsed feeds' "
               f"{warm['new_episodes']} new episodes; reads: the dispatcher's due-index Query per shard and one "
               f"episode-hash Query per parsed feed.")
    out.append("")
    return out


def warm_errors(cycle: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(cycle["errors"].items())) or "none"


def _parse_section(p: dict) -> list[str]:
    out = ["## 2. Parse: normalized episodes/s over the corpus", ""]
    if "error" in p:
        return out + [f"Not measured: {p['error']}.", ""]
    t = p["table"]
    fp = p["fast_path"]
    out.append(f"{p['files']} corpus files, {p['mb']} MB; each parser runs {p['rounds']}× per file, the fastest "
               "round counts. *Identical* = every Episode field the same as the feedparser path's "
               "(`parse_feed(..., parser=\"feedparser\")`, the fallback), or the same rejection.")
    out.append("")
    out.append("| parser | files | s | MB/s | episodes/s | × former parse_feed |")
    out.append("|---|---:|---:|---:|---:|---:|")
    labels = {
        "former": f"former `parse_feed` (commit {p['former_commit']}: feedparser with its sanitizer)",
        "earshot": "**`parse_feed`** (fast path; feedparser for what it declines)",
        "fallback": "`parse_feed(..., parser=\"feedparser\")` (the fallback, nh3 sanitizer)",
        "fast path": "fast path alone (`parse_fast`, on the files it reads)",
        "feedparser": "feedparser alone (sanitizer off, as called now)",
        "expat pass": "the fallback's expat pass alone",
        "lxml floor": "raw `lxml.etree` recover-parse (floor)",
    }
    for name, label in labels.items():
        row = t[name]
        # Only a row over the whole corpus compares with the former parse_feed's time.
        speedup = f"{_f(row['speedup_vs_former'], 1)}×" if row["files"] == p["files"] else "–"
        out.append(f"| {label} | {row['files']} | {_f(row['seconds'], 2)} | {_f(row['mb_per_s'], 1)} | "
                   f"{_f(row['episodes_per_s'], 0) if row['episodes'] else '–'} | {speedup} |")
    out.append("")
    ident = p["identical"]
    speed = t["earshot"]["speedup_vs_former"]
    out.append(f"Episodes identical to the fallback's: **{ident['episodes']['files']}/{ident['episodes']['of']} files "
               f"({ident['episodes']['share']:.1%})**; feed fields and warnings too: {ident['everything']['files']}/"
               f"{ident['everything']['of']}. `parse_feed` is **{_f(speed, 1)}×** the former `parse_feed` "
               f"(target ≥ 10×: {'met' if speed >= 10 else 'missed'}; ≥ 99 % identical: "
               f"{'met' if ident['episodes']['share'] >= 0.99 else 'missed'}). The fast path read {fp['files']} files "
               f"({fp['mb']} MB) in {_f(t['fast path']['seconds'], 2)} s, which the fallback reads in "
               f"{_f(fp['fallback_s_on_same_files'], 2)} s; it declined {fp['declined']['count']} "
               f"({', '.join(f'`{k}`: {v}' for k, v in fp['declined']['reasons'].items())}), which feedparser read.")
    out.append("")
    diffs = p["field_diffs"]
    out.append("Differences, by field (files where at least one episode differs): "
               + (", ".join(f"{k} {v}" for k, v in sorted(diffs.items(), key=lambda x: -x[1])) or "none") + ".")
    out.append("")
    rows = [r for r in p["per_file"] if r["differences"]]
    if rows:
        out.append("| file | bytes | path | episodes | differences (field: episodes) |")
        out.append("|---|---:|---|---:|---|")
        for row in rows:
            d = ", ".join(f"{k} {v}" for k, v in row["differences"].items())
            out.append(f"| {row['file']} | {row['bytes']:,} | {row['path']} | {row['episodes']} | {d} |")
        out.append("")
    return out


def _digest_section(d: dict | None) -> list[str]:
    out = ["## 3. Digest: render once, MIME per subscriber", ""]
    if not d or "error" in d:
        return out + [f"Pending: {(d or {}).get('error', 'not run')}.", ""]
    out.append("| subscribers | render once | total s | messages/s (1 core) | per message | message size | "
               "peak traced memory |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|")
    out.append(f"| {d['subscribers']:,} | {d['render_once_ms']} ms | {d['total_s']} | **{_f(d['messages_per_s'], 0)}** | "
               f"{d['ms_per_message']} ms | {d['avg_message_kb']} KB | {d['tracemalloc_peak_mb']} MB |")
    out.append("")
    out.append("Per subscriber: `tokens.issue_token` + `RenderedDigest.personalize` + `mime.assemble` (what "
               "`delivery.send_batch` does between its DynamoDB and SES calls); those calls are not included. "
               f"Target ≥ 2,000 messages/s: {'met' if d['messages_per_s'] >= 2000 else 'missed'}."
               + (f" Measured {d['measured_apart']} (`python bench/digest_bench.py --subscribers 10000`)."
                  if d.get("measured_apart") else ""))
    return out


def _memory_section(m: dict | None) -> list[str]:
    out = ["## 4. Memory: a 50 MB feed", ""]
    if not m or "error" in m:
        return out + [f"Not measured: {(m or {}).get('error', 'not run')}.", ""]
    out.append(f"One generated feed of {m['feed_bytes'] / 1e6:.1f} MB ({m['feed_items']:,} items) on loopback; each "
               "probe is a fresh process that imports what a worker checking feeds imports (the refresh, topic "
               "matching, the SQLite store); peak RSS is the process's high-water mark (VmHWM).")
    out.append("")
    out.append("| probe | body cap | outcome | seconds | peak RSS MB |")
    out.append("|---|---:|---|---:|---:|")
    labels = {
        "baseline": "imports only",
        "fetch": "fetch with the default cap",
        "refresh": "**first check** (`refresh_feed` into SQLite, one topic: fetch, hash, parse in batches, "
                   "diff, match, store)",
        "refresh_again": "first check, then the body grown by one episode checked again (every stored episode "
                         "diffed)",
        "refresh_feedparser": "first check with `EARSHOT_PARSER=feedparser` (the fallback builds every episode "
                              "at once)",
        "parse": "fetch + `parse_feed` (fast path; returns every episode at once)",
        "feedparser": "fetch + `parse_feed(parser=\"feedparser\")`",
    }
    for row in m["probes"]:
        out.append(f"| {labels.get(row['mode'], row['mode'])} | {row['cap_bytes'] / 1024 / 1024:.0f} MiB | "
                   f"{row.get('outcome', '–')}{': ' + row['message'] if row.get('message') else ''}"
                   f"{' (' + format(row['episodes'], ',') + ' episodes)' if row.get('episodes') else ''} | "
                   f"{row.get('seconds', '–')} | **{row.get('peak_rss_mb', '–')}** |")
    base = next((row for row in m["probes"] if row["mode"] == "baseline"), None)
    parse = next((row for row in m["probes"] if row["mode"] == "parse" and "rss_after_fetch_mb" in row), None)
    refresh = next((row for row in m["probes"] if row["mode"] == "refresh" and row.get("episodes")), None)
    if base and parse and refresh and parse.get("episodes"):
        grown = parse["peak_rss_mb"] - parse["rss_after_fetch_mb"]
        body_mb = m["feed_bytes"] / 1024 / 1024
        out.append("")
        out.append(
            f"The imports take {base['peak_rss_mb']} MB and the body {body_mb:.0f} MB (kept until the parse ends: "
            f"the fallback may need it). `parse_feed` returns every Episode at once: {grown:.0f} MB more, about "
            f"{grown * 1024 / parse['episodes']:.1f} KB per episode. The refresh instead parses in batches "
            "(`parse_in_batches`): ids can only be given once every item is read (a guid shared by a later item "
            "changes an earlier item's id), so each mapped item is set aside in a temporary file as it is read, "
            "and only what the identity rule reads stays in memory (each item's natural id and content key); "
            "then the episodes are read back 500 at a time and diffed, matched and stored batch by batch, and the "
            f"body is let go. The first check peaks at {refresh['peak_rss_mb']} MB: the imports, the body, and "
            f"{refresh['peak_rss_mb'] - base['peak_rss_mb'] - body_mb:.0f} MB for the rest (the identity rule's "
            "inputs and id choices, one batch, the parser's and SQLite's buffers).")
    return out


CORE_LINES = 11  # the first lines of a cost table: the fetch path and the digest (the rest: observability, serving)


def _cost_section(c: dict | None, obs: dict | None = None) -> list[str]:
    out = ["## 5. Cost: 10,000 feeds + 10,000 weekly subscribers + 1,000 followers of a topic feed", ""]
    if not c or "error" in c:
        return out + [f"Not computed: {(c or {}).get('error', 'no cycle results')}.", ""]

    def table(cc: dict) -> list[str]:
        rows = ["| item | USD/month | basis |", "|---|---:|---|"]
        for i, line in enumerate(cc["lines"]):
            if i == CORE_LINES and len(cc["lines"]) > CORE_LINES:
                core = sum(x["usd"] for x in cc["lines"][:CORE_LINES])
                rows.append(f"| *fetch path and digest* | *{core:.2f}* | the lines above |")
            rows.append(f"| {line['item']} | {line['usd']:.2f} | {line['basis']} |")
        rows.append(f"| **total** | **{cc['total_usd']:.2f}** | {cc['checks_per_month']:,.0f} feed checks |")
        return rows

    out.append(f"Prices: {c['prices_as_of']}; free tiers not subtracted. " + ", ".join(
        f"{k} ${v:.10g}" for k, v in c["prices"].items()) + ".")
    out.append("")
    a = c.get("adaptive")
    if a:
        out.append(f"On Earshot's adaptive schedule (the `interval_s` it chose for this workload's feeds: "
                   f"{a['checks_per_hour']} checks per feed-hour on average), with the default knobs:")
        out.append("")
        out += table(a)
        out.append("")
    out.append(f"Every feed checked every hour, the same knobs: **${c['total_usd']:.2f}/month**"
               + (f" (adaptive: **${a['total_usd']:.2f}**)." if a else "."))
    out.append("")
    core_lines = c["lines"][:CORE_LINES]
    top = max(core_lines, key=lambda x: x["usd"])
    out.append(f"On the fetch path the biggest line is *{top['item']}* (${top['usd']:.2f} hourly); per check that is "
               f"{c['wru_per_check']} write units: the feed-state UpdateItem, plus the `due` index entry being moved "
               "(its sort key `next_check_at` changes on every check: a delete and a put) and, counted "
               "conservatively, the `type` index entry (a check rewrites the feed's `status`, which that index "
               "projects), and the host slot leases (an acquire and a release of 1 write unit each, per host a "
               "worker serves: the per-host limit holds across every worker). So the knob that moves the fetch path "
               "most is **how often feeds are checked**, then write units per check.")
    if obs and "worker" in obs:
        out += _observability_bases(obs)
    if c.get("knobs") and a:
        out += ["", f"### The knobs, priced (adaptive month, default total ${a['total_usd']:.2f})", "",
                "| knob | moved to | total USD/month | change | after the always-free allowances |",
                "|---|---|---:|---:|---:|"]
        out += [f"| `{k['knob']}` | {k['setting']} | {k['total_usd']:.2f} | {k['delta_usd']:+.2f} | "
                f"{k.get('after_free_usd', 0):.2f} |" for k in c["knobs"]]
        out.append("")
        out += _budget_paragraph(a, c["knobs"])
    if c.get("scale"):
        rows = c["scale"]
        groups = list(rows[0]["groups"])
        out += ["", "### Larger rows (adaptive schedule, default knobs)", "",
                "Subscribers grow with feeds (one per feed) and topic-feed followers too (1,000 per 10,000 feeds); "
                "per-check and per-request counts are the measured ones above. What else changes at these sizes "
                "(Lambda concurrency, DynamoDB partitions, SQS throughput, what breaks first) is the scale "
                "model's, [scale.md](scale.md).", "",
                "| feeds | subscribers | followers | checks/month | " + " | ".join(groups) + " | total USD/month |",
                "|---:|---:|---:|---:|" + "---:|" * len(groups) + "---:|"]
        for r in rows:
            out.append(f"| {r['feeds']:,} | {r['subscribers']:,} | {r['followers']:,} | {r['checks']:,.0f} | "
                       + " | ".join(f"{r['groups'][g]:,.2f}" for g in groups) + f" | **{r['total_usd']:,.2f}** |")
    return out


def _observability_bases(obs: dict) -> list[str]:
    w, api = obs["worker"], obs["api"]
    by = w["check_line_bytes"]
    when = f" on {obs['measured_at']}" if obs.get("measured_at") else ""
    out = ["", "### Measured bases of the observability and serving lines", "",
           f"Measured{when} by `bench/observability_counts.py` (run by `make bench`; alone: "
           "`.venv/bin/python bench/observability_counts.py --out obs.json`): the real `fetch_worker` handler on the "
           f"moto test double over {w['corpus_feeds']} corpus feeds and {w['feeds'] - w['corpus_feeds']} failing ones "
           f"(404, 403, 429, 500, an HTML page), two cycles, {w['invocations']} invocations, {w['checks']} checks, "
           "Powertools' log lines at INFO and the EMF lines captured as the function prints them (a deployed "
           "function's name, ARN and X-Ray trace id in each); then the `api` handler fed "
           "`events/api_topic_page.json` and `events/api_topic_feed.json` on a topic over those feeds' episodes "
           f"(`{api['topic']['query']}`, {api['topic']['matches']} matches).", "",
           "| basis | measured |", "|---|---:|"]
    for result in ("parsed", "not_modified", "unchanged", "error"):
        if result in by:
            out.append(f"| `feed refreshed` line, {result.replace('_', ' ')} check | {by[result]['mean']:.0f} B "
                       f"(max {by[result]['max']}) |")
    out += [f"| EMF line per worker invocation (batch of 10) | {w['emf_bytes_per_invocation']:.0f} B |",
            f"| other worker log lines per invocation | {w['other_log_bytes_per_invocation']:.0f} B |",
            "| traces per invocation | 1 (the AWS calls are subsegments of it) |",
            f"| metric names (the handlers' declarations; docs/observability.md) | {len(obs.get('metric_names', []))} |",
            f"| metric names the worker emitted in these two cycles | {len(w['metric_names_emitted'])} |"]
    for kind, label in (("page", "topic page"), ("feed", "topic feed.xml")):
        r = api[kind]
        out.append(f"| {label}: body / gzip / headers / 304 | {r['body_bytes']:,} B / "
                   f"{(r.get('gzip_body_bytes') or 0):,} B / {r['header_bytes']} B / "
                   f"{r['not_modified_header_bytes']} B ({r['not_modified_status']}) |")
        if "route_cpu_ms" in r:
            out.append(f"| {label}: the route's CPU time, warm, store answers in memory (this machine) | "
                       f"{r['route_cpu_ms']:.0f} ms"
                       + (f" (304: {r['not_modified_route_cpu_ms']:.1f} ms)" if "not_modified_route_cpu_ms" in r else "")
                       + " |")
        if "dynamodb_requests" in r:
            out.append(f"| {label}: DynamoDB requests of a 200 / of a 304 | "
                       f"{' + '.join(r['dynamodb_requests'])} / {' + '.join(r['not_modified_dynamodb_requests'])} |")
    if api.get("match_items"):
        m = api["match_items"]
        out.append(f"| match items: count / mean size | {m['count']} / {m['mean_bytes']:.0f} B |")
    if api.get("topic_item_bytes"):
        out.append(f"| topic item (what a 304 reads) | {api['topic_item_bytes']:,} B |")
    out.append(f"| API access log line | {obs['access_log_line_bytes']} B |")
    import cost  # noqa: PLC0415 - bench/ is on the path wherever the report is rendered

    out += ["", "Assumptions (constants at the top of `bench/cost.py`, each stated in its line's basis): readers "
            f"open a topic page {cost.PAGE_VIEWS_PER_SUBSCRIBER_MONTH} times a month per subscriber; each follower's "
            f"podcast app polls the feed every {24 // cost.FEED_POLLS_PER_FOLLOWER_DAY} hours and the feed changes "
            f"{cost.FEED_CHANGES_PER_DAY} times a day; {cost.GZIP_SHARE:.0%} of requests accept gzip; "
            f"{cost.FAILED_CHECK_SHARE:.0%} of checks fail; CloudWatch counts {cost.LOG_EVENT_OVERHEAD_BYTES} bytes "
            f"an event and stores logs at {cost.LOG_COMPRESSION:.0%} of their ingested size; Lambda's own "
            f"START/END/REPORT lines are {cost.LAMBDA_PLATFORM_LOG_BYTES} bytes an invocation; "
            f"{cost.METRICS_EVERY_HOUR} metric names get data every hour; the API function runs the route's CPU at "
            f"512 MB's {cost.LAMBDA_VCPU_SHARE:.0%} of a vCPU, plus {cost.DDB_ROUND_TRIP_S * 1000:.0f} ms per "
            f"DynamoDB round trip; a topic's revision is rewritten {cost.TOPIC_REVISIONS_PER_NEW_EPISODE} time per "
            f"new episode; transcripts: {cost.TRANSCRIPT_SHARE:.1%} of new episodes (the corpus's measured share), "
            f"{cost.TRANSCRIPT_BYTES // 1000} KB each gzipped (measured), {cost.TRANSCRIPT_MONTHS_KEPT} months kept "
            f"(TranscriptRetentionDays); {cost.DIRECTORY_SECRETS} SSM SecureString for the directory keys."]
    return out


COST_NOTE_PREFIX = "- **Cost section**: "


def cost_note(r: dict) -> str | None:
    """The header's line saying when the cost section's bases were measured again."""
    obs = r.get("observability") or {}
    if not obs.get("measured_at"):
        if priced := r.get("cost_priced"):
            return (COST_NOTE_PREFIX + f"priced again on {priced['at']} at commit {priced['commit']} (+ working "
                    "tree) from this run's counts and sizes (`python bench/run.py --render-from "
                    "bench/last-results.json`): the cost model of that commit, the measurements of the run above")
        return None
    return (COST_NOTE_PREFIX + f"its observability and serving bases measured again on {obs['measured_at']} and "
            "the section rendered again (`python bench/run.py --render-from bench/last-results.json --measure "
            "observability --section cost`), the rest of this run's results as they were")


BUDGET_ROW_PREFIX = "| ≤ $10/month (10k feeds, 10k subscribers, 1,000 feed followers; every line of the bill) | "


def budget_row(c: dict) -> str:
    """The summary table's row for the cost target."""
    return (BUDGET_ROW_PREFIX + f"${c['total_usd']:.2f} hourly"
            + (f"; ${c['adaptive']['total_usd']:.2f} on the adaptive schedule" if "adaptive" in c else "")
            + f" | {_budget_verdict(c)} |")


def splice_cost_section(document: str, results: dict) -> str:
    """``document`` (a rendered report) with section 5 and the summary's cost row
    rendered again from ``results``, every other section left as it was rendered: for a
    cost-only re-measure when the rest of the run's results predate the report's code."""
    head, sep, rest = document.partition("\n## 5. ")
    if not sep:
        raise ValueError("no section 5 in the document")
    _, sep2, tail = rest.partition("\n## ")
    section = "\n".join(_cost_section(results.get("cost"), results.get("observability"))).rstrip("\n")
    note = cost_note(results)
    head = "\n".join(budget_row(results["cost"]) if line.startswith(BUDGET_ROW_PREFIX)
                     else note if note and line.startswith(COST_NOTE_PREFIX) else line
                     for line in head.split("\n"))
    return head + "\n" + section + "\n\n" + (sep2.lstrip("\n") + tail if sep2 else "")


def _after_free(c: dict) -> float:
    import cost  # noqa: PLC0415 - bench/ is on the path wherever the report is rendered

    return round(c["total_usd"] - cost.always_free_usd(c["lines"])[0], 2)


def _budget_verdict(c: dict) -> str:
    if c["total_usd"] <= 10:
        return "met"
    a = c.get("adaptive")
    if a and a["total_usd"] <= 10:
        return "met on the adaptive schedule"
    if a and _after_free(a) <= 10:
        return (f"met after AWS's always-free allowances (${_after_free(a):.2f} adaptive); over at list price: "
                "section 5 says what moves it")
    return "missed: section 5 says which knobs move it" if a else "missed"


# Lines no knob moves: what the digest and the stack's fixed parts cost before the first check.
FIXED_LINES = ("SES", "CloudWatch alarms", "CloudWatch custom metrics", "KMS: alarm topic key")


def _budget_paragraph(a: dict, knobs: list[dict]) -> list[str]:
    import cost  # noqa: PLC0415 - bench/ is on the path wherever the report is rendered

    free, allowances = cost.always_free_usd(a["lines"])
    after_free = round(a["total_usd"] - free, 2)
    core = sum(x["usd"] for x in a["lines"][:CORE_LINES])
    rest = a["total_usd"] - core
    usd = {x["item"]: x["usd"] for x in a["lines"]}
    fixed = sum(usd.get(item, 0) for item in FIXED_LINES)
    tracing = next((k for k in knobs if k["knob"] == "TracingMode"), None)
    sampled = next((k for k in knobs if k["knob"].startswith("TracingMode +")), None)
    verdict = "inside" if after_free <= 10 else "over"
    out = [f"With the default knobs the adaptive month is **${a['total_usd']:.2f}** at list price: the fetch path "
           f"and digest ${core:.2f}, observability and serving ${rest:.2f}. AWS's always-free monthly allowances "
           f"({', '.join(allowances)}), which every account gets each month and which are not subtracted above, "
           f"cover ${free:.2f} of it: **${after_free:.2f}** after them, {verdict} $10."]
    out += ["", f"At list price no knob brings the month to $10: the digest's mail (SES ${usd.get('SES', 0):.2f}, one "
            f"message per subscriber a week), the alarms (${usd.get('CloudWatch alarms', 0):.2f}), the custom "
            f"metrics (${usd.get('CloudWatch custom metrics', 0):.2f}) and the alarm topic's key "
            f"(${usd.get('KMS: alarm topic key', 0):.2f}) are ${fixed:.2f} whatever the knobs. An account whose "
            "always-free allowances other workloads already use pays the list price; for it the levers are fewer "
            "alarms ($0.10 each), the error-family metrics kept off (`FeedErrorMetrics`), and the check interval "
            "(the fetch path's largest line)."]
    if tracing:
        out += ["", "**Tracing is off by default** (`TracingMode` `PassThrough`): it is the one knob whose price "
                "grows with every invocation (at 10,000 feeds Lambda's rate of one trace a second traces nearly "
                "every worker invocation and API request, since they come in bursts slower than that), while "
                "failures are already data without it (every failed check's log line, the `Feeds_*` metrics, the "
                "alarms). Turn it on to look into latency: "
                f"`TracingMode=Active` adds ${tracing['delta_usd']:.2f} a month at list price "
                f"(${tracing['total_usd']:.2f}; ${tracing['after_free_usd']:.2f} after the allowances"
                + (", over $10" if tracing["after_free_usd"] > 10 else "") + ")"
                + (f"; with the template's sampling rule at `TraceReservoirPerSecond` 0 and `TraceFixedRate` 0.05 "
                   f"it would add ${sampled['delta_usd']:.2f} (${sampled['after_free_usd']:.2f} after the allowances), "
                   "if Lambda's sampling follows the rule: AWS documents Lambda's own rate for active tracing as "
                   "fixed, so check the trace count in the X-Ray console before counting on it"
                   if sampled else "") + "."]
    return out


STORE_TARGETS = (("topics list", 1.5), ("topics show", 1.5), ("feeds list", 1.5), ("info", 1.5),
                 ("topics add", 3.0))


def _store_summary_rows(st: dict | None) -> list[str]:
    if not st or "commands" not in st:
        return []
    rows = []
    for label, target in STORE_TARGETS:
        c = st["commands"][label]
        what = "`topics add` (backfill)" if label == "topics add" else f"`{label}`"
        rows.append(f"| {what} on the corpus ≤ {target}× its empty-database time | {c['ratio']:.2f}× "
                    f"({c['corpus']['median_s']:.2f} s vs {c['empty']['median_s']:.2f} s) | "
                    f"{'met' if c['ratio'] <= target else 'missed'} |")
    return rows


def _store_section(st: dict) -> list[str]:
    out = ["## 6. Local store: the corpus in SQLite", ""]
    if "error" in st:
        return out + [f"Not measured: {st['error']}.", ""]
    db, ing = st["databases"]["corpus"], st["ingest"]
    out.append(f"The {st['corpus_files']} corpus files ingested as local file paths into a fresh database "
               f"(`earshot --db corpus.db run --feeds LIST --no-transcripts --json`: {ing['process_s']} s for the whole process, "
               f"{ing['cycle']['parsed']} feeds parsed, errors {ing['cycle']['errors']}): **{db['feeds']} feeds, "
               f"{db['episodes']:,} episodes**, {st['db_bytes']['corpus'] / 1e6:.1f} MB. Both databases hold the "
               f"same {db['topics']} topics (on the corpus: " + ", ".join(
                   f"`{slug}` {n} episodes" for slug, n in st["topic_matches"].items()) + "). Each command is one "
               f"whole `earshot --db DB ...` process (start-up, imports, opening the database, the work, output to a "
               f"pipe), run {st['runs']}× per database ({st['backfill_runs']}× for `topics add`), the two databases "
               "interleaved; the median counts.")
    out.append("")
    out.append("| command | empty database s | corpus database s | corpus − empty | corpus ÷ empty | target |")
    out.append("|---|---:|---:|---:|---:|---|")
    for label, target in STORE_TARGETS:
        c = st["commands"][label]
        cmd = {"topics show": f"topics show {st['show_slug']}",
               "topics add": f"topics add {st['backfill']['slug']} --query '{st['backfill']['query']}'"}.get(label, label)
        diff_ms = (c["corpus"]["median_s"] - c["empty"]["median_s"]) * 1000
        out.append(f"| `earshot {cmd}` | {c['empty']['median_s']:.3f} | {c['corpus']['median_s']:.3f} | "
                   f"{diff_ms:+,.0f} ms | **{c['ratio']:.2f}×** | ≤ {target}× "
                   f"({'met' if c['ratio'] <= target else 'missed'}) |")
    start = st["commands"].get("earshot --help", {}).get("startup")
    if start:
        out.append(f"| `earshot --help` (start-up only, no database) | {start['median_s']:.3f} | – | – | – | – |")
    out.append("")
    if start:
        out.append(f"Every command first pays the CLI's start-up ({start['median_s']:.2f} s here: the interpreter "
                   "and the imports of every command group, boto3 and httpx among them); the *corpus − empty* column "
                   "is what 8,000 episodes add on top. The four read commands touch only small tables or indexed "
                   "rows (feeds, topics, one topic's matches, row counts). `topics add` backfills: it reads every "
                   "stored episode and matches it against the new query, so it is the one command that grows with "
                   "the archive; its matching runs on each field's set of words first and only scans a field's "
                   "words for a position where the term is there (`earshot.topics.query`).")
        out.append("")
    out.append(f"`topics add` on the corpus: {st['backfill']['output'].get('corpus', '')!r}. Every run's times are "
               "in the raw results (`results.json`, kept with `--keep`).")
    return out


def render(r: dict) -> str:
    f = r["facts"]
    lines = ["# Benchmarks", "",
             "Written by `make bench` (`bench/run.py`); do not edit by hand. All figures come from one run on "
             "one workload, on this machine:", "",
             f"- **Machine**: {f['cpu']}, {f['cores']} cores, {f['memory_gb']} GB RAM, {f['os']}; Python {f['python']}",
             "- **Packages**: " + ", ".join(f"{k} {v}" for k, v in f["packages"].items()),
             f"- **Run**: {f['date']}, commit {f['commit'] or '?'} (+ working tree), took {r.get('total_seconds', 0) / 60:.1f} min; "
             f"SQLite {f.get('sqlite', '?')}; load average (1/5/15 min) {f.get('load_start')} at the start, "
             f"{f.get('load_end')} at the end" + (f", 1-minute mean {f['load_mean']} and max {f['load_max']} over the run"
                                                  if f.get("load_mean") is not None else "") + (
                 f" (above {f['cores']}: other processes on this machine competed for its {f['cores']} cores during "
                 "the run, which slows CPU-bound work such as Earshot's cycles and the parse table more than "
                 "rss2email's network waits)" if max((f.get("load_start") or [0])[:1] + (f.get("load_end") or [0])[:1]
                                                     + [f.get("load_max") or 0]) > (f.get("cores") or 1) else ""),
             f"- **Command**: `make bench` = `pip install -r bench/requirements.txt` then `{r['argv']}`"]
    if note := cost_note(r):
        lines.append(note)
    lines.append("")
    if "earshot" in r:
        lines += ["### Summary", ""]
        ec, rc = r["earshot"]["cycles"], r["r2e"]["cycles"]
        cold_x, warm_x = rc[0]["seconds"] / ec[0]["seconds"], rc[1]["seconds"] / ec[1]["seconds"]
        lines.append("| target | measured | |")
        lines.append("|---|---|---|")
        lines.append(f"| warm cycle ≥ 20× faster than rss2email | {warm_x:.1f}× | {'met' if warm_x >= 20 else 'missed'} |")
        lines.append(f"| cold cycle ≥ 3× faster than rss2email | {cold_x:.1f}× | {'met' if cold_x >= 3 else 'missed'} |")
        warm = ec[1]
        unchanged_parses = max(0, warm["parsed"] - r["workload"]["groups"]["new_episodes"])
        lines.append(f"| warm: 0 parses of unchanged feeds | {unchanged_parses} (parsed {warm['parsed']}, all with new episodes) | "
                     f"{'met' if unchanged_parses == 0 else 'missed'} |")
        if r.get("deployed"):
            dw = r["deployed"]["cycles"][-1]
            # Each check writes its feed state once (UpdateItem); the writes beyond one per
            # feed are the parsed feeds' new or changed episodes.
            all_writes = sum(v for op, v in dw["aws_calls"].items() if op in WRITE_OPS)
            unchanged = dw["not_modified"] + dw["unchanged"]
            # Beyond one state write per feed, only the parsed feeds write (their new episodes in
            # batches of 25, each changed episode with its own UpdateItem).
            ok = dw["aws_calls"].get("UpdateItem", 0) >= dw["feeds"] and all_writes - dw["feeds"] <= (
                dw["new_episodes"] + dw["aws_calls"].get("UpdateItem", 0) - dw["feeds"])
            lines.append(f"| warm, deployed path: ≤ 1 DynamoDB write per unchanged feed | 1 state write each for the "
                         f"{unchanged} unchanged feeds of the {dw['feeds']}-feed sample ({all_writes / max(1, dw['feeds']):.2f} "
                         f"per feed overall: +{all_writes - dw['feeds']} episode writes of the {dw['parsed']} parsed feeds) | "
                         f"{'met' if ok else 'check'} |")
        if "parse" in r and "table" in r.get("parse", {}):
            p = r["parse"]
            speed, same = p["table"]["earshot"]["speedup_vs_former"], p["identical"]["episodes"]["share"]
            lines.append(f"| parse ≥ 10× the former parse_feed, episodes identical to the fallback on ≥ 99 % of files | "
                         f"{speed}× at {same:.1%} identical | {'met' if speed >= 10 and same >= 0.99 else 'missed'} |")
        if r.get("digest") and "messages_per_s" in r["digest"]:
            d = r["digest"]["messages_per_s"]
            lines.append(f"| digest ≥ 2,000 messages/s | {d:,.0f} | {'met' if d >= 2000 else 'missed'} |")
        if r.get("memory") and "probes" in r["memory"]:
            peak = max(p.get("peak_rss_mb", 0) for p in r["memory"]["probes"]
                       if p["mode"] in ("refresh", "refresh_again"))
            capped = next((p for p in r["memory"]["probes"] if p["mode"] == "fetch"), {})
            lines.append(f"| 50 MB feed: stops at the 15 MiB cap | {capped.get('outcome')} | "
                         f"{'met' if 'body_too_large' in str(capped.get('outcome')) else 'missed'} |")
            lines.append(f"| 50 MB feed, cap 100 MB: peak RSS ≤ 200 MB (the whole refresh, into SQLite) | {peak} MB | "
                         f"{'met' if peak <= 200 else 'missed'} |")
        if r.get("cost") and "total_usd" in r["cost"]:
            lines.append(budget_row(r["cost"]))
        lines += _store_summary_rows(r.get("store"))
        lines.append("")
        lines += _cycle_section(r)
        lines.append("")
    if "parse" in r:
        lines += _parse_section(r["parse"])
        lines.append("")
    lines += _digest_section(r.get("digest"))
    lines.append("")
    lines += _memory_section(r.get("memory"))
    lines.append("")
    lines += _cost_section(r.get("cost"), r.get("observability"))
    lines.append("")
    if "store" in r:
        lines += _store_section(r["store"])
        lines.append("")
    lines += ["## How to run", "",
              "```sh",
              "make bench                                   # the whole thing (~30 min on 2 cores, more on a busy machine), rewrites this file",
              ".venv/bin/python bench/run.py --quick --out /tmp/bench.md   # ~100 feeds, for iterating",
              ".venv/bin/python bench/run.py --feeds 2000 --out /tmp/bench.md",
              ".venv/bin/python bench/run.py --only parse,digest --out /tmp/bench.md",
              ".venv/bin/python bench/run.py --only store --out /tmp/bench.md   # the local store table alone",
              ".venv/bin/python bench/run.py --render-from bench/last-results.json   # this file again from the last run's results",
              ".venv/bin/python bench/run.py --render-from bench/last-results.json --measure observability   # + the cost section's bases measured again",
              ".venv/bin/python bench/run.py --render-from bench/last-results.json --measure observability --section cost   # only section 5 rewritten, the rest kept",
              "```", "",
              "Never part of `make test`. The feed server listens on 127.0.0.1 (its control URLs) and on each "
              "127.0.0.N address the workload gives a feed, all on one port: every feed host is a real, distinct "
              "address on the loopback interface, so Earshot's per-host politeness limit (2 requests at once per "
              "host) meets them as it would meet hosting platforms on the internet, and no name resolution is "
              "involved. Earshot runs its local mode (SQLite, `earshot run`); the deployed path (DynamoDB, SQS) is "
              "exercised only for its request counts, on the moto test double. rss2email runs from its default "
              "config written by `r2e new` (`same-server-fetch-interval` 0, `verbose` lowered to warning) with one "
              "`[feed.NAME]` section per feed, as `r2e add` writes them. Other work on the machine skews timings: "
              "the header gives the load average over the run, the cycle table the load during each cycle.", ""]
    return "\n".join(lines)
