"""SQS batch of digest recipients: mail each one once per (topic, week).

One message = one topic's slice of recipients (see earshot.mail.delivery). A message whose
send was throttled, or that SES would not send at all (SendingUnavailable: identity not
verified, sending paused), is reported as a batch item failure and comes back later;
recipients it already mailed are skipped then, thanks to the per-recipient send claims.
SendingUnavailable also counts the DigestSendingUnavailable metric, which has an alarm.
Every recipient's outcome is counted (``Digest_<outcome>``: sent, rejected,
outcome_unknown, skipped_*), also for a batch that fails half-way.
"""

from dataclasses import fields

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from earshot import runtime
from earshot.errors import SendingUnavailable
from earshot.mail.delivery import DigestBatch, SendResult, send_batch
from earshot.observability import count, declare_metrics, logger, metric_family, observed

processor = BatchProcessor(event_type=EventType.SQS)
METRICS = declare_metrics("DigestSendingUnavailable", metric_family("Digest_", (f.name for f in fields(SendResult))))


def record_handler(record: SQSRecord) -> dict:
    batch = DigestBatch.model_validate_json(record.body)
    result = SendResult()
    try:
        send_batch(runtime.store(), runtime.paced_mailer(), runtime.settings(), batch, now=runtime.now(),
                   result=result)
    except SendingUnavailable as exc:
        count("DigestSendingUnavailable")
        logger.error("SES cannot send; the batch will be retried", extra={"topic": batch.topic, "week": batch.week,
                                                                         "error": str(exc)})
        raise
    finally:
        # Counted as done, even when the batch fails half-way: the retry skips those.
        for name, value in vars(result).items():
            count(f"Digest_{name}", value)
    logger.info("digest batch sent", extra={"topic": batch.topic, "week": batch.week, **vars(result)})
    return vars(result)


@observed
def handler(event: dict, context) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
