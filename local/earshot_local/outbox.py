"""The mailer port on this machine: every mail becomes a ``.eml`` file in an outbox
folder, and, where ``EARSHOT_SMTP_URL`` is set, is also handed to that SMTP server.

Local mail never goes nowhere: the outbox is the record of what was sent, readable by any
mail client (``.eml`` is RFC 5322 as sent).

SMTP failures are typed like SES's (:mod:`earshot.mail.mailer`), so the callers' rules
(release and retry only what certainly was not sent) hold locally too: no connection is
``MailUnreachable`` and a refusal ``RecipientRejected`` or ``MailError`` (nothing written
to the outbox, so a retry leaves one file); a failure after the message may have been
handed over is ``SendOutcomeUnknown`` (the file is written: it may have gone).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import itertools
import smtplib
import ssl
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

from earshot.errors import MailError, MailUnreachable, RecipientRejected, SendOutcomeUnknown
from earshot.mail.mailer import Pacer


class OutboxMailer:
    """Writes each message to ``outbox/<utc time>-<n>-<kind>.eml``; optionally relays it."""

    def __init__(self, outbox: Path, *, smtp_url: str | None = None, sender: str = "") -> None:
        self.outbox = outbox
        self.smtp_url = smtp_url
        self.sender = sender
        self.pacer: Pacer | None = None
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def max_send_rate(self) -> float:
        return 0.0  # no quota locally: a pacer built from it does not wait

    def ensure_can_send(self, identity: str) -> None:
        """The outbox always accepts mail (SMTP problems surface per message)."""

    def send_raw(self, raw: bytes, *, to: str, tags: dict[str, str] | None = None) -> str:
        if self.pacer:
            self.pacer.wait()
        kind = (tags or {}).get("kind", "mail")
        try:
            if self.smtp_url:
                _relay(self.smtp_url, raw, sender=self.sender, to=to)
        except SendOutcomeUnknown:
            self._write(raw, kind)  # it may have gone: keep the record
            raise
        return f"outbox:{self._write(raw, kind).name}"

    def _write(self, raw: bytes, kind: str) -> Path:
        self.outbox.mkdir(parents=True, exist_ok=True)
        with self._lock:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            path = self.outbox / f"{stamp}-{next(self._seq):04d}-{kind}.eml"
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(raw)
            tmp.replace(path)  # a reader never sees half a mail
        return path

    def messages(self) -> list[tuple[Path, EmailMessage]]:
        """Every mail in the outbox, oldest first."""
        return [(p, read_eml(p)) for p in sorted(self.outbox.glob("*.eml"))]


def read_eml(path: Path) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def _relay(url: str, raw: bytes, *, sender: str, to: str) -> None:
    """``smtp://[user:pass@]host[:port]`` (STARTTLS when offered) or ``smtps://`` (TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise MailError(f"EARSHOT_SMTP_URL must be smtp://host[:port] or smtps://host[:port], not {url!r}")
    from_addr = email.utils.parseaddr(sender)[1] or "earshot@localhost"
    try:
        if parts.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(parts.hostname, parts.port or 465, timeout=30,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(parts.hostname, parts.port or 25, timeout=30)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailUnreachable(f"SMTP {parts.hostname}: {exc}") from exc
    try:
        with client:
            if parts.scheme == "smtp" and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.sendmail(from_addr, [to], raw)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as exc:
        raise RecipientRejected(f"SMTP {parts.hostname} refused the message: {exc}") from exc
    except (smtplib.SMTPSenderRefused, smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError,
            smtplib.SMTPHeloError) as exc:
        raise MailError(f"SMTP {parts.hostname} refused: {exc}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        # Cut off or timed out mid-conversation: the server may have taken it.
        raise SendOutcomeUnknown(f"SMTP {parts.hostname}: {exc}") from exc
