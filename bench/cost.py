"""Monthly AWS cost from the measured request counts (the cost table).

The counts are the deployed path's (``deployed_counts.py``: the dispatcher and
fetch_worker handlers on the moto test double, on a sample of the cycle workload); the
adaptive schedule uses the check intervals Earshot chose for the whole workload. What the
stack writes to CloudWatch and X-Ray and sends to readers is priced from
``observability_counts.py``'s measurements (log and EMF bytes, response sizes, match
items) and the stated assumptions below (traffic, failure share, compression); each knob
that bounds it is priced by moving it (:func:`knob_table`), and the larger rows of the
scale model by :func:`scale_table`.

Prices: on-demand list prices for us-east-1 (N. Virginia) as published by AWS in 2025,
after the November 2024 DynamoDB on-demand reduction; free tiers are NOT subtracted.
The benchmark has no network: re-check them before quoting.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

PRICES = {
    "lambda_gb_s_arm64": 0.0000133334,  # USD per GB-second, first 7.5 billion GB-s
    "lambda_request": 0.20 / 1e6,
    "ddb_wru": 0.625 / 1e6,  # on-demand write request unit (1 KB)
    "ddb_rru": 0.125 / 1e6,  # on-demand read request unit (4 KB strongly / 8 KB eventually consistent)
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk
    "ses_message": 0.10 / 1000,  # outbound email
    "scheduler_invocation": 1.00 / 1e6,  # EventBridge Scheduler (14 M/month free, not subtracted)
}
PRICES.update({
    "logs_ingest_gb": 0.50,  # CloudWatch Logs, Standard class, per GB ingested
    "logs_storage_gb_month": 0.03,  # per GB-month archived (stored compressed)
    "xray_trace": 5.00 / 1e6,  # traces recorded (retrieval and scans not modelled: $0.50/M when used)
    "cw_metric_month": 0.30,  # custom metric (name x dimensions), first 10,000, prorated by the hour it gets data
    "cw_alarm_month": 0.10,  # standard-resolution alarm
    "http_api_request": 1.00 / 1e6,  # HTTP API, first 300 M a month, per 512 KB
    "data_out_gb": 0.09,  # data transfer out to the internet, first 10 TB
    "s3_gb_month": 0.023,  # S3 Standard storage
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "ssm_standard_parameter_month": 0.0,  # SSM Parameter Store, standard tier (standard throughput: no API charge)
    "kms_key_month": 1.00,  # customer-managed key (+$1 for each of the first two yearly rotations)
    "kms_request": 0.03 / 10_000,
})
PRICES_AS_OF = "AWS public on-demand prices for us-east-1 as listed in 2025 (DynamoDB after the Nov 2024 cut)"

# ---------------------------------------------------------------- observability and serving
# Stated assumptions, each a number someone can change. Measured bases come from
# observability_counts.py (log and EMF bytes, response sizes, match items) and the
# template (alarms, retention, sampling defaults).
LOG_EVENT_OVERHEAD_BYTES = 26  # CloudWatch Logs counts 26 bytes per event on top of its message
LAMBDA_PLATFORM_LOG_BYTES = 380  # START + END + REPORT (with the X-Ray segment line) per invocation, text format
LOG_COMPRESSION = 0.15  # archived bytes / ingested bytes for JSON lines (stored compressed)
LOG_RETENTION_DAYS = 30  # template LogRetentionInDays default
CHECK_LOG_SAMPLE_RATE = 0.1  # template CheckLogSampleRate default
FAILED_CHECK_SHARE = 0.06  # checks that fail (always logged): the cold corpus run failed 7 %, a warm month fewer
TRACING_ACTIVE = False  # template TracingMode default PassThrough (see use_template_defaults)
TRACE_RESERVOIR_PER_S = 1  # template TraceReservoirPerSecond default = Lambda's documented rate
TRACE_FIXED_RATE = 0.05  # template TraceFixedRate default
WORKER_BURST_S = 600  # the hourly dispatch's checks run within ~10 min (5 workers): the reservoir's seconds
# Metrics: names that get data in a given hour (billed by the hour): the worker's every hour
# (Feeds_parsed/not_modified/unchanged/error, NewEpisodes, FeedsQueued; with FeedErrorMetrics
# also the usual failure families: http_4xx, http_5xx, timeout, connect_error, not_a_feed,
# malformed), the digest's nine in its weekly hour or two, the rest rarely.
METRICS_EVERY_HOUR = 6  # template FeedErrorMetrics default false
METRICS_WEEKLY = 9
WEEKLY_RUN_HOURS = 2
METRICS_RARE_HOURS = 40  # the other names together: hours a month with data
# Readers. A digest subscriber opens the topic page twice a month; each follower's
# podcast app polls the topic feed every 4 hours (device apps; a server-side app polls
# once for all its users), and the feed changes (a new matching episode) 3 times a day.
PAGE_VIEWS_PER_SUBSCRIBER_MONTH = 2
FOLLOWERS_PER_TOPIC_FEED = 1_000
FOLLOWED_TOPIC_FEEDS = 1  # topic feeds with that many followers (the row's "1,000 followers per topic RSS feed")
FEED_POLLS_PER_FOLLOWER_DAY = 6
FEED_CHANGES_PER_DAY = 3
GZIP_SHARE = 0.95  # requests that accept gzip (browsers, podcast apps)
# The API keeps the bodies it rendered, by what they show (web/topics.py ``rendered``): a
# changed feed's matches are read once per warm API container, its other downloads read
# the topic's item alone. Containers that render each change: assumed 2 (1,000 apps
# polling every 4 h keep about one warm). Page views are all counted as reading the
# matches (a page revises with every new match, and views are sparse). 0 = off.
API_RENDERS_PER_FEED_CHANGE = 2
# Topic revisions (the page's and feed's validator): one UpdateItem each time a check
# writes a topic's matches; counted as one per new episode (an episode matching several
# topics revises each, one matching none revises nothing).
TOPIC_REVISIONS_PER_NEW_EPISODE = 1
TOPIC_VALIDATOR = True  # a held tag is checked against the topic's item (False: rendered again, as a 200 reads)
API_MEMORY_GB = 0.5
LAMBDA_VCPU_SHARE = 512 / 1769  # Lambda gives a full vCPU at 1,769 MB: 512 MB runs CPU-bound work at ~29 %
DDB_ROUND_TRIP_S = 0.015  # one Query page (up to 1 MB) from inside the region
DIRECTORY_SECRETS = 1  # the directory's "KEY:SECRET": one SSM SecureString (template DirectoryKeyParameter)
DIRECTORY_SECRET_READS_MONTH = 5_000  # read once per cold start of the functions that call the directory
ALARM_KEY_ROTATIONS = 0  # first year; +1 $/month after each of the first two yearly rotations

FEEDS = 10_000
SUBSCRIBERS = 10_000
HOURS_PER_MONTH = 730
WEEKS_PER_MONTH = 52 / 12
WORKER_MEMORY_GB = 1.0  # template.yaml FetchWorkerFunction MemorySize 1024
SENDER_MEMORY_GB = 0.5  # assumed for digest_sender (template default 512 MB)
NEW_EPISODES_PER_FEED_WEEK = 1.5  # a typical podcast; each new episode is one item write
ESM_IDLE_SQS_REQUESTS = 5 * 3 * 60 * HOURS_PER_MONTH  # 5 pollers x 20 s long polls, per queue
# Per digest mail, from delivery.send_batch: get_subscriber (1 read), claim_send,
# put_token, finish_claim (3 writes); SQS: one message per 50 recipients (send, receive,
# delete) = 0.06 requests per mail.
DIGEST_WRITES_PER_MAIL = 3
DIGEST_READS_PER_MAIL = 1
DIGEST_SQS_PER_MAIL = 0.06
SES_PER_MAIL_MS = 60  # SendEmail round trip assumed inside the sender's duration
# Publishers' transcripts (bench/transcripts.py): the share of corpus episodes that list
# one (135 of 8,372), and per 1,000 transcripts fetched: the worker's GB-seconds (batches
# of 10 at 512 MB, measured on loopback with 50-300 ms per response), SQS requests,
# DynamoDB reads/writes (episode, feed, state; the state) and the archive's gzipped bytes.
TRANSCRIPT_SHARE = 135 / 8372
TRANSCRIPT_GB_S_PER_1000 = 236.5
TRANSCRIPT_ARCHIVE_BYTES = 17_000  # per transcript, the corpus mix (~1 h, SRT)
TRANSCRIPT_RETENTION_MONTHS = 24  # template TranscriptRetentionDays 730
# The S3 line prices what bench/transcripts.py measured: gzipped cues per transcript, kept
# for the template's retention.
TRANSCRIPT_BYTES = TRANSCRIPT_ARCHIVE_BYTES
TRANSCRIPT_MONTHS_KEPT = TRANSCRIPT_RETENTION_MONTHS


HOST_SLOT_WRU = 1  # a host slot item: key, holder, expiry (~100 B), in no index


def _wru(size_bytes: float) -> int:
    return max(1, math.ceil(size_bytes / 1024))


def monthly_cost(deployed: dict | None, digest: dict | None = None, *, interval_s: list[int] | None = None,
                 checks_per_hour: float = 1.0, observability: dict | None = None, alarms: int = 0) -> dict:
    """Monthly USD for FEEDS feeds checked ``checks_per_hour`` times an hour and
    SUBSCRIBERS weekly digests, from the deployed path's warm-cycle counts."""
    if not deployed:
        return {"error": "deployed-path counts missing"}
    warm = deployed["cycles"][-1]
    feeds = warm["feeds"] or 1
    calls = warm["aws_calls"]
    sizes = deployed.get("feed_item_sizes", {})
    feed_item = sizes.get("feed_avg_bytes", 600) or 600
    ep_item = sizes.get("episode_avg_bytes", 2500) or 2500
    checks = FEEDS * HOURS_PER_MONTH * checks_per_hour

    # --- DynamoDB writes per warm check: the feed-state UpdateItem, plus index writes.
    # Every check moves next_check_at, the `due` index's sort key: a key change costs a
    # delete + a put in that index (projected attributes only). The `type` index projects
    # a feed's url/title/status only; a check leaves url and title out but rewrites
    # `status` (usually to the same value: the check's copy may be stale, so it is always
    # written). Counted as one index write to stay on the safe side: whether a same-value
    # rewrite costs a write is not modelled.
    # The host slot leases (acquire and release, per host a worker serves) are UpdateItems
    # too, on a small item that no index projects: 1 WRU each. Results from before they
    # were counted apart derive them: every check writes its feed's state exactly once.
    slot_writes = warm.get("host_slot_updates", max(0, calls.get("UpdateItem", 0) - feeds)) / feeds
    state_writes = calls.get("UpdateItem", 0) / feeds - slot_writes
    due_projection = min(feed_item, 450)
    wru_per_state_write = _wru(feed_item) + 2 * _wru(due_projection) + _wru(feed_item)
    wru_per_check = state_writes * wru_per_state_write + slot_writes * HOST_SLOT_WRU
    episode_wru_month = FEEDS * NEW_EPISODES_PER_FEED_WEEK * WEEKS_PER_MONTH * _wru(ep_item)
    # Reads: the dispatcher's Query over the due index (~projection size per feed,
    # eventually consistent = 0.5 RRU per 4 KB), and the worker's episode-hash Query for
    # each parsed feed (keys + hash only, ~90 bytes per stored episode).
    dispatch_rru = FEEDS * due_projection / 4096 * 0.5
    parsed_share = warm["parsed"] / feeds
    hash_rru_per_check = parsed_share * max(0.5, 200 * 90 / 4096 * 0.5)

    # --- Lambda: worker duration per batch of 10 = the warm batch wall time measured with
    # one invocation at a time (real delays of 50-300 ms per feed, the handler's threads;
    # moto's in-process answers stand in for DynamoDB round trips).
    batches = warm.get("batch_seconds") or [1.0]
    batch_s = sum(batches) / len(batches)
    batch_size = feeds / len(batches)
    invocations = checks / batch_size
    worker_gb_s = invocations * batch_s * WORKER_MEMORY_GB
    dispatcher_s = warm.get("dispatch_seconds", 1.0) * FEEDS / feeds

    # --- SQS: dispatcher SendMessageBatch (1 per 10) + ESM Receive + DeleteMessageBatch.
    sqs_per_check = (calls.get("SendMessageBatch", 0) + calls.get("ReceiveMessage", 0)
                     + calls.get("DeleteMessageBatch", 0)) / feeds

    mails = SUBSCRIBERS * WEEKS_PER_MONTH
    mime_ms = (digest or {}).get("ms_per_message", 1.0) or 1.0
    sender_s = (mime_ms + SES_PER_MAIL_MS) / 1000

    lines = [
        ("Lambda fetch_worker: requests", invocations * PRICES["lambda_request"],
         f"{invocations:,.0f} invocations (batches of {batch_size:.0f})"),
        ("Lambda fetch_worker: duration", worker_gb_s * PRICES["lambda_gb_s_arm64"],
         f"{batch_s:.3f} s per batch (wall time on the moto test double, one invocation at a time) x 1 GB = "
         f"{worker_gb_s:,.0f} GB-s"),
        ("Lambda dispatcher", HOURS_PER_MONTH * checks_per_hour * (dispatcher_s * 0.5 * PRICES["lambda_gb_s_arm64"]
                                                                      + PRICES["lambda_request"]),
         f"{dispatcher_s:.2f} s per run (scaled to {FEEDS:,} feeds) x 512 MB"),
        ("DynamoDB writes: feed state + indexes", checks * wru_per_check * PRICES["ddb_wru"],
         f"{state_writes:.2f} UpdateItem per check x {wru_per_state_write} WRU (item {feed_item:.0f} B: "
         f"table 1 + `due` key move 2 + `type` 1) + {slot_writes:.2f} host slot lease writes per check "
         f"x {HOST_SLOT_WRU} WRU (politeness across workers)"),
        ("DynamoDB writes: new episodes", episode_wru_month * PRICES["ddb_wru"],
         f"{NEW_EPISODES_PER_FEED_WEEK} new episodes per feed-week x {_wru(ep_item)} WRU (item {ep_item:.0f} B)"),
        ("DynamoDB reads", (HOURS_PER_MONTH * checks_per_hour * dispatch_rru + checks * hash_rru_per_check)
         * PRICES["ddb_rru"], "due-index Query per run + episode-hash Query per parsed feed"),
        ("SQS fetch queue", (checks * sqs_per_check + ESM_IDLE_SQS_REQUESTS) * PRICES["sqs_request"],
         f"{sqs_per_check:.2f} requests per check measured + ~{ESM_IDLE_SQS_REQUESTS:,} idle long polls"),
        ("EventBridge Scheduler", (HOURS_PER_MONTH + WEEKS_PER_MONTH) * PRICES["scheduler_invocation"],
         "hourly dispatch + weekly digest"),
        ("SES", mails * PRICES["ses_message"], f"{mails:,.0f} digests a month"),
        ("Lambda digest_sender", mails * (PRICES["lambda_request"] / 50 + sender_s * SENDER_MEMORY_GB
                                          * PRICES["lambda_gb_s_arm64"]),
         f"one invocation per 50 mails, {mime_ms:.2f} ms MIME (measured) + {SES_PER_MAIL_MS} ms SES (assumed)"),
        ("DynamoDB + SQS per mail", mails * (DIGEST_WRITES_PER_MAIL * PRICES["ddb_wru"]
                                             + DIGEST_READS_PER_MAIL * 0.5 * PRICES["ddb_rru"]
                                             + DIGEST_SQS_PER_MAIL * PRICES["sqs_request"]),
         f"{DIGEST_WRITES_PER_MAIL} writes + {DIGEST_READS_PER_MAIL} read + {DIGEST_SQS_PER_MAIL} SQS requests per mail"),
    ]
    transcripts = FEEDS * NEW_EPISODES_PER_FEED_WEEK * WEEKS_PER_MONTH * TRANSCRIPT_SHARE
    lines += [
        ("Transcripts: fetch, parse, archive", transcripts * (
            TRANSCRIPT_GB_S_PER_1000 / 1000 * PRICES["lambda_gb_s_arm64"] + PRICES["lambda_request"] / 10
            + 0.3 * PRICES["sqs_request"] + 3 * PRICES["ddb_rru"] + PRICES["ddb_wru"]),
         f"{transcripts:,.0f} transcripts a month ({TRANSCRIPT_SHARE:.1%} of new episodes list one, as in the "
         f"corpus); {TRANSCRIPT_GB_S_PER_1000 / 1000:.2f} GB-s (S3 priced below), 3 reads + 1 write each"),
    ]
    if observability and "worker" in observability:
        lines += observability_lines(observability, invocations=invocations, checks=checks,
                                     other_invocations=HOURS_PER_MONTH * checks_per_hour + mails / 50,
                                     subscribers=SUBSCRIBERS, alarms=alarms)
    total = sum(cost for _, cost, _ in lines)
    result = {
        "feeds": FEEDS, "subscribers": SUBSCRIBERS, "checks_per_hour": checks_per_hour,
        "lines": [{"item": n, "usd": round(c, 2), "basis": b} for n, c, b in lines],
        "total_usd": round(total, 2), "prices": PRICES, "prices_as_of": PRICES_AS_OF,
        "wru_per_check": round(wru_per_check, 2), "checks_per_month": checks,
    }
    if checks_per_hour == 1.0:
        # The adaptive schedule: the interval Earshot itself chose for the workload's feeds.
        intervals = interval_s or []
        if intervals:
            rate = sum(3600 / i for i in intervals) / len(intervals)
            result["adaptive"] = monthly_cost(deployed, digest, interval_s=intervals, checks_per_hour=rate,
                                              observability=observability, alarms=alarms)
            result["adaptive"]["checks_per_hour"] = round(rate, 3)
    return result


def _traces(invocations_per_hour: float, burst_s: float) -> float:
    """Traces recorded in one hour of ``invocations_per_hour`` spread over ``burst_s``
    seconds: the reservoir's one a second, then the fixed rate of the rest (none with
    tracing off)."""
    if not TRACING_ACTIVE:
        return 0.0
    reservoir = min(invocations_per_hour, TRACE_RESERVOIR_PER_S * burst_s)
    return reservoir + TRACE_FIXED_RATE * (invocations_per_hour - reservoir)


def _api_duration_s(cpu_ms: float, read_bytes: float | None) -> float:
    """An API invocation's duration: the route's measured CPU at Lambda's CPU share for
    512 MB, plus the topic's GetItem and (``read_bytes`` not None: a 200) the matches'
    Query pages (1 MB each) as round trips."""
    pages = 0 if read_bytes is None else max(1, math.ceil(read_bytes / 1e6))
    return cpu_ms / 1000 / LAMBDA_VCPU_SHARE + DDB_ROUND_TRIP_S * (1 + pages)


def new_eps_month(given: float | None = None) -> float:
    return given if given is not None else FEEDS * NEW_EPISODES_PER_FEED_WEEK * WEEKS_PER_MONTH


def serving_counts(obs: dict, *, subscribers: int, followers: int) -> dict:
    """Requests, bytes out and DynamoDB reads a month for the topic pages and feeds."""
    api = obs["api"]
    page, feed, items = api["page"], api["feed"], api.get("match_items", {})
    views = subscribers * PAGE_VIEWS_PER_SUBSCRIBER_MONTH
    polls = followers * FEED_POLLS_PER_FOLLOWER_DAY * 30.4
    full = followers * min(FEED_POLLS_PER_FOLLOWER_DAY, FEED_CHANGES_PER_DAY) * 30.4  # 200s; the rest are 304s

    def sent(r: dict) -> float:  # body bytes of one 200, gzip for those that accept it
        gz = r.get("gzip_body_bytes") or r["body_bytes"]
        return GZIP_SHARE * gz + (1 - GZIP_SHARE) * r["body_bytes"] + r["header_bytes"]

    out_bytes = views * sent(page) + full * sent(feed) + (polls - full) * feed["not_modified_header_bytes"]
    item_bytes = items.get("mean_bytes", 1000) or 1000
    read_items = {"page": items.get("count", 0), "feed": min(items.get("count", 0), 300)}
    # Eventually consistent reads: 0.5 RRU per 4 KB, a GetItem rounded up to whole 4 KB.
    topic_rru = 0.5 * math.ceil((api.get("topic_item_bytes") or 1000) / 4096)
    rru = lambda n: max(0.5, n * item_bytes / 4096 * 0.5)  # noqa: E731 - the matches' Query
    # A 200 reads the topic's item and its matches; a 304 (the client's tag still names the
    # topic's revision) the topic's item alone. Every page view is counted as a 200.
    rru_view, rru_full = topic_rru + rru(read_items["page"]), topic_rru + rru(read_items["feed"])
    rru_304 = topic_rru if TOPIC_VALIDATOR else rru_full
    renders = (min(full, FOLLOWED_TOPIC_FEEDS * FEED_CHANGES_PER_DAY * 30.4 * API_RENDERS_PER_FEED_CHANGE)
               if API_RENDERS_PER_FEED_CHANGE and TOPIC_VALIDATOR else full)
    return {"views": views, "polls": polls, "full_feeds": full, "requests": views + polls, "out_gb": out_bytes / 1e9,
            "rru": views * rru_view + renders * rru_full + (full - renders) * topic_rru + (polls - full) * rru_304,
            "feed_renders": renders,
            "rru_per_view": rru_view, "rru_per_full_poll": rru_full, "rru_per_304": rru_304,
            "handler_s": {"page": _api_duration_s(page.get("route_cpu_ms", 200), read_items["page"] * item_bytes),
                          "feed": _api_duration_s(feed.get("route_cpu_ms", 200), read_items["feed"] * item_bytes),
                          "feed_304": _api_duration_s(feed.get("not_modified_route_cpu_ms",
                                                               feed.get("route_cpu_ms", 200)), None)
                          if TOPIC_VALIDATOR else
                          _api_duration_s(feed.get("route_cpu_ms", 200), read_items["feed"] * item_bytes)},
            "feed_bytes": feed["body_bytes"], "feed_gzip_bytes": feed.get("gzip_body_bytes"),
            "page_bytes": page["body_bytes"], "page_gzip_bytes": page.get("gzip_body_bytes"),
            "not_modified_bytes": feed["not_modified_header_bytes"], "matches": items.get("count", 0),
            "match_item_bytes": item_bytes, "topic_item_bytes": api.get("topic_item_bytes") or 1000,
            "reads_304": feed.get("not_modified_dynamodb_requests")}


def observability_lines(obs: dict, *, invocations: float, checks: float, other_invocations: float, subscribers: int,
                        alarms: int, followers: int | None = None, new_episodes_month: float | None = None,
                        sample_rate: float | None = None) -> list[tuple[str, float, str]]:
    """The lines a first bill adds to the core path's: logs, traces, metrics, alarms, the
    API's requests and bytes, transcripts in S3, the directory's key parameter, the alarm key."""
    w = obs["worker"]
    sample_rate = CHECK_LOG_SAMPLE_RATE if sample_rate is None else sample_rate
    followers = FOLLOWERS_PER_TOPIC_FEED * FOLLOWED_TOPIC_FEEDS if followers is None else followers
    lines_by_result = w["check_line_bytes"]
    routine = [lines_by_result[k]["mean"] for k in ("parsed", "not_modified", "unchanged") if k in lines_by_result]
    routine_b = sum(routine) / len(routine) if routine else w["check_line_mean_bytes"]
    error_b = lines_by_result.get("error", {}).get("mean", routine_b)
    logged_share = FAILED_CHECK_SHARE + (1 - FAILED_CHECK_SHARE) * sample_rate
    check_log = checks * (FAILED_CHECK_SHARE * (error_b + LOG_EVENT_OVERHEAD_BYTES)
                          + (1 - FAILED_CHECK_SHARE) * sample_rate * (routine_b + LOG_EVENT_OVERHEAD_BYTES))
    per_invocation = (w["emf_bytes_per_invocation"] + w["other_log_bytes_per_invocation"] + LAMBDA_PLATFORM_LOG_BYTES
                      + LOG_EVENT_OVERHEAD_BYTES * (3 + w["emf_lines_per_invocation"] + w["other_log_lines_per_invocation"]))
    worker_log = invocations * per_invocation
    other_log = other_invocations * (LAMBDA_PLATFORM_LOG_BYTES + 900 + 5 * LOG_EVENT_OVERHEAD_BYTES)
    s = serving_counts(obs, subscribers=subscribers, followers=followers)
    api_log = s["requests"] * (LAMBDA_PLATFORM_LOG_BYTES + obs["access_log_line_bytes"] + 4 * LOG_EVENT_OVERHEAD_BYTES)
    log_gb = (check_log + worker_log + other_log + api_log) / 1e9
    stored_gb = log_gb * LOG_COMPRESSION * LOG_RETENTION_DAYS / 30.4

    worker_per_hour = invocations / HOURS_PER_MONTH
    traces = (HOURS_PER_MONTH * _traces(worker_per_hour, WORKER_BURST_S)
              + HOURS_PER_MONTH * _traces(s["requests"] / HOURS_PER_MONTH, 3600)
              + (other_invocations if TRACING_ACTIVE else 0))
    metric_months = (METRICS_EVERY_HOUR * HOURS_PER_MONTH + METRICS_WEEKLY * WEEKLY_RUN_HOURS * WEEKS_PER_MONTH
                     + METRICS_RARE_HOURS) / HOURS_PER_MONTH
    api_gb_s = API_MEMORY_GB * (s["views"] * s["handler_s"]["page"] + s["full_feeds"] * s["handler_s"]["feed"]
                                + (s["polls"] - s["full_feeds"]) * s["handler_s"]["feed_304"])
    # Each change of a topic's matches rewrites its item's revision (one UpdateItem, after
    # the match writes): at most one a new episode, each counted as a change.
    revisions = new_eps_month(new_episodes_month) * TOPIC_REVISIONS_PER_NEW_EPISODE
    revision_wru = _wru(s["topic_item_bytes"])
    new_eps = new_eps_month(new_episodes_month)
    transcripts = new_eps * TRANSCRIPT_SHARE
    stored_transcripts_gb = transcripts * TRANSCRIPT_MONTHS_KEPT * TRANSCRIPT_BYTES / 1e9
    n_metrics = len(obs.get("metric_names", []))
    return [
        ("CloudWatch Logs: ingestion", log_gb * PRICES["logs_ingest_gb"],
         f"{log_gb:,.2f} GB: per-check line {routine_b:.0f} B (failed {error_b:.0f} B, measured) on "
         f"{logged_share:.0%} of checks (every failure + {sample_rate:.0%} of feeds' routine checks, "
         f"CheckLogSampleRate); per worker invocation EMF {w['emf_bytes_per_invocation']:.0f} B (measured) + "
         f"Lambda's START/END/REPORT {LAMBDA_PLATFORM_LOG_BYTES} B; per API request {LAMBDA_PLATFORM_LOG_BYTES} B + "
         f"access log {obs['access_log_line_bytes']} B; +{LOG_EVENT_OVERHEAD_BYTES} B an event"),
        ("CloudWatch Logs: storage", stored_gb * PRICES["logs_storage_gb_month"],
         f"{LOG_RETENTION_DAYS}-day retention (LogRetentionInDays), stored at {LOG_COMPRESSION:.0%} of ingested"),
        ("X-Ray traces", traces * PRICES["xray_trace"],
         (f"{traces:,.0f} traces: 1 per sampled invocation (measured: one trace, its AWS calls as subsegments); "
          f"{TRACE_RESERVOIR_PER_S:g}/s then {TRACE_FIXED_RATE:.0%} (TracingMode Active, the sampling rule's values); "
          f"the worker's {worker_per_hour:,.0f} invocations an hour within ~{WORKER_BURST_S // 60} min")
         if TRACING_ACTIVE else
         "TracingMode PassThrough (the default): none of Earshot's invocations traced; Active priced in the knob table"),
        ("CloudWatch custom metrics", metric_months * PRICES["cw_metric_month"],
         f"{n_metrics} names declared (a fixed set, one dimension); billed by the hour with data: ~{METRICS_EVERY_HOUR} "
         f"every hour, {METRICS_WEEKLY} in the weekly digest's hours, the rest ~{METRICS_RARE_HOURS} h a month"),
        ("CloudWatch alarms", alarms * PRICES["cw_alarm_month"], f"{alarms} standard alarms in template.yaml"),
        ("HTTP API requests", s["requests"] * PRICES["http_api_request"],
         f"{s['views']:,.0f} page views ({PAGE_VIEWS_PER_SUBSCRIBER_MONTH} per subscriber) + {s['polls']:,.0f} feed polls "
         f"({followers:,} followers, every {24 // FEED_POLLS_PER_FOLLOWER_DAY} h)"),
        ("Lambda api", s["requests"] * PRICES["lambda_request"] + api_gb_s * PRICES["lambda_gb_s_arm64"],
         f"{s['handler_s']['page'] * 1000:.0f} ms a page, {s['handler_s']['feed'] * 1000:.0f} ms a feed, "
         f"{s['handler_s']['feed_304'] * 1000:.0f} ms a 304: the route's CPU (measured) at 512 MB's "
         f"{LAMBDA_VCPU_SHARE:.0%} of a vCPU + DynamoDB round trips ({DDB_ROUND_TRIP_S * 1000:.0f} ms an item or "
         "a Query page of 1 MB)"),
        ("DynamoDB reads: pages and feeds", s["rru"] * PRICES["ddb_rru"],
         f"{s['rru_per_view']:.0f} RRU a page view (the topic + all {s['matches']} matches, "
         f"{s['match_item_bytes']:.0f} B each), {s['rru_per_full_poll']:.0f} a feed render (the newest 300; "
         f"{s['feed_renders']:,.0f} of the {s['full_feeds']:,.0f} downloads: one per warm API container and change, "
         f"{API_RENDERS_PER_FEED_CHANGE} assumed; the others come from the rendered body kept by its validator, "
         f"the topic's item alone), {s['rru_per_304']:g} a poll answered 304 (the topic's {s['topic_item_bytes']:,} B item alone: "
         f"{' + '.join(s['reads_304'] or ['GetItem'])}, measured)"),
        ("DynamoDB writes: topic revisions", revisions * revision_wru * PRICES["ddb_wru"],
         f"{revisions:,.0f} a month: the validator rewritten after each change of a topic's matches "
         f"({TOPIC_REVISIONS_PER_NEW_EPISODE} per new episode, assumed) x {revision_wru} WRU"),
        ("Data transfer out", s["out_gb"] * PRICES["data_out_gb"],
         f"{s['out_gb']:,.2f} GB: feed {s['feed_bytes'] / 1000:.0f} KB ({(s['feed_gzip_bytes'] or 0) / 1000:.0f} KB gzip) "
         f"only when it changed ({FEED_CHANGES_PER_DAY}/day), else a {s['not_modified_bytes']} B 304; page "
         f"{s['page_bytes'] / 1000:.0f} KB ({(s['page_gzip_bytes'] or 0) / 1000:.0f} KB gzip)"),
        ("S3: transcripts", stored_transcripts_gb * PRICES["s3_gb_month"]
         + transcripts * (PRICES["s3_put"] + PRICES["s3_get"]),
         f"{TRANSCRIPT_SHARE:.1%} of {new_eps:,.0f} new episodes a month carry one, {TRANSCRIPT_BYTES // 1000} KB each, "
         f"{TRANSCRIPT_MONTHS_KEPT} months kept ({stored_transcripts_gb:,.1f} GB); one PUT and one GET each (assumed)"),
        ("SSM Parameter Store: directory keys", DIRECTORY_SECRETS * PRICES["ssm_standard_parameter_month"]
         + DIRECTORY_SECRET_READS_MONTH * PRICES["kms_request"],
         f"{DIRECTORY_SECRETS} SecureString, standard tier (no charge); ~{DIRECTORY_SECRET_READS_MONTH:,} reads "
         "(assumed), each a KMS decrypt with the AWS managed aws/ssm key (no monthly charge for that key)"),
        ("KMS: alarm topic key", (1 + ALARM_KEY_ROTATIONS) * PRICES["kms_key_month"] + 1_000 * PRICES["kms_request"],
         "customer-managed key $1/month (+$1 after each of its first two yearly rotations); requests only when an "
         "alarm publishes"),
    ]


def use_template_defaults(template: dict) -> None:
    """Set the knobs' assumptions to the template's parameter defaults, so "the default
    knobs" priced are the ones a deploy gets."""
    defaults = {name: p.get("Default") for name, p in template.get("Parameters", {}).items()}
    globals().update({
        "TRACING_ACTIVE": defaults.get("TracingMode", "Active") == "Active",
        "TRACE_RESERVOIR_PER_S": float(defaults.get("TraceReservoirPerSecond", TRACE_RESERVOIR_PER_S)),
        "TRACE_FIXED_RATE": float(defaults.get("TraceFixedRate", TRACE_FIXED_RATE)),
        "CHECK_LOG_SAMPLE_RATE": float(defaults.get("CheckLogSampleRate", CHECK_LOG_SAMPLE_RATE)),
        "LOG_RETENTION_DAYS": int(defaults.get("LogRetentionInDays", LOG_RETENTION_DAYS)),
        "METRICS_EVERY_HOUR": 12 if str(defaults.get("FeedErrorMetrics", "false")) == "true" else 6,
    })


def template_alarms(template: dict) -> int:
    return sum(1 for r in template.get("Resources", {}).values() if r.get("Type") == "AWS::CloudWatch::Alarm")


# The scale model's rows: feeds, with subscribers and topic-feed followers growing alike.
SCALE_ROWS = (10_000, 100_000, 1_000_000, 4_000_000)


def scale_table(deployed: dict, digest: dict | None, obs: dict, *, checks_per_hour: float, alarms: int) -> list[dict]:
    """Monthly USD by service group for each row: the core path scales with checks and
    mails, serving with followers and views (followers and subscribers in proportion to
    feeds: 1,000 followers and 10,000 subscribers per 10,000 feeds)."""
    global FEEDS, SUBSCRIBERS  # noqa: PLW0603 - the model's row size
    saved = FEEDS, SUBSCRIBERS
    rows = []
    try:
        for feeds in SCALE_ROWS:
            FEEDS, SUBSCRIBERS = feeds, feeds
            followers = FOLLOWERS_PER_TOPIC_FEED * feeds // 10_000
            base = monthly_cost(deployed, digest, checks_per_hour=checks_per_hour)
            checks = base["checks_per_month"]
            batches = deployed["cycles"][-1].get("batch_seconds") or [1.0]
            invocations = checks / (deployed["cycles"][-1]["feeds"] / len(batches))
            mails = SUBSCRIBERS * WEEKS_PER_MONTH
            extra = observability_lines(obs, invocations=invocations, checks=checks,
                                        other_invocations=HOURS_PER_MONTH * checks_per_hour + mails / 50,
                                        subscribers=SUBSCRIBERS, alarms=alarms, followers=followers)
            groups = {"core": sum(line["usd"] for line in base["lines"])}
            for name, usd, _ in extra:
                key = ("logs" if name.startswith("CloudWatch Logs") else "traces" if name.startswith("X-Ray")
                       else "metrics + alarms" if name.startswith("CloudWatch") else
                       "serving" if name.split()[0] in ("HTTP", "Lambda", "DynamoDB", "Data") else "S3, SSM, KMS")
                groups[key] = groups.get(key, 0) + usd
            rows.append({"feeds": feeds, "subscribers": SUBSCRIBERS, "followers": followers,
                         "checks": checks, "groups": {k: round(v, 2) for k, v in groups.items()},
                         "total_usd": round(sum(groups.values()), 2)})
    finally:
        FEEDS, SUBSCRIBERS = saved
    return rows


@contextlib.contextmanager
def _assuming(**values: object) -> Iterator[None]:
    """The model with some of its assumptions changed (module constants), restored after."""
    saved = {name: globals()[name] for name in values}
    globals().update(values)
    try:
        yield
    finally:
        globals().update(saved)


# Each knob as deployed (template parameter or code), the setting compared, and the
# assumptions that setting changes.
KNOBS: tuple[tuple[str, str, dict], ...] = (
    ("CheckLogSampleRate", "1 (every check logged)", {"CHECK_LOG_SAMPLE_RATE": 1.0}),
    ("CheckLogSampleRate", "0 (failed checks only)", {"CHECK_LOG_SAMPLE_RATE": 0.0}),
    ("LogLevel", "WARNING (no per-check line, no INFO lines)", {"CHECK_LOG_SAMPLE_RATE": 0.0, "FAILED_CHECK_SHARE": 0.0}),
    ("LogRetentionInDays", "365", {"LOG_RETENTION_DAYS": 365}),
    ("TracingMode", "Active (1/s then 5 %: Lambda's documented rate)", {"TRACING_ACTIVE": True}),
    ("TracingMode + TraceReservoirPerSecond / TraceFixedRate", "Active, 0 / 0.05",
     {"TRACING_ACTIVE": True, "TRACE_RESERVOIR_PER_S": 0, "TRACE_FIXED_RATE": 0.05}),
    ("ETag + 304 (web/topics.py)", "off: every poll downloads the feed", {"FEED_CHANGES_PER_DAY": 24}),
    ("validator on the topic (web/topics.py)", "off: a 304 reads the matches and renders, as a 200 does",
     {"TOPIC_VALIDATOR": False}),
    ("gzip (web/topics.py)", "off", {"GZIP_SHARE": 0.0}),
    ("rendered bodies kept (web/topics.py)", "off: every download reads the matches",
     {"API_RENDERS_PER_FEED_CHANGE": 0}),
    ("followers' apps poll", "hourly instead of every 4 h", {"FEED_POLLS_PER_FOLLOWER_DAY": 24}),
    ("FeedErrorMetrics", "true (six error families with data every hour)", {"METRICS_EVERY_HOUR": 12}),
)


def knob_table(deployed: dict, digest: dict | None, obs: dict, *, checks_per_hour: float, alarms: int) -> list[dict]:
    """The adaptive month's total with each knob moved, against the defaults."""
    base = monthly_cost(deployed, digest, checks_per_hour=checks_per_hour, observability=obs, alarms=alarms)
    rows = []
    for knob, setting, change in KNOBS:
        with _assuming(**change):
            moved = monthly_cost(deployed, digest, checks_per_hour=checks_per_hour, observability=obs, alarms=alarms)
        rows.append({"knob": knob, "setting": setting, "total_usd": moved["total_usd"],
                     "delta_usd": round(moved["total_usd"] - base["total_usd"], 2),
                     "after_free_usd": round(moved["total_usd"] - always_free_usd(moved["lines"])[0], 2)})
    return rows


# AWS's always-free monthly allowances (not the 12-month trial ones), in USD at the prices
# above, by the lines they apply to (matched by the line's name).
ALWAYS_FREE = (
    (("Lambda",), 1e6 * 0.20 / 1e6 + 400_000 * 0.0000133334, "Lambda: 1 M requests and 400,000 GB-s"),
    (("SQS", "DynamoDB + SQS"), 0.40, "SQS: 1 M requests"),
    (("EventBridge Scheduler",), 14.0, "Scheduler: 14 M invocations"),
    (("CloudWatch custom metrics",), 10 * 0.30, "CloudWatch: 10 custom metrics"),
    (("CloudWatch alarms",), 10 * 0.10, "10 alarms"),
    (("CloudWatch Logs",), 5 * 0.50, "5 GB of logs"),
    (("X-Ray",), 100_000 * 5.00 / 1e6, "X-Ray: 100,000 traces"),
    (("Data transfer out",), 100 * 0.09, "100 GB out to the internet"),
    (("KMS",), 20_000 * 0.03 / 10_000, "KMS: 20,000 requests"),
)


def always_free_usd(lines: list[dict]) -> tuple[float, list[str]]:
    """How much of a month's lines AWS's always-free allowances cover, and which apply."""
    covered, used = 0.0, []
    for prefixes, allowance, label in ALWAYS_FREE:
        usd = sum(line["usd"] for line in lines if line["item"].startswith(prefixes))
        if usd:
            covered += min(usd, allowance)
            used.append(label)
    return round(covered, 2), used
