"""The only module that talks to SES (SESv2).

Messages are sent as ``Content.Raw`` (built by :mod:`earshot.mail.mime`) so our own headers
(List-Id, List-Unsubscribe, List-Unsubscribe-Post) reach the recipient, through the
configuration set from ``template.yaml``, which publishes bounces and complaints to
EventBridge. Each mail carries SES message tags (topic, address hash) that come back in
those events, so the bounce handler knows which subscription a complaint was about.

Errors are typed, so callers decide per recipient whether to retry:

    MailError                      base (an SES call failed)
    ├── SendThrottled              retryable: rate or daily quota exceeded; try later
    ├── RecipientRejected          permanent for this recipient: SES refused the message
    └── SendingUnavailable         whole batch: sending paused, account suspended,
                                   identity or configuration set missing

The account-level suppression list: SES accepts a send to a suppressed address but does
not deliver it, and emits a permanent bounce (sub-type ``OnAccountSuppressionList``);
``functions/bounces`` marks the subscriber bounced, so it is never retried.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError

from earshot.errors import MailError, RecipientRejected, SendingUnavailable, SendThrottled
from earshot.settings import Settings


# SESv2 error codes -> our classes (https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html)
_ERRORS: dict[str, type[MailError]] = {
    "TooManyRequestsException": SendThrottled,
    "LimitExceededException": SendThrottled,
    "Throttling": SendThrottled,
    "ThrottlingException": SendThrottled,
    "MessageRejected": RecipientRejected,
    "BadRequestException": RecipientRejected,
    "AccountSuspendedException": SendingUnavailable,
    "SendingPausedException": SendingUnavailable,
    "MailFromDomainNotVerifiedException": SendingUnavailable,
    "NotFoundException": SendingUnavailable,
}


class Pacer:
    """Spaces calls to at most ``rate_per_s`` per second (SES's MaxSendRate counts
    recipients per second; each of our messages has one). Thread-safe."""

    def __init__(self, rate_per_s: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval_s = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self._next_at = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until the next send may go; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_at)
            self._next_at = start + self.interval_s
        waited = start - now
        if waited > 0:
            self._sleep(waited)
        return waited


class MailerPort(Protocol):
    """What the domain needs of a mailer: SES deployed; an outbox of ``.eml`` files
    (and optionally SMTP) locally (``earshot_local.outbox``). ``pacer`` spaces sends."""

    pacer: Pacer | None

    def max_send_rate(self) -> float: ...

    def send_raw(self, raw: bytes, *, to: str, tags: dict[str, str] | None = None) -> str: ...


class Mailer:
    """Sends raw messages through SESv2 with one configuration set, paced."""

    def __init__(self, client: Any, *, configuration_set: str, sender: str, pacer: Pacer | None = None) -> None:
        self.client = client
        self.configuration_set = configuration_set
        self.sender = sender
        self.pacer = pacer

    def max_send_rate(self) -> float:
        """The account's MaxSendRate (messages per second) from GetAccount."""
        try:
            return float(self.client.get_account()["SendQuota"]["MaxSendRate"])
        except ClientError as exc:
            raise _typed(exc) from exc

    def send_raw(self, raw: bytes, *, to: str, tags: dict[str, str] | None = None) -> str:
        """Send one message to one recipient; returns SES's message id."""
        if self.pacer:
            self.pacer.wait()
        try:
            resp = self.client.send_email(
                FromEmailAddress=self.sender,
                # Explicit recipients: SES then ignores addresses in the raw headers, so a
                # header could never add one.
                Destination={"ToAddresses": [to]},
                Content={"Raw": {"Data": raw}},
                ConfigurationSetName=self.configuration_set,
                EmailTags=[{"Name": k, "Value": v} for k, v in (tags or {}).items()],
            )
        except ClientError as exc:
            raise _typed(exc) from exc
        return str(resp["MessageId"])


def _typed(exc: ClientError) -> MailError:
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", "") or code
    return _ERRORS.get(code, MailError)(f"SES {code}: {message}", code=code)


@functools.cache
def ses_client(region: str) -> Any:
    """The process's SESv2 client, built on first use (after moto starts, in tests)."""
    return boto3.client("sesv2", region_name=region)


def default_mailer(settings: Settings, *, pacer: Pacer | None = None) -> Mailer:
    return Mailer(ses_client(settings.region), configuration_set=settings.configuration_set,
                  sender=settings.sender, pacer=pacer)
