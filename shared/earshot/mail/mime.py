"""Raw MIME messages for SES, built with the stdlib ``email`` package. Pure: no I/O.

Every mail is ``multipart/alternative`` (RFC 2046 §5.1.4): a text/plain part first,
then text/html, so clients show the richest part they understand. Both parts are
UTF-8, base64 (7-bit safe, lines <= 76 as RFC 2045 requires, and encoded by C code,
which matters when the same body goes to thousands of recipients).

Headers:

- ``From``/``To``/``Subject``/``Date``/``Message-ID`` (RFC 5322 §3.6).
- ``List-Id`` (RFC 2919) so filters and providers can group a topic's digests.
- ``List-Unsubscribe: <https://...>, <mailto:...>`` (RFC 2369 §3.2) and
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058 §3.1): a mail client
  may POST to the https URI to unsubscribe without a page or a login.

Header injection: anything that came from a feed (topic names, titles) is passed
through :func:`header_text`, which turns CR, LF and every other control or line
separator character into a space before it reaches a header. ``email`` additionally
refuses CR/LF in header values, so a miss would raise, never inject.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import quote

# C0/C1 controls, DEL and Unicode line/paragraph separators: none may reach a header.
_UNSAFE_HEADER_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Headers whose URIs must stay verbatim: RFC 2047 encoded-words inside <...> would
# break the URI, which is what the stdlib folder does to long unstructured headers.
_VERBATIM_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post", "list-id"})


class _MailPolicy(EmailPolicy):
    """SMTP policy (CRLF, 78-column folding) except for the List-* headers, which are
    folded only between their angle-bracketed URIs (RFC 2369 §2 allows that) and kept
    as plain ASCII. Their lines may pass 78 columns; RFC 5322 §2.1.1's hard limit is 998."""

    def _verbatim(self, name: str, value: str) -> str:
        text = str(value)
        if not text.isascii() or len(text) > 900:
            raise ValueError(f"{name} must be ASCII and short: {text[:40]!r}")
        return f"{name}: {text.replace(', <', ',' + self.linesep + ' <')}{self.linesep}"

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _VERBATIM_HEADERS:
            return self._verbatim(name, value)
        return str(super().fold(name, value))

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _VERBATIM_HEADERS:
            return self._verbatim(name, value).encode("ascii")
        return super().fold_binary(name, value)


CRLF = "\r\n"
POLICY = _MailPolicy(linesep=CRLF)


def header_text(value: str, *, max_chars: int = 200) -> str:
    """Text safe to put in a header: controls and line breaks become single spaces.

    >>> header_text("Hello\\r\\nBcc: evil@example.com")
    'Hello Bcc: evil@example.com'
    >>> header_text("  many\\t\\tspaces\\u2028here ")
    'many spaces here'

    An RFC 2047 encoded-word in feed text (``=?utf-8?q?=0D=0A...?=``) would be decoded by
    mail clients and header parsers into the very CR/LF removed here, so ``=?`` is broken up:

    >>> header_text("=?utf-8?q?=0D=0ABcc:_x?=")
    '= ?utf-8?q?=0D=0ABcc:_x?='
    """
    flat = _UNSAFE_HEADER_CHARS.sub(" ", value.replace("=?", "= ?"))
    flat = " ".join(flat.split())
    return flat if len(flat) <= max_chars else flat[: max_chars - 1].rstrip() + "…"


def list_id(topic_slug: str, topic_name: str, domain: str) -> str:
    """RFC 2919 List-Id: a phrase and a dot-atom id made from the slug.

    >>> list_id("ml-finance", "ML in finance", "earshot.example")
    '"Earshot: ML in finance" <ml-finance.digest.earshot.example>'

    The phrase is written verbatim, so it is folded to ASCII (RFC 2919 allows only a
    plain phrase there; an encoded-word would be one more way to smuggle CR/LF):

    >>> list_id("eco", "Économie", "earshot.example")
    '"Earshot: Economie" <eco.digest.earshot.example>'
    """
    atom = re.sub(r"[^a-z0-9-]+", "-", topic_slug.lower()).strip("-") or "topic"
    phrase = header_text(f"Earshot: {topic_name}", max_chars=120).replace("\\", "").replace('"', "'")
    # NFKD then ASCII: accents drop off their letters, and a cut's "…" becomes "...".
    phrase = unicodedata.normalize("NFKD", phrase).encode("ascii", "ignore").decode()
    return f'"{phrase}" <{atom}.digest.{domain}>'


def list_unsubscribe(url: str, mailto: str, token: str) -> str:
    """RFC 2369 List-Unsubscribe value: the one-click https URI first (RFC 8058 §3.1
    needs an https URI), then a mailto for clients that only do mail.

    >>> list_unsubscribe("https://e.example/unsubscribe?token=T", "u@e.example", "T")
    '<https://e.example/unsubscribe?token=T>, <mailto:u@e.example?subject=unsubscribe%20T>'
    """
    return f"<{url}>, <mailto:{mailto}?subject={quote('unsubscribe ' + token)}>"


@dataclass(frozen=True)
class Unsubscribe:
    """A recipient's unsubscribe links, for the List-Unsubscribe headers."""

    url: str
    mailto: str
    token: str


@dataclass(frozen=True)
class MailSkeleton:
    """The parts of a message shared by every recipient, serialized once.

    ``email`` builds it (headers, multipart structure, boundary); per recipient only the
    recipient headers and the two base64 bodies are spliced in (:func:`assemble`). Doing
    the stdlib's header folding and body encoding once per digest instead of once per
    mail is what makes thousands of personalized messages per second possible.
    """

    head: str
    between: str
    tail: str
    domain: str


_TEXT_MARK = "EARSHOT-TEXT-PART"
_HTML_MARK = "EARSHOT-HTML-PART"


def _part(mark: str, subtype: str) -> MIMEPart:
    part = MIMEPart(policy=POLICY)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "base64"
    part.set_payload(mark)
    return part


def prepare(*, sender: str, subject: str, list_id_value: str | None = None) -> MailSkeleton:
    """The shared skeleton: From, Subject, List-Id and the multipart/alternative frame."""
    display, addr = parseaddr(sender)
    msg = EmailMessage(policy=POLICY)
    msg["From"] = Address(display_name=header_text(display), addr_spec=addr)
    msg["Subject"] = header_text(subject, max_chars=180)
    if list_id_value:
        msg["List-Id"] = list_id_value
    msg["MIME-Version"] = "1.0"
    msg.make_alternative()
    msg.attach(_part(_TEXT_MARK, "plain"))  # type: ignore[arg-type]  # typeshed: MIMEPart is accepted
    msg.attach(_part(_HTML_MARK, "html"))  # type: ignore[arg-type]
    wire = msg.as_string(policy=POLICY)
    head, _, rest = wire.partition(_TEXT_MARK)
    between, _, tail = rest.partition(_HTML_MARK)
    return MailSkeleton(head=head, between=between, tail=tail, domain=addr.rpartition("@")[2])


def _b64(text: str) -> str:
    # RFC 2045 §6.8: base64 lines of at most 76 characters; CRLF on the wire.
    return base64.encodebytes(text.encode()).decode("ascii").replace("\n", "\r\n")


def assemble(
    skeleton: MailSkeleton,
    *,
    to: str,
    now: datetime,
    text: str,
    html: str,
    unsubscribe: Unsubscribe | None = None,
) -> bytes:
    """One recipient's complete message (CRLF line ends) for SES ``Content.Raw``.

    ``to`` must be a validated address; it is re-parsed here so a malformed one raises
    instead of producing a header.
    """
    recipient = Address(addr_spec=to)
    if not str(recipient).isascii() or recipient.addr_spec != to:
        raise ValueError(f"not a plain ASCII address: {to!r}")
    lines = [
        f"To: {recipient.addr_spec}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: {make_msgid(domain=skeleton.domain)}",
    ]
    head = CRLF.join(lines) + CRLF
    if unsubscribe:
        links = list_unsubscribe(unsubscribe.url, unsubscribe.mailto, unsubscribe.token)
        head += POLICY.fold("List-Unsubscribe", links)
        head += POLICY.fold("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    wire = head + skeleton.head + _b64(text) + skeleton.between + _b64(html) + skeleton.tail
    return wire.encode("ascii")


def build_message(
    *, sender: str, to: str, subject: str, text: str, html: str, now: datetime,
    list_id_value: str | None = None, unsubscribe: Unsubscribe | None = None,
) -> bytes:
    """A single message (e.g. a confirmation mail): :func:`prepare` + :func:`assemble`."""
    skeleton = prepare(sender=sender, subject=subject, list_id_value=list_id_value)
    return assemble(skeleton, to=to, now=now, text=text, html=html, unsubscribe=unsubscribe)
