"""Weekly digest delivery: plan (render once, fan out) and send (one batch of recipients).

    digest function:         plan_week    for each topic with confirmed subscribers and
                                          news: render once, store it, queue batches
    digest_sender function:  send_batch   per recipient: still confirmed? build the mail
                                          -> claim (topic, week, address) with its token
                                          -> send -> record how it ended
    bounces function:        apply_ses_event  a permanent bounce or a complaint stops all
                                          mail to the address

The delivery guarantee: every confirmed recipient of a batch, however often the batch is
redelivered, throttled, timed out or hit by storage errors, ends the week with exactly one
digest, or with none and a recorded, counted reason; never two. How:

- At most one SES send per (topic, ISO week, address): the claim is a conditional write
  made *before* the send, and the send call is never retried by the SDK. A re-delivered
  message, a retried invocation or a second run of the digest finds the claim and skips.
- Nothing that can fail comes between the claim and the send: the mail is built first,
  and the claim and the mail's unsubscribe token are written in one atomic write, so a
  storage error leaves either nothing claimed (the batch is retried) or everything ready.
- A claim is released only when SES certainly did not send (it answered with an error, or
  no connection was made): throttled, unreachable, or unable to send at all
  (``SendingUnavailable``: identity unverified, sending paused). The batch is then retried.
- A refusal of this one message ends the claim ``rejected``; no answer at all (a read
  timeout, a cut connection, an internal error: the mail may have gone) ends it
  ``unknown``. Both are counted (``rejected``, ``outcome_unknown``) and never retried.
- If the process dies between claim and send, or the claim's end cannot be recorded, the
  claim stays ``claimed``: that recipient is never sent to again that week (the mail may
  have gone), and the redelivery that follows counts them as ``skipped_unfinished``.

A run of the digest first asks SES whether it can send at all
(:meth:`~earshot.mail.mailer.Mailer.ensure_can_send`); if not, it raises
``SendingUnavailable`` before rendering or queueing anything, so the function fails, its
error alarm pages, and a re-run after the fix covers the same week.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, Field, field_validator

from earshot.bounds import Key
from earshot.errors import MailError, RecipientRejected, SendOutcomeUnknown
from earshot.mail import mime, subscriptions, tokens
from earshot.mail.digest import RenderedDigest, has_news, previous_week, render_digest, week_window
from earshot.mail.mailer import MailerPort
from earshot.queue import QueuePort
from earshot.settings import Settings
from earshot.store import Store
from earshot.topics.service import topic_report
from earshot.topics.stats import TopicReport

logger = logging.getLogger(__name__)

RENDERED_TTL = timedelta(days=30)
CLAIM_TTL = timedelta(days=400)  # the claim doubles as the record of what was sent


class DigestRequest(BaseModel):
    """The scheduler's payload (template.yaml ``Input``); ``week`` re-runs a given week."""

    source: Literal["earshot.scheduler"]
    detail_type: Literal["weekly-digest"] = Field(alias="detail-type")
    week: str | None = Field(None, pattern=r"^\d{4}-W\d{2}$")

    @field_validator("week")
    @classmethod
    def _is_a_week(cls, week: str | None) -> str | None:
        if week is not None:
            week_window(week)  # ValueError, e.g. "no ISO week 2025-W53: 2025 has weeks W01 to W52"
        return week


class DigestBatch(BaseModel):
    """One queue message: a slice of a topic's recipients for one week."""

    topic: Key
    week: str = Field(pattern=r"^\d{4}-W\d{2}$")
    recipients: list[Key] = Field(description="address hashes", min_length=1, max_length=500)


@dataclass
class PlanResult:
    week: str
    topics_queued: list[str] = field(default_factory=list)
    topics_without_news: list[str] = field(default_factory=list)
    recipients: int = 0
    batches: int = 0


@dataclass
class SendResult:
    """What one batch did, per recipient (each field becomes a ``Digest_<field>`` metric)."""

    sent: int = 0
    skipped_not_confirmed: int = 0
    skipped_already_claimed: int = 0  # an earlier attempt ended: sent, rejected or unknown
    skipped_unfinished: int = 0  # an earlier attempt claimed and never recorded its end
    rejected: int = 0
    outcome_unknown: int = 0
    skipped_no_digest: int = 0


def digest_report(repo: Store, slug: str, week: str, settings: Settings, *, now: datetime) -> TopicReport:
    """A topic's numbers for its digest of ``week`` (in the digest's time zone): the
    week's episodes, and every other number as of the week's end (or ``now``, if the week
    is not over), so a digest of an old week does not count what came after it."""
    start, end = week_window(week, settings.digest_zone)
    return topic_report(repo, slug, now=min(now, end), window=(start, end), latest_limit=None)


def plan_week(repo: Store, queue: QueuePort, settings: Settings, *, now: datetime,
              week: str | None = None, mailer: MailerPort | None = None) -> PlanResult:
    """Render each topic's digest for ``week`` (default: last week in the digest's time
    zone) once and queue its recipients in batches. Topics without news are skipped unless
    ``send_empty_digests``. With ``mailer``, first checks that SES can send as the sending
    identity (raises ``SendingUnavailable`` if not, before anything is queued)."""
    if mailer is not None:
        mailer.ensure_can_send(settings.sending_identity)
    week = week or previous_week(now, settings.digest_zone)
    result = PlanResult(week=week)
    for topic in repo.list_topics():
        recipients = [s.address_hash for s in repo.confirmed_subscribers(topic.slug)]
        if not recipients:
            continue
        report = digest_report(repo, topic.slug, week, settings, now=now)
        if not has_news(report) and not settings.send_empty_digests:
            result.topics_without_news.append(topic.slug)
            continue
        rendered = render_digest(topic, report, week=week, base_url=settings.public_base_url,
                                 domain=settings.sender_domain)
        # A re-run keeps the first rendering, so every batch of a week mails the same text.
        repo.put_rendered_digest(topic.slug, week, rendered.to_bytes(),
                                 expires_at=int((now + RENDERED_TTL).timestamp()))
        size = settings.digest_batch_size
        batches = [DigestBatch(topic=topic.slug, week=week, recipients=recipients[i:i + size])
                   for i in range(0, len(recipients), size)]
        queue.send_messages([b.model_dump() for b in batches])
        result.topics_queued.append(topic.slug)
        result.recipients += len(recipients)
        result.batches += len(batches)
    return result


@dataclass(frozen=True)
class PersonalDigest:
    """One recipient's digest: the texts with their own unsubscribe link, and the message."""

    text: str
    html: str
    raw: bytes


def digest_skeleton(digest: RenderedDigest, settings: Settings) -> mime.MailSkeleton:
    """The headers and structure every recipient's copy of a week's digest shares."""
    return mime.prepare(sender=settings.sender, subject=digest.subject, list_id_value=digest.list_id)


def personal_digest(digest: RenderedDigest, skeleton: mime.MailSkeleton, settings: Settings, *, to: str,
                    token: str, now: datetime) -> PersonalDigest:
    """Personalize a rendered digest for one recipient: the one-click unsubscribe link
    (RFC 8058) in the body and in the List-Unsubscribe headers."""
    url = f"{settings.public_base_url.rstrip('/')}/unsubscribe?token={token}"
    text, html = digest.personalize(url)
    raw = mime.assemble(skeleton, to=to, now=now, text=text, html=html,
                        unsubscribe=mime.Unsubscribe(url=url, mailto=settings.unsubscribe_mailto, token=token))
    return PersonalDigest(text=text, html=html, raw=raw)


def send_batch(repo: Store, mailer: MailerPort, settings: Settings, batch: DigestBatch, *,
               now: datetime, result: SendResult | None = None) -> SendResult:
    """Mail one batch. Raises (with nobody's claim left half-done) when the batch should be
    retried; recipients already mailed, rejected or of unknown outcome are skipped then.

    Counts go into ``result`` (a new one by default) as each recipient is done, so a
    caller that passes its own still has the counts of a batch that raised half-way."""
    payload = repo.get_rendered_digest(batch.topic, batch.week)
    if payload is None:
        # Rendered before any batch is queued and kept 30 days: a batch without it is older
        # than that, or was written by hand. Retrying cannot help; say so and mail nobody.
        logger.warning("no rendered digest for this batch", extra={"topic": batch.topic, "week": batch.week})
        result = result or SendResult()
        result.skipped_no_digest += len(batch.recipients)
        return result
    digest = RenderedDigest.from_bytes(payload)
    skeleton = digest_skeleton(digest, settings)
    claim_expiry = int((now + CLAIM_TTL).timestamp())
    result = result or SendResult()
    for key in batch.recipients:
        sub = repo.get_subscriber(key, batch.topic)
        if sub is None or sub.status != "confirmed":
            result.skipped_not_confirmed += 1  # unsubscribed or bounced since the plan
            continue
        # Everything but the send is ready before the claim: afterwards only SES can fail.
        token, record = tokens.issue_token("unsubscribe", topic=batch.topic, address_hash=key, now=now)
        raw = personal_digest(digest, skeleton, settings, to=sub.email, token=token, now=now).raw
        if not repo.claim_send(key, batch.topic, batch.week, now=now, expires_at=claim_expiry, token=record):
            if repo.get_claim_state(key, batch.topic, batch.week) == "claimed":
                result.skipped_unfinished += 1  # crashed mid-send, or its record failed: it may have gone
            else:
                result.skipped_already_claimed += 1
            continue
        _send_claimed(repo, mailer, batch, key, sub.email, raw, now, result)
    return result


def _send_claimed(repo: Store, mailer: MailerPort, batch: DigestBatch, key: str, to: str, raw: bytes,
                  now: datetime, result: SendResult) -> None:
    """Send one claimed mail and record how it ended (see the module docstring)."""
    tags = {"kind": "digest", "topic": batch.topic, "address": key}
    try:
        message_id = mailer.send_raw(raw, to=to, tags=tags)
    except RecipientRejected as exc:
        result.rejected += 1
        logger.warning("SES rejected a digest", extra={"topic": batch.topic, "error": str(exc)})
        repo.finish_claim(key, batch.topic, batch.week, state="rejected", now=now, detail=str(exc)[:300])
        return
    except SendOutcomeUnknown as exc:
        _unknown(repo, batch, key, now, str(exc), result)
        return
    except MailError:
        # SES certainly sent nothing (throttled, unreachable, unavailable): the claim goes
        # and the whole batch comes back later.
        repo.release_claim(key, batch.topic, batch.week)
        raise
    except Exception as exc:  # not the mailer's typed answer: it may have sent
        logger.exception("digest send failed with an unknown outcome", extra={"topic": batch.topic})
        _unknown(repo, batch, key, now, f"{type(exc).__name__}: {exc}", result)
        return
    result.sent += 1  # SES took it: counted even if recording it fails next
    repo.finish_claim(key, batch.topic, batch.week, state="sent", now=now, message_id=message_id)


def _unknown(repo: Store, batch: DigestBatch, key: str, now: datetime, detail: str, result: SendResult) -> None:
    result.outcome_unknown += 1
    logger.warning("no answer from SES for a digest; not retried", extra={"topic": batch.topic, "error": detail})
    repo.finish_claim(key, batch.topic, batch.week, state="unknown", now=now, detail=detail[:300])


# ------------------------------------------------------------------ SES feedback
# The configuration set's EventBridge destination: detail-type "Email Bounced" /
# "Email Complaint Received", detail = the SES event record
# (https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html).
class SesRecipient(BaseModel):
    emailAddress: str
    diagnosticCode: str | None = None


class SesBounce(BaseModel):
    bounceType: Literal["Undetermined", "Permanent", "Transient"]
    bounceSubType: str = ""
    bouncedRecipients: list[SesRecipient]


class SesComplaint(BaseModel):
    complainedRecipients: list[SesRecipient]
    complaintFeedbackType: str | None = None


class SesMail(BaseModel):
    messageId: str
    tags: dict[str, list[str]] = {}


class SesEventDetail(BaseModel):
    eventType: Literal["Bounce", "Complaint"]
    mail: SesMail
    bounce: SesBounce | None = None
    complaint: SesComplaint | None = None


class SesEvent(EventBridgeModel):
    detail: SesEventDetail


def apply_ses_event(repo: Store, event: SesEvent, *, now: datetime) -> list[str]:
    """Stop all mail to the addresses of a bounce or complaint; returns the topics changed.

    Only permanent bounces count (a transient one is a full mailbox or a greylist; SES
    retries those itself). ``OnAccountSuppressionList`` is a permanent bounce too: SES
    did not even try, because the address is on the account's suppression list. A
    complaint stops every topic of the address, not only the one complained about.
    """
    detail = event.detail
    topic = next(iter(detail.mail.tags.get("topic") or ()), None)
    changed: list[str] = []
    if detail.eventType == "Bounce" and detail.bounce and detail.bounce.bounceType == "Permanent":
        for r in detail.bounce.bouncedRecipients:
            why = f"{detail.bounce.bounceSubType}: {r.diagnosticCode or ''}".strip(": ")[:300]
            changed += subscriptions.record_delivery_problem(repo, r.emailAddress, "bounced", now=now, detail=why)
    elif detail.eventType == "Complaint" and detail.complaint:
        for r in detail.complaint.complainedRecipients:
            changed += subscriptions.record_delivery_problem(
                repo, r.emailAddress, "complained", now=now, topic_slug=topic,
                detail=detail.complaint.complaintFeedbackType)
    return changed
