"""A database written by an earlier Earshot opens in this one: its migrations run in order
and keep what was stored (here: a week's send claims from before claims kept a token)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from earshot.mail import tokens
from earshot_local.sqlite_store import MIGRATIONS, SCHEMA_VERSION, SqliteStore

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def test_a_first_version_database_is_migrated_and_keeps_its_claims(tmp_path: Path) -> None:
    path = tmp_path / "earshot.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("INSERT INTO send_claims (address_hash, topic, week, state, claimed_at, expires_at) "
                 "VALUES ('h1', 'mlp', '2026-W47', 'sent', '2026-11-23T08:00:00Z', 2000000000)")
    conn.execute("INSERT INTO confirm_counters VALUES ('h1', '2026-11-26', 3, 2000000000)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()

    store = SqliteStore(path)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.get_claim_state("h1", "mlp", "2026-W47") == "sent"
        _, record = tokens.issue_token("unsubscribe", topic="mlp", address_hash="h1", now=NOW)
        assert not store.claim_send("h1", "mlp", "2026-W47", now=NOW, expires_at=2**31, token=record)
        # the old per-day counters are gone; the rolling window starts empty
        assert store.count_confirmation_mail("h1", "r1", now=NOW, window=timedelta(hours=24), limit=3)
    finally:
        store.close()
