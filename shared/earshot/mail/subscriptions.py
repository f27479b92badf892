"""Subscriptions to a topic's weekly digest: double opt-in, unsubscribe, bounces.

State machine (one subscription = one address + one topic)::

    (none) ──subscribe──▶ pending ──confirm──▶ confirmed ──unsubscribe──▶ unsubscribed
                            │  ▲                   │                          │
                            │  └────subscribe──────┼──────────────────────────┘
                            └──bounce/complaint────┴──▶ bounced / complained (final)

A hard bounce or a complaint stops every subscription of the address, and no subscribe
request mails that address again (anyone can send one: it is not the owner's consent).

Every change appends to ``history`` with its time and source, keeping the latest
:data:`MAX_HISTORY` changes; the subscribe request and the confirmation (the consent
proper) are kept with time, source, IP and user agent. A repeated request for a pending
address changes no status, so it adds no history: no request can grow an item.

Subscribing is two steps, so that the answer is the same, and takes the same work, for
every address:

1. :func:`request_subscription` (the API): checks the address's syntax and the topic, and
   queues a :class:`ConfirmationRequest`. Nothing about the address is read or written,
   so neither the answer nor its timing can tell whether the address is new, pending,
   confirmed, unsubscribed, bounced or at its cap, or whether SES would take the mail.
2. :func:`handle_subscription_request` (the confirmation mailer, after the answer):
   makes the subscription pending and mails a confirmation link, unless the address is
   confirmed already, has stopped mail (bounce, complaint) or is at its cap.

Privacy and abuse rules this module keeps:

- At most ``settings.max_confirmations_per_24h`` confirmation mails per address (across
  topics) in any 24 hours, a rolling window; so the form cannot flood an inbox, and a
  burst across midnight counts as one window.
- Nothing is confirmed by a GET: the confirmation link opens a page whose button POSTs.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, Field

from earshot import templating
from earshot.bounds import MAX_EMAIL_CHARS, MAX_EMAIL_LOCAL_PART_CHARS, MAX_HISTORY
from earshot.errors import InvalidEmail, MailError, NotFound, RecipientRejected, SendOutcomeUnknown, TokenError
from earshot.mail import mime, tokens
from earshot.mail.mailer import MailerPort
from earshot.models import ConsentEvent, StatusChange, Subscriber, SubscriptionStatus, TokenPurpose, TokenRecord, Topic
from earshot.queue import QueuePort
from earshot.settings import Settings
from earshot.store import Store

logger = logging.getLogger(__name__)

ALLOWED: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    "pending": frozenset({"pending", "confirmed", "bounced", "complained"}),
    "confirmed": frozenset({"unsubscribed", "bounced", "complained"}),
    "unsubscribed": frozenset({"pending", "bounced", "complained"}),
    "bounced": frozenset(),
    "complained": frozenset(),
}
STOPPED: frozenset[SubscriptionStatus] = frozenset({"bounced", "complained"})
SAVE_ATTEMPTS = 3
CONFIRMATION_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class RequestInfo:
    """Where a request came from, for the consent record."""

    source: str
    ip: str | None = None
    user_agent: str | None = None

    def consent(self, at: datetime) -> ConsentEvent:
        agent = self.user_agent[:300] if self.user_agent else None
        return ConsentEvent(at=at, source=self.source, ip=self.ip, user_agent=agent)


class ConfirmationRequest(BaseModel):
    """One subscribe request on its way from the API to the confirmation mailer (a queue
    message). ``request_id`` makes a redelivered message one mail, not two, in the cap."""

    request_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    email: str = Field(max_length=320, description="normalized (normalize_email)")
    topic: str = Field(max_length=64)
    base_url: str = Field(max_length=300, description="where the mailed link points (the API's public base)")
    requested: ConsentEvent


def normalize_email(raw: str) -> str:
    """The address as it will be stored and mailed, or :class:`InvalidEmail`.

    Syntax only (no DNS: the API must answer fast and offline); the domain is lowercased
    and IDNA-encoded, and non-ASCII local parts are refused because they need SMTPUTF8.

    >>> normalize_email("  Ada@Example.COM ")
    'Ada@example.com'
    >>> normalize_email("not an address")
    Traceback (most recent call last):
    ...
    earshot.errors.InvalidEmail: Enter a valid email address: An email address must have an @-sign.
    """
    try:
        result = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"Enter a valid email address: {exc}") from exc
    address: str = result.ascii_email or result.normalized
    local_part = address.rpartition("@")[0]
    # RFC 5321 §4.5.3.1: servers may refuse longer ones, so such an address may never be
    # deliverable; and a hostile one should not grow what is stored and mailed.
    if len(local_part) > MAX_EMAIL_LOCAL_PART_CHARS:
        raise InvalidEmail(f"Enter a valid email address: the part before the @ is {len(local_part)} "
                           f"characters long; at most {MAX_EMAIL_LOCAL_PART_CHARS} are allowed")
    if len(address) > MAX_EMAIL_CHARS:
        raise InvalidEmail(f"Enter a valid email address: it is {len(address)} characters long; "
                           f"at most {MAX_EMAIL_CHARS} are allowed")
    return address


def address_hash(email: str) -> str:
    """The key of an address: sha256 of its lowercased form (addresses compare case-insensitively
    in practice, so Ada@ and ada@ are one subscriber).

    >>> address_hash("Ada@example.com") == address_hash("ada@example.com")
    True
    """
    return hashlib.sha256(email.lower().encode()).hexdigest()[:40]


def transition(sub: Subscriber, status: SubscriptionStatus, *, at: datetime, source: str,
               detail: str | None = None) -> Subscriber:
    """``sub`` moved to ``status`` with the change recorded (the latest
    :data:`MAX_HISTORY` changes are kept); ValueError if not allowed."""
    if status not in ALLOWED[sub.status]:
        raise ValueError(f"cannot go from {sub.status} to {status}")
    change = StatusChange(at=at, status=status, source=source, detail=detail)
    return sub.model_copy(update={"status": status, "history": [*sub.history, change][-MAX_HISTORY:]})


# ------------------------------------------------------------------ subscribe
def request_subscription(repo: Store, queue: QueuePort, settings: Settings, *, email: str, topic_slug: str,
                         request: RequestInfo, now: datetime) -> None:
    """Queue a subscribe request for the confirmation mailer (step 1 of 2).

    Raises :class:`InvalidEmail` or :class:`NotFound` (both about the request, never about
    the address's state); otherwise returns nothing, after the same reads and writes for
    every address, so callers answer identically in every case.
    """
    address = normalize_email(email)
    if repo.get_topic(topic_slug) is None:
        raise NotFound(f"No topic {topic_slug!r}.")
    message = ConfirmationRequest(request_id=uuid.uuid4().hex, email=address, topic=topic_slug,
                                  base_url=settings.public_base_url, requested=request.consent(now))
    queue.send_messages([message.model_dump(mode="json")])


Outcome = Literal["mailed", "already_confirmed", "mail_stopped", "capped", "no_topic", "rejected", "unknown"]


def handle_subscription_request(repo: Store, mailer: MailerPort, settings: Settings, request: ConfirmationRequest,
                                *, now: datetime) -> Outcome:
    """Start (or restart) a subscription and mail a confirmation link (step 2 of 2).

    Returns what happened. Raises a ``MailError`` only when SES certainly sent nothing
    and a later try may work (throttled, unreachable, sending unavailable): the request
    is then retried, and counts once against the cap however often it is.
    """
    topic = repo.get_topic(request.topic)
    if topic is None:
        return "no_topic"  # removed since the request was answered
    key = address_hash(request.email)
    if any(sub.status in STOPPED for sub in repo.subscriptions_of_address(key)):
        return "mail_stopped"  # a hard bounce or a complaint: nobody's request mails it again
    status = _make_pending(repo, topic, key, request, now)
    if status == "confirmed":
        return "already_confirmed"
    if status in STOPPED:
        return "mail_stopped"
    if not repo.count_confirmation_mail(key, request.request_id, now=now, window=CONFIRMATION_WINDOW,
                                        limit=settings.max_confirmations_per_24h):
        return "capped"
    return _send_confirmation(repo, mailer, settings, topic, request, key, now)


def _make_pending(repo: Store, topic: Topic, key: str, request: ConfirmationRequest,
                  now: datetime) -> SubscriptionStatus:
    """The subscription pending with this request as its latest; returns the status it
    ends in (``confirmed`` and the stopped ones are left as they are)."""
    for _ in range(SAVE_ATTEMPTS):
        sub = repo.get_subscriber(key, topic.slug)
        if sub is not None and (sub.status == "confirmed" or sub.status in STOPPED):
            return sub.status
        if sub is None:
            sub = Subscriber(topic=topic.slug, email=request.email, address_hash=key, created_at=now,
                             requested=request.requested,
                             history=[StatusChange(at=now, status="pending", source=request.requested.source)])
        elif sub.status == "pending":
            # Asked again: a new latest request, no status change, nothing appended.
            sub = sub.model_copy(update={"email": request.email, "requested": request.requested})
        else:
            sub = transition(sub, "pending", at=now, source=request.requested.source)
            sub = sub.model_copy(update={"email": request.email, "requested": request.requested})
        if repo.save_subscriber(sub):
            return "pending"
    raise RuntimeError("subscriber kept changing while subscribing")


def _send_confirmation(repo: Store, mailer: MailerPort, settings: Settings, topic: Topic,
                       request: ConfirmationRequest, key: str, now: datetime) -> Outcome:
    token, record = tokens.issue_token("confirm", topic=topic.slug, address_hash=key, now=now)
    repo.put_token(record)
    base = request.base_url.rstrip("/")
    context = {"topic": topic, "confirm_url": f"{base}/confirm?token={token}", "expires_hours": 48,
               "base_url": base}
    raw = mime.build_message(
        sender=settings.sender, to=request.email, now=now,
        subject=f"Confirm your Earshot digest: {topic.name}",
        text=templating.render("confirm_email.txt.j2", **context),
        html=templating.render("confirm_email.html.j2", **context),
    )
    try:
        mailer.send_raw(raw, to=request.email, tags={"kind": "confirmation", "topic": topic.slug, "address": key})
    except RecipientRejected as exc:
        logger.warning("SES rejected a confirmation mail", extra={"topic": topic.slug, "error": str(exc)})
        return "rejected"
    except SendOutcomeUnknown as exc:
        logger.warning("no answer from SES for a confirmation mail", extra={"topic": topic.slug, "error": str(exc)})
        return "unknown"
    except MailError:
        raise  # certainly not sent: retried
    except Exception:
        logger.exception("confirmation mail failed; it may have gone", extra={"topic": topic.slug})
        return "unknown"
    return "mailed"


# ------------------------------------------------------------ confirm / unsubscribe
def check_token(repo: Store, token: str, purpose: TokenPurpose, *, now: datetime) -> TokenRecord:
    """The token's record if it is valid now (read-only: what the GET pages use)."""
    if not tokens.is_well_formed(token):
        raise TokenError("This link is invalid or has expired.")
    return tokens.verify(token, repo.get_token(tokens.hash_token(token)), purpose, now=now)


def confirm(repo: Store, token: str, *, request: RequestInfo, now: datetime) -> Subscriber:
    """Confirm a pending subscription (single-use token). Confirming twice is harmless."""
    record = check_token(repo, token, "confirm", now=now)
    sub = _change(repo, record, "confirmed", request=request, now=now)
    repo.delete_token(record.token_hash)
    return sub


def unsubscribe(repo: Store, token: str, *, request: RequestInfo, now: datetime) -> Subscriber:
    """Unsubscribe (the token stays valid: RFC 8058 clients may repeat the POST)."""
    record = check_token(repo, token, "unsubscribe", now=now)
    return _change(repo, record, "unsubscribed", request=request, now=now)


def _change(repo: Store, record: TokenRecord, status: SubscriptionStatus, *,
            request: RequestInfo, now: datetime) -> Subscriber:
    for _ in range(SAVE_ATTEMPTS):
        sub = repo.get_subscriber(record.address_hash, record.topic)
        if sub is None:
            raise TokenError("This link is invalid or has expired.")
        if sub.status == status or (status == "unsubscribed" and sub.status in ("bounced", "complained")):
            return sub  # already there (a repeated click, or mail stopped for another reason)
        if status not in ALLOWED[sub.status]:
            raise TokenError("This link is invalid or has expired.")
        changed = transition(sub, status, at=now, source=request.source)
        if status == "confirmed":
            changed = changed.model_copy(update={"confirmed": request.consent(now)})
        if repo.save_subscriber(changed):
            return changed
    raise RuntimeError("subscriber kept changing")


# ------------------------------------------------------------ bounces and complaints
Problem = Literal["bounced", "complained"]


def record_delivery_problem(repo: Store, email: str, problem: Problem, *, now: datetime,
                            topic_slug: str | None = None, detail: str | None = None) -> list[str]:
    """Stop all mail to an address after a permanent bounce (the mailbox is gone) or a
    complaint (mailbox providers treat "this is spam" as "stop mailing me", whichever
    list it was about): every subscription of the address becomes ``bounced`` or
    ``complained``. ``topic_slug`` (the topic the complained-about mail was for) is
    recorded in the change's detail. Returns the topics changed."""
    key = address_hash(email)
    if problem == "complained" and topic_slug:
        detail = f"complaint about {topic_slug}" + (f": {detail}" if detail else "")
    changed: list[str] = []
    for sub in repo.subscriptions_of_address(key):
        for _ in range(SAVE_ATTEMPTS):
            if sub.status == problem or problem not in ALLOWED[sub.status]:
                break
            if repo.save_subscriber(transition(sub, problem, at=now, source="ses-event", detail=detail)):
                changed.append(sub.topic)
                break
            current = repo.get_subscriber(key, sub.topic)
            if current is None:
                break
            sub = current
    return changed
