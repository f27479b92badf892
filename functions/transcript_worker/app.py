"""SQS batch of transcript jobs: fetch, parse, archive and match each episode's transcript.

A transcript that fails (404, timeout, not a transcript) is a *successful* record: the
typed error is stored on the episode's transcript state, and a failure that may pass is
queued again, delayed (``earshot.transcripts.retrieval``). Only infrastructure failures
(the store or the archive refusing a write) are reported back to SQS for a retry; a job
that keeps failing so ends in the dead-letter queue.
"""

from collections import Counter
from typing import get_args

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from earshot import runtime
from earshot.observability import count, declare_metrics, logger, metric_family, observed
from earshot.transcripts.retrieval import TranscriptJob, TranscriptResult, process_transcript_jobs, retry_jobs

# A fixed set: each outcome, the bytes fetched and the matches found. A failure's kind is
# in its "transcript processed" log line and on the transcript's state, not a metric name.
METRICS = declare_metrics(metric_family("Transcripts_", get_args(TranscriptResult)), "TranscriptBytes",
                          "TranscriptMatches")


@observed
def handler(event: dict, context) -> dict:
    jobs = {}
    for record in event.get("Records", []):
        try:
            jobs[record["messageId"]] = TranscriptJob.model_validate_json(record["body"])
        except ValueError:
            logger.exception("malformed transcript job", extra={"message_id": record.get("messageId")})
    settings = runtime.settings()
    outcomes = dict(zip(jobs, process_transcript_jobs(
        list(jobs.values()), repo=runtime.store(), archive=runtime.transcript_archive(), settings=settings,
        client=runtime.http_client(), now=runtime.now()), strict=True))
    queue = runtime.transcript_queue()
    if queue is not None:
        for delay_s, bodies in retry_jobs(outcomes.values()).items():
            queue.send_messages(bodies, delay_s=delay_s)
    counts: Counter[str] = Counter()

    def record_handler(record: SQSRecord) -> str:
        if record.message_id not in outcomes:
            raise ValueError("malformed transcript job")
        outcome = outcomes[record.message_id]
        counts[f"Transcripts_{outcome.result}"] += 1
        counts["TranscriptBytes"] += outcome.size_bytes
        counts["TranscriptMatches"] += outcome.matches
        logger.info("transcript processed", extra=outcome.__dict__)
        return outcome.result

    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)
    for name, value in counts.items():
        count(name, value)
    return response
