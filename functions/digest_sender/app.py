"""SQS batch of digest recipients: mail each one once per (topic, week).

One message = one topic's slice of recipients (see earshot.mail.delivery). A message whose
send was throttled is reported as a batch item failure and comes back later; recipients
it already mailed are skipped then, thanks to the per-recipient send claims.
"""

import copy
import functools
from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from earshot import runtime
from earshot.mail.delivery import DigestBatch, send_batch
from earshot.mail.mailer import MailerPort, Pacer

# Keep in step with DigestSenderFunction's ReservedConcurrentExecutions in template.yaml:
# each concurrent sender takes an equal share of the account's SES send rate.
SENDER_CONCURRENCY = 2

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@functools.cache
def mailer() -> MailerPort:
    """Paced mailer, built once per container (GetAccount is read once per cold start)."""
    paced = copy.copy(runtime.mailer())  # the shared mailer stays unpaced
    paced.pacer = Pacer(paced.max_send_rate() / SENDER_CONCURRENCY)
    return paced


def record_handler(record: SQSRecord) -> dict:
    batch = DigestBatch.model_validate_json(record.body)
    result = send_batch(runtime.store(), mailer(), runtime.settings(), batch, now=datetime.now(UTC))
    for name, value in vars(result).items():
        metrics.add_metric(name=f"Digest_{name}", unit=MetricUnit.Count, value=value)
    logger.info("digest batch sent", extra={"topic": batch.topic, "week": batch.week, **vars(result)})
    return vars(result)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
