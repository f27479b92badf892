"""Scheduled hourly: queue every feed whose next check is due."""

from aws_lambda_powertools.utilities.parser import event_parser

from earshot import runtime
from earshot.ingest.dispatch import DispatchRequest, dispatch_due_feeds
from earshot.observability import count, declare_metrics, logger, observed

METRICS = declare_metrics("FeedsQueued")


@observed
@event_parser(model=DispatchRequest)
def handler(request: DispatchRequest, context) -> dict:
    result = dispatch_due_feeds(runtime.store(), runtime.fetch_queue(), force=request.force)
    count("FeedsQueued", result.queued)
    logger.info("dispatched due feeds", extra=result.model_dump())
    return result.model_dump()
