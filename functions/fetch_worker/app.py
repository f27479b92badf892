"""SQS batch of feed checks: fetch, parse and store them concurrently.

Fetching starts for the whole batch at once (threads, a few per host); Powertools'
batch processor then collects each record's outcome, so only records that failed for
infrastructure reasons are reported back to SQS for a retry. A feed that fails (404,
timeout, not a feed) is a *successful* record: the error is stored on the feed.
"""

from collections import Counter

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from earshot import runtime
from earshot.topics.matching import match_new_episodes
from earshot.ingest.refresh import FeedCheck, refresh_feeds

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context) -> dict:
    repo = runtime.store()
    checks, futures = {}, {}
    for record in event.get("Records", []):
        try:
            checks[record["messageId"]] = FeedCheck.model_validate_json(record["body"])
        except ValueError:
            logger.exception("malformed feed check message", extra={"message_id": record.get("messageId")})
    started = refresh_feeds(
        list(checks.values()), repo=repo, settings=runtime.settings(), client=runtime.http_client(),
        on_new_episodes=lambda feed, episodes: match_new_episodes(repo, feed, episodes),
    )
    futures = dict(zip(checks, started))
    counts: Counter[str] = Counter()

    def record_handler(record: SQSRecord) -> str:
        if record.message_id not in futures:
            raise ValueError("malformed feed check message")
        outcome = futures[record.message_id].result()
        counts[f"Feeds_{outcome.result}"] += 1
        counts["NewEpisodes"] += outcome.new_episodes
        if outcome.error_kind:
            counts[f"FeedError_{outcome.error_kind}"] += 1
        logger.info("feed refreshed", extra=outcome.model_dump(mode="json", exclude={"new_episode_ids"}))
        return outcome.result

    # A processor per invocation: its state is per batch (and invocations may overlap locally).
    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)
    for name, value in counts.items():  # one value per metric per batch
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return response
