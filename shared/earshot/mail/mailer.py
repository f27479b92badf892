"""The only module that talks to SES (SESv2).

Messages are sent as ``Content.Raw`` (built by :mod:`earshot.mail.mime`) so our own headers
(List-Id, List-Unsubscribe, List-Unsubscribe-Post) reach the recipient, through the
configuration set from ``template.yaml``, which publishes bounces and complaints to
EventBridge. Each mail carries SES message tags (topic, address hash) that come back in
those events, so the bounce handler knows which subscription a complaint was about.

Errors are typed (the ``MailError`` branch of :mod:`earshot.errors`), so callers decide
per recipient whether to retry: ``SendThrottled`` and ``SendingUnavailable`` retry the
batch, ``RecipientRejected`` is final for that recipient.

SES answers ``MessageRejected`` both for a message it refuses and for a sender it will
not send as ("Email address is not verified. The following identities failed the check
..." for an unverified From identity, or, in the sandbox, for an unverified recipient).
Only the first is the recipient's fault; a rejection whose message is about identities,
verification or the sandbox is :class:`SendingUnavailable`, so nobody's claim is burnt
on a misconfigured account. :meth:`Mailer.ensure_can_send` checks the identity and the
account before a digest run (SESv2 GetEmailIdentity, GetAccount).

The account-level suppression list: SES accepts a send to a suppressed address but does
not deliver it, and emits a permanent bounce (sub-type ``OnAccountSuppressionList``);
``functions/bounces`` marks the subscriber bounced, so it is never retried.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from email.utils import parseaddr
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError

from earshot.errors import MailError, RecipientRejected, SendingUnavailable, SendThrottled
from earshot.settings import Settings

logger = logging.getLogger(__name__)

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
# MessageRejected messages that are about the sender or the account, not the recipient.
_NOT_THE_RECIPIENT = re.compile(r"(?i)verif|identit|sandbox|sending paused|suspended")


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

    def ensure_can_send(self, identity: str) -> None:
        """Raise SendingUnavailable unless mail sent as ``identity`` would go out now."""
        ...

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

    def ensure_can_send(self, identity: str) -> None:
        """Raise :class:`SendingUnavailable` unless SES will send as ``identity`` now: the
        identity exists and is verified for sending (GetEmailIdentity) and the account's
        sending is enabled (GetAccount). A sandboxed account is logged, not refused: it
        can still mail verified recipients."""
        try:
            found = self.client.get_email_identity(EmailIdentity=identity)
            account = self.client.get_account()
        except ClientError as exc:
            raise _typed(exc) from exc
        if not found.get("VerifiedForSendingStatus"):
            raise SendingUnavailable(
                f"SES identity {identity!r} is not verified for sending "
                f"(verification status {found.get('VerificationStatus', 'unknown')})", code="IdentityNotVerified")
        if not account.get("SendingEnabled", False):
            raise SendingUnavailable(
                f"SES sending is disabled for this account (enforcement status "
                f"{account.get('EnforcementStatus', 'unknown')})", code="SendingPaused")
        if not covers(identity, parseaddr(self.sender)[1]):
            raise SendingUnavailable(f"the sender {self.sender!r} is not covered by the SES identity {identity!r}",
                                     code="SenderNotCovered")
        if not account.get("ProductionAccessEnabled", True):
            logger.warning("SES account is in the sandbox: only verified recipients get mail")

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


def covers(identity: str, address: str) -> bool:
    """Whether SES identity ``identity`` lets us send from ``address``: the address itself,
    its domain, or a parent domain of it (SES lets a verified domain send from subdomains).

    >>> covers("example.org", "a@example.org"), covers("example.org", "a@news.example.org")
    (True, True)
    >>> covers("a@example.org", "b@example.org"), covers("example.org", "a@example.org.evil")
    (False, False)
    """
    identity, address = identity.lower(), address.lower()
    if "@" in identity:
        return identity == address
    domain = address.rpartition("@")[2]
    return domain == identity or domain.endswith("." + identity)


def _typed(exc: ClientError) -> MailError:
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", "") or code
    kind = _ERRORS.get(code, MailError)
    if kind is RecipientRejected and _NOT_THE_RECIPIENT.search(message):
        kind = SendingUnavailable
    return kind(f"SES {code}: {message}", code=code)


@functools.cache
def ses_client(region: str) -> Any:
    """The process's SESv2 client, built on first use (after moto starts, in tests)."""
    return boto3.client("sesv2", region_name=region)


def default_mailer(settings: Settings, *, pacer: Pacer | None = None) -> Mailer:
    return Mailer(ses_client(settings.region), configuration_set=settings.configuration_set,
                  sender=settings.sender, pacer=pacer)
