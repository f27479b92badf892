"""SES bounce and complaint events (EventBridge, from the configuration set): stop
mailing the address. Permanent bounces only; a bounce or a complaint stops every topic of
the address."""

from typing import get_args

from aws_lambda_powertools.utilities.parser import event_parser

from earshot import runtime
from earshot.mail.delivery import SesEvent, SesEventDetail, apply_ses_event
from earshot.observability import count, declare_metrics, logger, metric_family, observed

METRICS = declare_metrics(metric_family("Ses", get_args(SesEventDetail.model_fields["eventType"].annotation)))


@observed
@event_parser(model=SesEvent)
def handler(event: SesEvent, context) -> dict:
    changed = apply_ses_event(runtime.store(), event, now=runtime.now())
    count(f"Ses{event.detail.eventType}")
    logger.info("ses feedback applied", extra={"event_type": event.detail.eventType,
                                               "message_id": event.detail.mail.messageId,
                                               "topics_changed": changed})
    return {"event_type": event.detail.eventType, "topics_changed": changed}
