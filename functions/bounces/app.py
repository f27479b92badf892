"""SES bounce and complaint events (EventBridge, from the configuration set): stop
mailing the address. Permanent bounces only; a bounce or a complaint stops every topic of
the address."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser

from earshot import runtime
from earshot.mail.delivery import SesEvent, apply_ses_event
from earshot.observability import logger, metrics, observed


@observed
@event_parser(model=SesEvent)
def handler(event: SesEvent, context) -> dict:
    changed = apply_ses_event(runtime.store(), event, now=runtime.now())
    metrics.add_metric(name=f"Ses{event.detail.eventType}", unit=MetricUnit.Count, value=1)
    logger.info("ses feedback applied", extra={"event_type": event.detail.eventType,
                                               "message_id": event.detail.mail.messageId,
                                               "topics_changed": changed})
    return {"event_type": event.detail.eventType, "topics_changed": changed}
