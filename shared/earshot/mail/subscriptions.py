"""Subscriptions to a topic's weekly digest: double opt-in, unsubscribe, bounces.

State machine (one subscription = one address + one topic)::

    (none) ──subscribe──▶ pending ──confirm──▶ confirmed ──unsubscribe──▶ unsubscribed
                            │  ▲                   │                          │
                            │  └────subscribe──────┼──────────────────────────┘
                            └──bounce/complaint────┴──▶ bounced / complained ──subscribe──▶ pending

Every change appends to ``history`` with its time and source; the subscribe request and
the confirmation (the consent proper) are kept with time, source, IP and user agent.

Privacy rules this module keeps:

- :func:`subscribe` behaves the same, as seen by the requester, whether the address is
  new, pending, confirmed or unsubscribed: no way to learn who subscribes to what.
- At most ``settings.max_confirmations_per_day`` confirmation mails per address per day
  (across topics), so the form cannot be used to flood someone's inbox.
- Nothing is confirmed by a GET: the confirmation link opens a page whose button POSTs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from email_validator import EmailNotValidError, validate_email

from earshot import templating
from earshot.errors import InvalidEmail, NotFound, TokenError
from earshot.mail import mime, tokens
from earshot.mail.mailer import MailerPort
from earshot.models import ConsentEvent, StatusChange, Subscriber, SubscriptionStatus, TokenPurpose, TokenRecord, Topic
from earshot.settings import Settings
from earshot.store import Store

ALLOWED: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    "pending": frozenset({"pending", "confirmed", "bounced", "complained"}),
    "confirmed": frozenset({"unsubscribed", "bounced", "complained"}),
    "unsubscribed": frozenset({"pending", "bounced", "complained"}),
    "bounced": frozenset({"pending"}),
    "complained": frozenset({"pending"}),
}
SAVE_ATTEMPTS = 3


@dataclass(frozen=True)
class RequestInfo:
    """Where a request came from, for the consent record."""

    source: str
    ip: str | None = None
    user_agent: str | None = None

    def consent(self, at: datetime) -> ConsentEvent:
        agent = self.user_agent[:300] if self.user_agent else None
        return ConsentEvent(at=at, source=self.source, ip=self.ip, user_agent=agent)


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
    return result.ascii_email or result.normalized


def address_hash(email: str) -> str:
    """The key of an address: sha256 of its lowercased form (addresses compare case-insensitively
    in practice, so Ada@ and ada@ are one subscriber).

    >>> address_hash("Ada@example.com") == address_hash("ada@example.com")
    True
    """
    return hashlib.sha256(email.lower().encode()).hexdigest()[:40]


def transition(sub: Subscriber, status: SubscriptionStatus, *, at: datetime, source: str,
               detail: str | None = None) -> Subscriber:
    """``sub`` moved to ``status`` with the change recorded; ValueError if not allowed."""
    if status not in ALLOWED[sub.status]:
        raise ValueError(f"cannot go from {sub.status} to {status}")
    change = StatusChange(at=at, status=status, source=source, detail=detail)
    return sub.model_copy(update={"status": status, "history": [*sub.history, change]})


# ------------------------------------------------------------------ subscribe
def subscribe(repo: Store, mailer: MailerPort, settings: Settings, *, email: str, topic_slug: str,
              request: RequestInfo, now: datetime) -> None:
    """Start (or restart) a subscription and mail a confirmation link.

    Raises :class:`InvalidEmail` or :class:`NotFound`; otherwise returns nothing, whatever
    the address's state, so callers answer identically in every case.
    """
    address = normalize_email(email)
    topic = repo.get_topic(topic_slug)
    if topic is None:
        raise NotFound(f"No topic {topic_slug!r}.")
    key = address_hash(address)
    for _ in range(SAVE_ATTEMPTS):
        sub = repo.get_subscriber(key, topic.slug)
        if sub is not None and sub.status == "confirmed":
            return  # already subscribed: nothing to do, nothing to reveal
        if sub is None:
            sub = Subscriber(topic=topic.slug, email=address, address_hash=key, created_at=now,
                             requested=request.consent(now))
            sub = sub.model_copy(update={"history": [StatusChange(at=now, status="pending", source=request.source)]})
        else:
            sub = transition(sub, "pending", at=now, source=request.source)
            sub = sub.model_copy(update={"email": address, "requested": request.consent(now)})
        if repo.save_subscriber(sub):
            break
    else:
        raise RuntimeError("subscriber kept changing while subscribing")
    _send_confirmation(repo, mailer, settings, topic, address, key, now)


def _send_confirmation(repo: Store, mailer: MailerPort, settings: Settings, topic: Topic,
                       address: str, key: str, now: datetime) -> bool:
    """Mail a fresh confirmation link unless the address hit today's cap."""
    day = now.strftime("%Y-%m-%d")
    if not repo.count_confirmation_mail(key, day, limit=settings.max_confirmations_per_day,
                                        expires_at=int((now + timedelta(days=2)).timestamp())):
        return False
    token, record = tokens.issue_token("confirm", topic=topic.slug, address_hash=key, now=now)
    repo.put_token(record)
    url = f"{settings.public_base_url.rstrip('/')}/confirm?token={token}"
    context = {"topic": topic, "confirm_url": url, "expires_hours": 48, "base_url": settings.public_base_url}
    raw = mime.build_message(
        sender=settings.sender, to=address, now=now,
        subject=f"Confirm your Earshot digest: {topic.name}",
        text=templating.render("confirm_email.txt.j2", **context),
        html=templating.render("confirm_email.html.j2", **context),
    )
    mailer.send_raw(raw, to=address, tags={"kind": "confirmation", "topic": topic.slug, "address": key})
    return True


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
    """Stop mail to an address after a permanent bounce (every topic: the mailbox is
    gone) or a complaint (the topic complained about, or every topic if unknown).
    Returns the topics changed."""
    key = address_hash(email)
    changed: list[str] = []
    for sub in repo.subscriptions_of_address(key):
        if problem == "complained" and topic_slug and sub.topic != topic_slug:
            continue
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
