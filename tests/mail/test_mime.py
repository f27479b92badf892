"""Raw MIME: both parts, RFC 2369/8058 headers kept verbatim, no header injection."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from earshot.mail.mime import Unsubscribe, assemble, build_message, header_text, list_id, prepare

NOW = datetime(2025, 1, 13, 8, tzinfo=UTC)
TOKEN = "T" * 43
UNSUB = Unsubscribe(url=f"https://api.earshot.example/unsubscribe?token={TOKEN}", mailto="u@earshot.example", token=TOKEN)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_message_has_both_parts_and_every_header() -> None:
    raw = build_message(sender="Earshot <digest@earshot.example>", to="ada@example.com", subject="Übersicht: 3 new",
                        text="plain ✓", html="<p>html ✓</p>", now=NOW,
                        list_id_value=list_id("ml", "ML", "earshot.example"), unsubscribe=UNSUB)
    assert b"\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")  # CRLF throughout
    msg = parse(raw)
    assert msg["From"] == "Earshot <digest@earshot.example>" and msg["To"] == "ada@example.com"
    assert msg["Subject"] == "Übersicht: 3 new"
    assert msg["Date"] == "Mon, 13 Jan 2025 08:00:00 +0000"
    assert msg["Message-ID"].endswith("@earshot.example>")
    assert msg["List-Unsubscribe"] == f"<{UNSUB.url}>, <mailto:u@earshot.example?subject=unsubscribe%20{TOKEN}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_body(("plain",)).get_content() == "plain ✓"
    assert msg.get_body(("html",)).get_content() == "<p>html ✓</p>"


def test_list_unsubscribe_is_never_rfc2047_encoded() -> None:
    long = Unsubscribe(url="https://x.example/unsubscribe?token=" + "A" * 43 + "&pad=" + "B" * 80,
                       mailto="unsubscribe@earshot.example", token="A" * 43)
    raw = build_message(sender="digest@earshot.example", to="a@example.com", subject="s", text="t", html="h",
                        now=NOW, unsubscribe=long)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" not in head.split(b"List-Unsubscribe:")[1].split(b"List-Unsubscribe-Post")[0]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))


@pytest.mark.parametrize("subject", [
    "Hi\r\nBcc: evil@attacker.example", "Hi\nBcc: evil@attacker.example", "Hi\rBcc: evil@attacker.example",
    "Hi\u2028Bcc: evil@attacker.example", "Hi\x00\x0bBcc: evil@attacker.example",
], ids=["crlf", "lf", "cr", "unicode-line-separator", "controls"])
def test_feed_text_cannot_inject_headers(subject: str) -> None:
    raw = build_message(sender="Earshot <digest@earshot.example>", to="a@example.com", subject=subject,
                        text="t", html="h", now=NOW)
    msg = parse(raw)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Hi Bcc: evil@attacker.example"


@pytest.mark.parametrize("to", ["a@example.com\r\nBcc: x@y.example", "not an address", "ä@example.com"])
def test_bad_recipient_raises_instead_of_making_a_header(to: str) -> None:
    with pytest.raises(ValueError):
        assemble(prepare(sender="digest@earshot.example", subject="s"), to=to, now=NOW, text="t", html="h")


def test_skeleton_is_shared_and_recipients_differ_only_where_they_should() -> None:
    skeleton = prepare(sender="Earshot <digest@earshot.example>", subject="Digest")
    one = parse(assemble(skeleton, to="a@example.com", now=NOW, text="for a", html="<p>a</p>", unsubscribe=UNSUB))
    two = parse(assemble(skeleton, to="b@example.com", now=NOW, text="for b", html="<p>b</p>"))
    assert (one["To"], two["To"]) == ("a@example.com", "b@example.com")
    assert one["Message-ID"] != two["Message-ID"]
    assert two["List-Unsubscribe"] is None
    assert two.get_body(("plain",)).get_content() == "for b"


def test_header_text_truncates_long_values() -> None:
    assert len(header_text("x" * 500, max_chars=50)) == 50
