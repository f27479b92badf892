"""The only module that talks to SES (SESv2).

Messages are sent as ``Content.Raw`` (built by :mod:`earshot.mail.mime`) so our own headers
(List-Id, List-Unsubscribe, List-Unsubscribe-Post) reach the recipient, through the
configuration set from ``template.yaml``, which publishes bounces and complaints to
EventBridge. Each mail carries SES message tags (topic, address hash) that come back in
those events, so the bounce handler knows which subscription a complaint was about.

Errors are typed (the ``MailError`` branch of :mod:`earshot.errors`), so callers decide
per recipient whether to retry: ``SendThrottled``, ``MailUnreachable`` and
``SendingUnavailable`` retry the batch, ``RecipientRejected`` is final for that recipient.

A mail is either sent or not, and after a lost answer nobody can know which. So the send
call is never retried by the SDK (its client has one attempt: botocore's default retries
would repeat a send whose answer timed out, and mail the person twice), and
:meth:`Mailer.send_raw` sorts every failure by what SES can have done:

- SES answered with an error (4xx, or 503 / throttling): it did not send. Typed as above;
  a throttle is retried here, twice, after a short pause.
- No connection was made (DNS, refused, connect timeout): nothing left this process.
  ``MailUnreachable``, retried here like a throttle.
- Anything after the request may have left (read timeout, connection cut, TLS error
  mid-stream, a 5xx other than 503): ``SendOutcomeUnknown``. Never retried; the caller
  records it.

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
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ProxyConnectionError,
)

from earshot.errors import (
    MailError,
    MailUnreachable,
    RecipientRejected,
    SendingUnavailable,
    SendOutcomeUnknown,
    SendThrottled,
)
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
# Server errors that still mean "not processed": the front end refused the request.
_REFUSED_5XX = {"ServiceUnavailable", "Throttling", "ThrottlingException", "TooManyRequestsException"}
# Failures before the request left this process: certainly nothing was sent.
_NOT_CONNECTED = (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)
# Pauses before the send is tried again after a failure that certainly sent nothing.
RETRY_DELAYS_S = (0.2, 1.0)


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

    def send_raw(self, raw: bytes, *, to: str, tags: dict[str, str] | None = None) -> str:
        """Send one message; returns its message id. Raises a ``MailError``: every one
        but ``SendOutcomeUnknown`` means nothing was sent. Callers treat any other
        exception as an unknown outcome too (never retried into a duplicate)."""
        ...


class Mailer:
    """Sends raw messages through SESv2 with one configuration set, paced.

    ``client`` answers the read calls (account, identity), with the SDK's retries;
    ``send_client`` (default: ``client``) sends, and should make one attempt per call
    (:func:`ses_send_client`): a retry after a lost answer would send a second mail.
    """

    def __init__(self, client: Any, *, configuration_set: str, sender: str, pacer: Pacer | None = None,
                 send_client: Any | None = None, retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.send_client = send_client or client
        self.configuration_set = configuration_set
        self.sender = sender
        self.pacer = pacer
        self.retry_delays_s = retry_delays_s
        self._sleep = sleep

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
        """Send one message to one recipient; returns SES's message id.

        A throttle or a failed connection (both certainly sent nothing) is tried again
        after each of ``retry_delays_s``; then it is raised. Nothing else is retried."""
        for delay in (*self.retry_delays_s, None):
            try:
                return self._send_once(raw, to=to, tags=tags)
            except (SendThrottled, MailUnreachable) as exc:
                if delay is None:
                    raise
                logger.info("SES send not taken; trying again", extra={"error": str(exc), "delay_s": delay})
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _send_once(self, raw: bytes, *, to: str, tags: dict[str, str] | None) -> str:
        if self.pacer:
            self.pacer.wait()
        try:
            resp = self.send_client.send_email(
                FromEmailAddress=self.sender,
                # Explicit recipients: SES then ignores addresses in the raw headers, so a
                # header could never add one.
                Destination={"ToAddresses": [to]},
                Content={"Raw": {"Data": raw}},
                ConfigurationSetName=self.configuration_set,
                EmailTags=[{"Name": k, "Value": v} for k, v in (tags or {}).items()],
            )
        except ClientError as exc:
            raise _typed(exc, sending=True) from exc
        except _NOT_CONNECTED as exc:
            raise MailUnreachable(f"SES unreachable: {exc}", code=type(exc).__name__) from exc
        except BotoCoreError as exc:
            # Read timeout, connection closed or reset, TLS failure: the request may have
            # been taken. Whatever happened, it must not be sent again.
            raise SendOutcomeUnknown(f"no answer from SES: {exc}", code=type(exc).__name__) from exc
        return str(resp.get("MessageId", ""))


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


def _typed(exc: ClientError, *, sending: bool = False) -> MailError:
    """The MailError for an error answer from SES. For a send, a server error other than
    "unavailable" is an unknown outcome: the request may have been processed."""
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", "") or code
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if sending and status >= 500 and code not in _REFUSED_5XX:
        return SendOutcomeUnknown(f"SES {code} ({status}): {message}", code=code)
    kind = _ERRORS.get(code, SendThrottled if code in _REFUSED_5XX else MailError)
    if kind is RecipientRejected and _NOT_THE_RECIPIENT.search(message):
        kind = SendingUnavailable
    return kind(f"SES {code}: {message}", code=code)


@functools.cache
def ses_client(region: str) -> Any:
    """The process's SESv2 client for reads, built on first use (after moto starts, in tests)."""
    return boto3.client("sesv2", region_name=region)


# One attempt per call: the SDK must never repeat a send (see the module docstring). A
# connect that hangs fails fast (and certainly sent nothing); an answer may take longer.
SEND_CLIENT_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                            read_timeout=30)


@functools.cache
def ses_send_client(region: str) -> Any:
    """The process's SESv2 client for SendEmail: no SDK retries."""
    return boto3.client("sesv2", region_name=region, config=SEND_CLIENT_CONFIG)


def default_mailer(settings: Settings, *, pacer: Pacer | None = None) -> Mailer:
    return Mailer(ses_client(settings.region), send_client=ses_send_client(settings.region),
                  configuration_set=settings.configuration_set, sender=settings.sender, pacer=pacer)
