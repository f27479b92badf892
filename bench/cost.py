"""Monthly AWS cost from the measured request counts (the cost table).

The counts are the deployed path's (``deployed_counts.py``: the dispatcher and
fetch_worker handlers on the moto test double, on a sample of the cycle workload); the
adaptive schedule uses the check intervals Earshot chose for the whole workload.

Prices: on-demand list prices for us-east-1 (N. Virginia) as published by AWS in 2025,
after the November 2024 DynamoDB on-demand reduction; free tiers are NOT subtracted.
The benchmark has no network: re-check them before quoting.
"""

from __future__ import annotations

import math

PRICES = {
    "lambda_gb_s_arm64": 0.0000133334,  # USD per GB-second, first 7.5 billion GB-s
    "lambda_request": 0.20 / 1e6,
    "ddb_wru": 0.625 / 1e6,  # on-demand write request unit (1 KB)
    "ddb_rru": 0.125 / 1e6,  # on-demand read request unit (4 KB strongly / 8 KB eventually consistent)
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk
    "ses_message": 0.10 / 1000,  # outbound email
    "scheduler_invocation": 1.00 / 1e6,  # EventBridge Scheduler (14 M/month free, not subtracted)
}
PRICES_AS_OF = "AWS public on-demand prices for us-east-1 as listed in 2025 (DynamoDB after the Nov 2024 cut)"

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
S3_PUT = 0.005 / 1000
S3_GB_MONTH = 0.023


def _wru(size_bytes: float) -> int:
    return max(1, math.ceil(size_bytes / 1024))


def monthly_cost(deployed: dict | None, digest: dict | None = None, *, interval_s: list[int] | None = None,
                 checks_per_hour: float = 1.0) -> dict:
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
    # `status` (usually to the same value). Counted as one index write to stay on the
    # safe side: whether a same-value rewrite costs a write is not modelled.
    state_writes = calls.get("UpdateItem", 0) / feeds
    due_projection = min(feed_item, 450)
    wru_per_state_write = _wru(feed_item) + 2 * _wru(due_projection) + _wru(feed_item)
    wru_per_check = state_writes * wru_per_state_write
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
         f"table 1 + `due` key move 2 + `type` 1)"),
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
    stored_gb = transcripts * TRANSCRIPT_RETENTION_MONTHS * TRANSCRIPT_ARCHIVE_BYTES / 1e9
    lines += [
        ("Transcripts: fetch, parse, archive", transcripts * (
            TRANSCRIPT_GB_S_PER_1000 / 1000 * PRICES["lambda_gb_s_arm64"] + PRICES["lambda_request"] / 10
            + 0.3 * PRICES["sqs_request"] + 3 * PRICES["ddb_rru"] + PRICES["ddb_wru"] + S3_PUT),
         f"{transcripts:,.0f} transcripts a month ({TRANSCRIPT_SHARE:.1%} of new episodes list one, as in the "
         f"corpus); {TRANSCRIPT_GB_S_PER_1000 / 1000:.2f} GB-s, 1 S3 PUT, 3 reads + 1 write each"),
        ("Transcripts: S3 storage", stored_gb * S3_GB_MONTH,
         f"{stored_gb:.2f} GB once {TRANSCRIPT_RETENTION_MONTHS} months are kept "
         f"({TRANSCRIPT_ARCHIVE_BYTES / 1000:.0f} KB gzipped cues each)"),
    ]
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
            result["adaptive"] = monthly_cost(deployed, digest, interval_s=intervals, checks_per_hour=rate)
            result["adaptive"]["checks_per_hour"] = round(rate, 3)
    return result
