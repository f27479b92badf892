"""Confirmation and unsubscribe tokens: random, stored only as hashes, with a purpose
and an expiry.

A token is ``secrets.token_urlsafe(32)`` (256 bits from the OS CSPRNG). Earshot keeps
only its SHA-256 (the DynamoDB key of the token item), so a leaked table or backup
holds no usable link. No signing secret exists to manage or rotate: a token is valid
because its hash is stored, not because of a signature, and revoking one is deleting
its item. SHA-256 without salt is enough here because the input has 256 bits of
entropy (salting and slow hashes defend low-entropy passwords, not random tokens).

Lookup is by hash, so the lookup itself never compares secrets. :func:`verify` then
re-checks the stored hash with :func:`hmac.compare_digest` (constant time) together
with purpose and expiry, so a record fetched for the wrong reason cannot pass.

Lifetimes: a confirmation link expires after 48 hours (and is single use); an
unsubscribe link is long-lived, because people unsubscribe from mail that is months
old, and RFC 8058 one-click requests must keep working for as long as a mail might be
read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from earshot.errors import TokenError
from earshot.models import TokenPurpose as Purpose
from earshot.models import TokenRecord

TOKEN_BYTES = 32
LIFETIMES: dict[str, timedelta] = {
    "confirm": timedelta(hours=48),
    "unsubscribe": timedelta(days=400),
}


def hash_token(token: str) -> str:
    """SHA-256 hex of a token: the only form in which a token is stored.

    >>> hash_token("abc")[:16]
    'ba7816bf8f01cfea'
    """
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(purpose: Purpose, *, topic: str, address_hash: str, now: datetime) -> tuple[str, TokenRecord]:
    """A new token and the record to store for it. The token goes into one link only."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    record = TokenRecord(
        token_hash=hash_token(token), purpose=purpose, topic=topic, address_hash=address_hash,
        created_at=now, expires_at=now + LIFETIMES[purpose],
    )
    return token, record


def is_well_formed(token: str) -> bool:
    """Cheap shape check before any lookup: token_urlsafe(32) is 43 URL-safe characters.

    >>> is_well_formed(secrets.token_urlsafe(TOKEN_BYTES)), is_well_formed("x' OR 1=1")
    (True, False)
    """
    return len(token) == 43 and all(c.isascii() and (c.isalnum() or c in "-_") for c in token)


def verify(token: str, record: TokenRecord | None, purpose: Purpose, *, now: datetime) -> TokenRecord:
    """The record if ``token`` is valid for ``purpose`` at ``now``; else :class:`TokenError`.

    Every failure raises the same error with the same message, so a caller cannot tell
    "unknown" from "expired" from "wrong purpose" (nothing to probe).
    """
    if (
        record is None
        or not hmac.compare_digest(hash_token(token), record.token_hash)
        or record.purpose != purpose
        or now >= record.expires_at
    ):
        raise TokenError("This link is invalid or has expired.")
    return record
