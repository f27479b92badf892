"""What feedparser (6.0.x, on Python's expat) does with DTDs and entities, written down as
tests, and proof that Earshot's guard refuses every entity declaration before feedparser,
on both parser paths; and that the fast path's lxml parser, even with its own DOCTYPE
check taken away, reads no file, fetches nothing and expands no entity.

The probe runs feedparser *without* Earshot in front, on documents whose external
references point at a canary file and at the loopback feed server, so "nothing was read"
and "nothing was fetched" are observed, not assumed. docs/reliability.md summarizes it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest

from earshot.errors import UnsafeXml
from earshot.ingest import fastparse
from earshot.ingest.parser import PARSER_CHOICES, ParserChoice, parse_feed
from tests.support.feedserver import FeedServer, Serve

CANARY = "CANARY-7f3a-never-store-me"
ITEM = "<item><title>I {ref}</title><guid>x</guid></item>"


def doc(subset: str, ref: str = "", *, one_line: bool, doctype: str = "rss") -> bytes:
    """An RSS document with ``subset`` as its internal DTD subset and ``ref`` in titles."""
    nl = "" if one_line else "\n"
    head = f"<?xml version='1.0'?>{nl}<!DOCTYPE {doctype} [{nl}{subset}{nl}]>{nl}" if subset else ""
    return (f"{head}<rss version='2.0'><channel><title>T {ref}</title>"
            f"{ITEM.format(ref=ref)}</channel></rss>").encode()


def laughs(levels: int = 9) -> str:
    return "<!ENTITY l0 'lol'>" + "".join(f"<!ENTITY l{i} '{f'&l{i - 1};' * 10}'>" for i in range(1, levels + 1))


@dataclass
class Probe:
    id: str
    body: Callable[[str, str], bytes]  # (canary file URL, loopback server base URL) -> document
    # what feedparser was observed to do (the channel title it produced, and bozo)
    feedparser_title: str
    feedparser_bozo: bool
    earshot_refuses: bool = True


PROBES = [
    Probe("internal-entity-multi-line", lambda f, s: doc("<!ENTITY who 'Inner'>", "&who;", one_line=False),
          feedparser_title="T &who;", feedparser_bozo=True),
    Probe("internal-entity-one-line", lambda f, s: doc("<!ENTITY who 'Inner'>", "&who;", one_line=True),
          feedparser_title="T Inner", feedparser_bozo=False),
    Probe("external-entity-file-multi-line", lambda f, s: doc(f"<!ENTITY x SYSTEM '{f}'>", "&x;", one_line=False),
          feedparser_title="T &x;", feedparser_bozo=True),
    Probe("external-entity-file-one-line", lambda f, s: doc(f"<!ENTITY x SYSTEM '{f}'>", "&x;", one_line=True),
          feedparser_title="T", feedparser_bozo=False),
    Probe("external-entity-http-one-line",
          lambda f, s: doc(f"<!ENTITY x SYSTEM '{s}/entity.txt'>", "&x;", one_line=True),
          feedparser_title="T", feedparser_bozo=False),
    Probe("parameter-entity-file", lambda f, s: doc(f"<!ENTITY % p SYSTEM '{f}'> %p;", one_line=True),
          feedparser_title="T", feedparser_bozo=False),
    Probe("parameter-entity-http", lambda f, s: doc(f"<!ENTITY % p SYSTEM '{s}/evil.dtd'> %p;", one_line=False),
          feedparser_title="T", feedparser_bozo=False),
    Probe("billion-laughs-multi-line", lambda f, s: doc(laughs().replace("><", ">\n<"), "&l9;", one_line=False),
          feedparser_title="T &l9;", feedparser_bozo=True),
    Probe("billion-laughs-one-line", lambda f, s: doc(laughs(), "&l9;", one_line=True),
          # expat >= 2.4 stops the expansion at its amplification limit, after ~1 s of CPU;
          # feedparser then falls back to its loose parser, which keeps "&l9;" as text
          feedparser_title="T &l9;", feedparser_bozo=True),
    Probe("external-dtd-file", lambda f, s: (f"<?xml version='1.0'?><!DOCTYPE rss SYSTEM '{f}'>"
                                             "<rss version='2.0'><channel><title>T</title></channel></rss>").encode(),
          feedparser_title="T", feedparser_bozo=False, earshot_refuses=False),
    Probe("external-dtd-http", lambda f, s: (f"<?xml version='1.0'?><!DOCTYPE rss SYSTEM '{s}/evil.dtd'>"
                                             "<rss version='2.0'><channel><title>T</title></channel></rss>").encode(),
          feedparser_title="T", feedparser_bozo=False, earshot_refuses=False),
    Probe("netscape-rss-0.91-doctype",
          lambda f, s: (b"<?xml version='1.0'?><!DOCTYPE rss PUBLIC '-//Netscape Communications//DTD RSS 0.91//EN' "
                        b"'http://my.netscape.com/publish/formats/rss-0.91.dtd'><rss version='0.91'><channel>"
                        b"<title>T</title><item><title>I</title><link>http://x.example/</link></item></channel></rss>"),
          feedparser_title="T", feedparser_bozo=False, earshot_refuses=False),
]


@pytest.fixture
def canary_url(tmp_path: Path) -> str:
    path = tmp_path / "secret.txt"
    path.write_text(CANARY)
    return path.as_uri()


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
def test_what_feedparser_does_on_its_own(probe: Probe, canary_url: str, feed_server: FeedServer) -> None:
    # Given a document whose external references point at a canary file and the loopback server
    feed_server.route("/entity.txt", Serve(CANARY.encode(), headers={"Content-Type": "text/plain"}))
    feed_server.route("/evil.dtd", Serve(f"<!ENTITY leak '{CANARY}'>".encode(),
                                         headers={"Content-Type": "application/xml-dtd"}))
    body = probe.body(canary_url, feed_server.url(""))
    # When feedparser alone parses it
    result = feedparser.parse(io.BytesIO(body))
    # Then it never reads the file nor fetches anything, and does what we observed
    assert CANARY not in repr(result), "feedparser resolved an external entity"
    assert feed_server.requests == [], "feedparser fetched a DTD or entity over HTTP"
    assert result.feed.get("title") == probe.feedparser_title
    assert bool(result.bozo) is probe.feedparser_bozo


@pytest.mark.parametrize("parser", PARSER_CHOICES)
@pytest.mark.parametrize("probe", [p for p in PROBES if p.earshot_refuses], ids=[p.id for p in PROBES if p.earshot_refuses])
def test_earshot_refuses_every_entity_declaration_before_feedparser(
    probe: Probe, parser: ParserChoice, canary_url: str, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    real_parse = feedparser.parse
    monkeypatch.setattr(feedparser, "parse", lambda *a, **k: calls.append(a) or real_parse(*a, **k))
    with pytest.raises(UnsafeXml):
        parse_feed(probe.body(canary_url, feed_server.url("")), url="https://feeds.example/feed.xml", parser=parser)
    assert calls == [], "refused before any expansion: feedparser never saw the document"
    assert feed_server.requests == []


@pytest.mark.parametrize("parser", PARSER_CHOICES)
@pytest.mark.parametrize("probe", [p for p in PROBES if not p.earshot_refuses],
                         ids=[p.id for p in PROBES if not p.earshot_refuses])
def test_a_doctype_without_entity_declarations_still_parses(
    probe: Probe, parser: ParserChoice, canary_url: str, feed_server: FeedServer
) -> None:
    # Real feeds carry the RSS 0.91 DOCTYPE; a DOCTYPE alone declares nothing and loads nothing
    parsed = parse_feed(probe.body(canary_url, feed_server.url("")), parser=parser)
    assert parsed.feed.title == "T" and CANARY not in parsed.model_dump_json()
    assert feed_server.requests == []


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
def test_the_fast_paths_xml_parser_reads_fetches_and_expands_nothing(
    probe: Probe, canary_url: str, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the fast path without its own DOCTYPE check (the bytes before the root)
    feed_server.route("/entity.txt", Serve(CANARY.encode(), headers={"Content-Type": "text/plain"}))
    feed_server.route("/evil.dtd", Serve(f"<!ENTITY leak '{CANARY}'>".encode(),
                                         headers={"Content-Type": "application/xml-dtd"}))
    monkeypatch.setattr(fastparse, "_check_prolog", lambda prolog: "utf-8")
    # When lxml reads each hostile document
    items: list[object] = []
    try:
        result = repr((fastparse.read_feed(probe.body(canary_url, feed_server.url("")),
                                           lambda entry, tags: items.append(entry)), items))
    except fastparse.Declined as exc:
        result = str(exc)
    # Then it declines it or reads it unexpanded, and never touches the file or the network
    assert CANARY not in result
    assert "lollol" not in result and "Inner" not in result
    assert feed_server.requests == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_entity_declarations_in_wide_encodings_are_refused(encoding: str) -> None:
    # expat may stop before the root in a multi-byte encoding; the fallback scan still refuses
    body = doc("<!ENTITY x SYSTEM 'file:///etc/passwd'>", "&x;", one_line=False).decode().replace(
        "version='1.0'?>", f"version='1.0' encoding='{encoding.upper()}'?>").encode(encoding)
    with pytest.raises(UnsafeXml):
        parse_feed(body)


# The document shapes the fast path reads besides plain UTF-8 RSS: every single-byte
# encoding it accepts, items carrying a text-only <image> or <source>, and blank lines
# before the XML declaration. (encoding, extra item elements, bytes before "<?xml")
SHAPES = {
    **{f"encoding-{name}": (name, "", "") for name in sorted(set(fastparse._ENCODINGS) - {"utf-8", "utf8"})},
    "item-image-and-source": ("utf-8", "<image>https://e.example/i.png</image><source url='https://e.example/'>S</source>",
                              ""),
    "blank-lines-before-declaration": ("utf-8", "", "\r\n\n  \n"),
}


def shaped(body: bytes, encoding: str, item_extra: str, blank: str) -> bytes:
    text = body.decode().replace("<guid>x</guid>", f"<guid>x</guid>{item_extra}")
    if text.startswith("<?xml version='1.0'?>"):
        text = text.replace("<?xml version='1.0'?>", f"<?xml version='1.0' encoding='{encoding}'?>", 1)
    else:
        text = f"<?xml version='1.0' encoding='{encoding}'?>{text}"
    return (blank + text).encode(encoding)


REFUSED = [p for p in PROBES if p.earshot_refuses]


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("probe", REFUSED, ids=[p.id for p in REFUSED])
def test_every_shape_the_fast_path_reads_refuses_entities_on_both_paths(
    probe: Probe, shape: str, canary_url: str, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = shaped(probe.body(canary_url, feed_server.url("")), *SHAPES[shape])
    for parser in PARSER_CHOICES:
        with pytest.raises(UnsafeXml):
            parse_feed(body, url="https://feeds.example/feed.xml", parser=parser)
    # and lxml itself, with the fast path's DOCTYPE check taken away, expands nothing
    monkeypatch.setattr(fastparse, "_check_prolog", lambda prolog: fastparse._ENCODINGS[SHAPES[shape][0]])
    items: list[object] = []
    try:
        result = repr((fastparse.read_feed(body, lambda entry, tags: items.append(entry)), items))
    except fastparse.Declined as exc:
        result = str(exc)
    assert CANARY not in result and "lollol" not in result and "Inner" not in result
    assert feed_server.requests == []


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_the_fast_path_reads_is_read_by_it(shape: str) -> None:
    # (so the test above exercises the fast path, not a decline before it)
    body = shaped(doc("", "", one_line=True), *SHAPES[shape])
    assert [e.id for e in parse_feed(body, parser="auto").episodes] == ["x"]
    fastparse.read_feed(body, lambda entry, tags: None)
    assert parse_feed(body, parser="auto") == parse_feed(body, parser="feedparser")
