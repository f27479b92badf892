"""Tokens: random, stored only as hashes, bound to a purpose, expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from earshot.errors import TokenError
from earshot.mail.tokens import hash_token, is_well_formed, issue_token, verify

NOW = datetime(2025, 1, 13, 8, tzinfo=UTC)


def test_token_is_random_and_only_its_hash_is_in_the_record() -> None:
    token, record = issue_token("confirm", topic="t", address_hash="a", now=NOW)
    other, _ = issue_token("confirm", topic="t", address_hash="a", now=NOW)
    assert token != other and is_well_formed(token)
    assert record.token_hash == hash_token(token)
    assert token not in record.model_dump_json()


@pytest.mark.parametrize("purpose, lifetime", [("confirm", timedelta(hours=48)), ("unsubscribe", timedelta(days=400))])
def test_lifetimes(purpose: str, lifetime: timedelta) -> None:
    token, record = issue_token(purpose, topic="t", address_hash="a", now=NOW)  # type: ignore[arg-type]
    assert record.expires_at - NOW == lifetime
    assert verify(token, record, purpose, now=NOW + lifetime - timedelta(seconds=1)) == record  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        verify(token, record, purpose, now=NOW + lifetime)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", ["wrong-purpose", "tampered", "unknown"])
def test_invalid_tokens_all_fail_alike(case: str) -> None:
    token, record = issue_token("confirm", topic="t", address_hash="a", now=NOW)
    args = {
        "wrong-purpose": (token, record, "unsubscribe"),
        "tampered": (token[:-1] + ("x" if token[-1] != "x" else "y"), record, "confirm"),
        "unknown": (token, None, "confirm"),
    }[case]
    with pytest.raises(TokenError, match="invalid or has expired"):
        verify(*args, now=NOW)  # type: ignore[arg-type]
