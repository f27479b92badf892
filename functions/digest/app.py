"""Scheduled weekly (Monday 08:00, template.yaml DigestSchedule): render each topic's
digest once and queue its confirmed subscribers in batches for digest_sender.

First it checks that SES can send as the sending identity; if it cannot (identity not
verified, sending paused) the invocation fails with SendingUnavailable before anything is
queued: the DigestErrorsAlarm pages, and a re-run with ``{"week": ...}`` after the fix
mails the same week.
"""

from aws_lambda_powertools.utilities.parser import event_parser

from earshot import runtime
from earshot.mail.delivery import DigestRequest, plan_week
from earshot.observability import count, declare_metrics, logger, observed

METRICS = declare_metrics("DigestTopicsQueued", "DigestRecipientsQueued")


@observed
@event_parser(model=DigestRequest)
def handler(request: DigestRequest, context) -> dict:
    settings = runtime.settings()
    result = plan_week(runtime.store(), runtime.digest_queue(), settings,
                       now=runtime.now(), week=request.week, mailer=runtime.mailer())
    count("DigestTopicsQueued", len(result.topics_queued))
    count("DigestRecipientsQueued", result.recipients)
    logger.info("digests planned", extra=vars(result))
    return vars(result)
