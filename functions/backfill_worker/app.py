"""SQS messages of a topic's backfill, one segment of the archive each: read it page by
page, write its matches, record its progress (``earshot.topics.backfill``).

One message a batch: a segment is minutes of work. Deadline: no page *starts* once less
than ``START_MARGIN_S`` remains; the segment's cursor is recorded after every page, so
the worker queues the same task again (a continuation, not a failure) and returns. A
segment that raises is reported as a batch item failure and SQS redelivers it: it
resumes at its last recorded page. The last segment to finish drops the topic's stale
matches and marks the run finished.
"""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from earshot import runtime
from earshot.observability import count, declare_metrics, logger, metric_family, observed
from earshot.topics.backfill import SEGMENT_STATES, SegmentTask, run_segment

# Time a page may take (a Scan page, its matching, a batch write and a progress update).
START_MARGIN_S = 30.0
METRICS = declare_metrics(metric_family("BackfillSegment_", SEGMENT_STATES), "BackfillEpisodesScanned")


def _continue_while_time(context) -> object:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:  # no Lambda context (a direct call): no deadline to respect
        return None
    return lambda: remaining() > START_MARGIN_S * 1000


@observed
def handler(event: dict, context) -> dict:
    should_continue = _continue_while_time(context)

    def record_handler(record: SQSRecord) -> str:
        task = SegmentTask.model_validate_json(record.body)
        outcome = run_segment(runtime.store(), task, now=runtime.now, page_size=runtime.settings().backfill_page_size,
                              should_continue=should_continue,  # type: ignore[arg-type]
                              archive=runtime.transcript_archive())
        if outcome.state == "paused":
            runtime.backfill_queue().send_messages([task.model_dump()])
        count(f"BackfillSegment_{outcome.state}")
        count("BackfillEpisodesScanned", outcome.scanned)
        logger.info("backfill segment", extra={"topic": task.slug, "run_id": task.run_id, "segment": task.segment,
                                               "state": outcome.state, "pages": outcome.pages,
                                               "scanned": outcome.scanned, "matched": outcome.matched,
                                               "finished_run": outcome.finished_run})
        return outcome.state

    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
