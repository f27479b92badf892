"""The local mailer: the outbox is the record of what was sent, and an SMTP relay's
failures are typed like SES's, so "retry only what certainly was not sent" holds locally."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from earshot.errors import MailUnreachable
from earshot_local.outbox import OutboxMailer

RAW = b"From: d@example.org\r\nTo: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_mail_is_a_file_in_the_outbox(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path / "outbox", sender="d@example.org")
    message_id = mailer.send_raw(RAW, to="a@example.org", tags={"kind": "digest"})
    (path, message), = mailer.messages()
    assert message_id == f"outbox:{path.name}" and path.name.endswith("-digest.eml")
    assert message["Subject"] == "hi"


def test_an_unreachable_relay_sent_nothing_and_leaves_no_file(tmp_path: Path) -> None:
    # nothing listens on the port: the connection is refused before anything is handed over
    mailer = OutboxMailer(tmp_path / "outbox", smtp_url=f"smtp://127.0.0.1:{_closed_port()}", sender="d@example.org")
    with pytest.raises(MailUnreachable):
        mailer.send_raw(RAW, to="a@example.org")
    assert mailer.messages() == []  # a retry will leave exactly one
