"""SQS batch of subscribe requests (queued by the API): make each subscription pending and
mail its confirmation link, after the API has answered.

The API answers every subscribe request the same way and does the same work for each, so
neither its answer nor its timing tells whether an address is subscribed, or whether SES
would take the mail; everything that depends on the address happens here. A request
whose mail SES certainly did not send (throttled, unreachable, sending unavailable) is
reported as a batch item failure and comes back; it counts once against the address's
cap however often it does. Each request's outcome is counted (``Confirmation_<outcome>``).
"""

from typing import get_args

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from earshot import runtime
from earshot.errors import SendingUnavailable
from earshot.mail.subscriptions import ConfirmationRequest, Outcome, handle_subscription_request
from earshot.observability import count, declare_metrics, logger, metric_family, observed

processor = BatchProcessor(event_type=EventType.SQS)
METRICS = declare_metrics("ConfirmationSendingUnavailable", metric_family("Confirmation_", get_args(Outcome)))


def record_handler(record: SQSRecord) -> str:
    request = ConfirmationRequest.model_validate_json(record.body)
    try:
        outcome = handle_subscription_request(runtime.store(), runtime.mailer(), runtime.settings(), request,
                                              now=runtime.now())
    except SendingUnavailable as exc:
        count("ConfirmationSendingUnavailable")
        logger.error("SES cannot send; the confirmation will be retried", extra={"topic": request.topic,
                                                                                "error": str(exc)})
        raise
    count(f"Confirmation_{outcome}")
    logger.info("subscribe request handled", extra={"topic": request.topic, "outcome": outcome})
    return outcome


@observed
def handler(event: dict, context) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
