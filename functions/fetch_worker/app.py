"""SQS batch of feed checks: fetch, parse and store them concurrently.

Fetching starts for the whole batch at once (threads, a few per host); Powertools'
batch processor then collects each record's outcome, so only records that failed for
infrastructure reasons are reported back to SQS for a retry. A feed that fails (404,
timeout, not a feed) is a *successful* record: the error is stored on the feed.

Deadline: a check may take up to ``total_timeout_s`` (30 s) and a few wait for a busy
host, so a batch can outlast the function's timeout. No check *starts* once less than
``total_timeout_s`` + START_MARGIN_S remains (``context.get_remaining_time_in_millis``);
those records are reported as batch item failures, untouched, and SQS redelivers them
after the visibility timeout. They are not errors: the invocation still succeeds.

Politeness: each host's requests stay within the slots leased for it in the table,
shared by every concurrent worker (``earshot.ingest.politeness``). A check whose host
stays busy (its slots held by other workers, or a Retry-After in force) for longer than
``host_wait_s`` is not waited on: it goes back on the fetch queue as a new message with
a delay (so its receive count, and the dead-letter queue, are not touched) and its record
succeeds. A check is never dropped.
"""

import math
import threading
from collections import Counter
from typing import get_args

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from earshot import runtime
from earshot.ingest.politeness import HostBusy, SlotStats
from earshot.ingest.refresh import FeedCheck, NotStarted, refresh_feeds
from earshot.models import RefreshResult
from earshot.observability import (
    count,
    declare_metrics,
    feed_error_family,
    feed_error_kinds,
    is_check_logged,
    logger,
    metric_family,
    observed,
)
from earshot.topics.matching import match_new_episodes
from earshot.transcripts.retrieval import jobs_for

# Beyond one check's total deadline: time to parse, store and answer after the last fetch.
START_MARGIN_S = 10.0
# A check handed back for a busy host comes round again after at least this long, at
# most SQS's longest message delay.
MIN_REQUEUE_DELAY_S = 30
MAX_REQUEUE_DELAY_S = 900

# Per batch: checks by result, failed checks by error family (a fixed set: an HTTP status
# is counted as its family, see earshot.observability), new episodes, checks handed back.
METRICS = declare_metrics(metric_family("Feeds_", get_args(RefreshResult)),
                          metric_family("FeedError_", feed_error_kinds()), "NewEpisodes", "FeedsNotStarted",
                          "FeedsDeferred", "HostSlotCallsPerCheck", "TranscriptJobsQueued")


def _deadline_gate(context, total_timeout_s: float):
    """``should_start`` for refresh_feeds: enough time left for one more whole check?"""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:  # no Lambda context (a direct call): no deadline to respect
        return None
    needed_ms = (total_timeout_s + START_MARGIN_S) * 1000
    return lambda: remaining() > needed_ms


@observed
def handler(event: dict, context) -> dict:
    repo = runtime.store()
    checks = {}
    for record in event.get("Records", []):
        try:
            checks[record["messageId"]] = FeedCheck.model_validate_json(record["body"])
        except ValueError:
            logger.exception("malformed feed check message", extra={"message_id": record.get("messageId")})
    settings = runtime.settings()
    # New and changed episodes that list a transcript, by feed: queued for the transcript
    # worker once their feed's check is stored (so the job finds the episode), never
    # awaited here (a feed refresh never waits for a transcript).
    transcript_queue = runtime.transcript_queue()
    transcript_jobs: dict[str, list[dict]] = {}
    jobs_lock = threading.Lock()

    def on_new_episodes(feed, new, changed):  # once per batch of a feed's episodes
        episodes = new + changed
        if transcript_queue is not None and (jobs := jobs_for(feed.feed_id, episodes)):
            with jobs_lock:
                transcript_jobs.setdefault(feed.feed_id, []).extend(jobs)
        return match_new_episodes(repo, feed, episodes, changed_ids=[e.id for e in changed])

    slot_stats = SlotStats()
    started = refresh_feeds(
        list(checks.values()), repo=repo, settings=settings, client=runtime.http_client(),
        on_new_episodes=on_new_episodes,
        should_start=_deadline_gate(context, settings.total_timeout_s),
        defer_after_s=settings.host_wait_s, stats=slot_stats,
    )
    futures = dict(zip(checks, started, strict=True))
    counts: Counter[str] = Counter()
    not_started: list[str] = []
    requeue: dict[int, list[dict]] = {}

    def record_handler(record: SQSRecord) -> str:
        if record.message_id not in futures:
            raise ValueError("malformed feed check message")
        try:
            outcome = futures[record.message_id].result()
        except NotStarted:
            # Not a failure of this record: handed back below, so the processor's "whole
            # batch failed" error (an invocation error, alarmed) stays for real failures.
            not_started.append(record.message_id)
            counts["FeedsNotStarted"] += 1
            return "not_started"
        except HostBusy as busy:
            # Queued again below, before this record is reported done: never dropped.
            delay_s = min(MAX_REQUEUE_DELAY_S, max(MIN_REQUEUE_DELAY_S, math.ceil(busy.retry_after_s)))
            requeue.setdefault(delay_s, []).append(checks[record.message_id].model_dump(mode="json", exclude_none=True))
            counts["FeedsDeferred"] += 1
            return "deferred"
        with jobs_lock:
            jobs = transcript_jobs.pop(outcome.feed_id, None) if outcome.result == "parsed" else None
        if jobs and transcript_queue is not None:
            counts["TranscriptJobsQueued"] += transcript_queue.send_messages(jobs)
        counts[f"Feeds_{outcome.result}"] += 1
        counts["NewEpisodes"] += outcome.new_episodes
        if outcome.error_kind and settings.feed_error_metrics:
            counts[f"FeedError_{feed_error_family(outcome.error_kind)}"] += 1
        if is_check_logged(outcome.feed_id, outcome.result, settings.check_log_sample_rate):
            logger.info("feed refreshed", extra=outcome.model_dump(mode="json", exclude={"new_episode_ids"}))
        return outcome.result

    # A processor per invocation: its state is per batch (and invocations may overlap locally).
    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)
    for delay_s, bodies in requeue.items():  # raises (every record retried) if SQS refuses
        runtime.fetch_queue().send_messages(bodies, delay_s=delay_s)
    if requeue:
        logger.info("busy hosts: checks queued again with a delay",
                    extra={"deferred": sum(map(len, requeue.values()))})
    count("HostSlotCallsPerCheck", slot_stats.calls_per_check)
    for name, value in counts.items():  # one value per metric per batch
        count(name, value)
    if not_started:
        logger.warning("deadline near: checks handed back to the queue", extra={"not_started": len(not_started)})
        response["batchItemFailures"] += [{"itemIdentifier": message_id} for message_id in not_started]
    return response
