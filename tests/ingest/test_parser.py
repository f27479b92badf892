"""Golden-file tests for the feed parser.

Each ``tests/fixtures/feeds/<name>.xml`` states its expectation in a header comment;
``<name>.expected.json`` is the reviewed output of ``parse_feed`` for it: the
``ParsedFeed`` as ``model_dump(mode="json")``, or ``{"error": ...}`` for a ParseError.

After a deliberate change in behaviour, regenerate and review every diff by hand:

    EARSHOT_REGEN_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_parser.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from earshot.errors import MalformedFeed, NotAFeed, ParseError, UnsafeXml
from earshot.ingest import parser as parser_module
from earshot.ingest.parser import parse_feed
from earshot.models import ParsedFeed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
FEED_URL = "https://feeds.example.com/show/feed.xml"
REGENERATE = os.environ.get("EARSHOT_REGEN_GOLDEN") == "1"


def outcome(body: bytes) -> dict[str, Any]:
    """What parse_feed made of ``body``, as JSON-ready data."""
    try:
        parsed = parse_feed(body, url=FEED_URL)
    except ParseError as exc:
        return {"error": {"type": type(exc).__name__, "kind": exc.kind, "message": str(exc)}}
    return parsed.model_dump(mode="json")


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.xml")), ids=lambda path: path.stem)
def test_parse_feed_matches_golden_file(fixture: Path) -> None:
    golden = fixture.with_suffix(".expected.json")
    actual = outcome(fixture.read_bytes())
    if REGENERATE:
        text = json.dumps(actual, indent=2, ensure_ascii=False) + "\n"
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no {golden.name}: run with EARSHOT_REGEN_GOLDEN=1, then review it"
    assert actual == json.loads(golden.read_text(encoding="utf-8"))


def test_every_golden_file_has_its_fixture() -> None:
    orphans = [p.name for p in FIXTURES.glob("*.expected.json")
               if not p.with_name(p.name.removesuffix(".expected.json") + ".xml").exists()]
    assert orphans == []


# Bodies not worth a fixture file each: built here, where the bytes are visible.
def rss(channel: str, *, encoding: str = "utf-8", declared: str | None = None) -> bytes:
    """A small RSS 2.0 document (iTunes namespace declared) with ``channel`` in <channel>."""
    declaration = f'<?xml version="1.0" encoding="{declared or encoding}"?>'
    root = '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
    return f"{declaration}{root}<channel>{channel}</channel></rss>".encode(encoding)


def with_doctype(subset: str, encoding: str) -> bytes:
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'
    return f"{declaration}\n<!DOCTYPE rss [\n{subset}\n]>\n<rss/>".encode(encoding)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(b"", NotAFeed, id="empty"),
        pytest.param(b" \r\n\t ", NotAFeed, id="whitespace"),
        pytest.param(b'{"version": "https://jsonfeed.org/version/1.1"}', NotAFeed, id="json-feed"),
        pytest.param(b"\x1f\x8b\x08\x00" + bytes(64), NotAFeed, id="gzip-bytes"),
        pytest.param(b"Service Unavailable", NotAFeed, id="plain-text"),
        pytest.param(b"<feed xmlns='http://www.w3.org/2005/Atom'/>", NotAFeed, id="empty-atom"),
        # feedparser.parse(b"/a/path") would open that file; parse_feed must not.
        pytest.param(str(FIXTURES / "podcasting20.xml").encode(), NotAFeed, id="local-file-path"),
        pytest.param(with_doctype('<!ENTITY a "b">', "utf-16"), UnsafeXml, id="entity-in-utf16"),
        # pyexpat cannot decode Shift_JIS: the byte-level fallback must catch this one.
        pytest.param(with_doctype('<!ENTITY a "日本">', "shift_jis"), UnsafeXml, id="entity-in-sjis"),
        pytest.param(
            with_doctype('<!ENTITY % remote SYSTEM "http://127.0.0.1/x.dtd"> %remote;', "utf-8"),
            UnsafeXml, id="parameter-entity",
        ),
        pytest.param(with_doctype('<!ENTITY a "b">', "utf-8").replace(b"utf-8", b"x-nonesuch"),
                     UnsafeXml, id="entity-in-unknown-encoding"),
        pytest.param(b"<rss version='2.0'><channel><title>Cut", MalformedFeed, id="cut-before-items"),
    ],
)
def test_unusable_bodies_raise_typed_errors(body: bytes, error: type[ParseError]) -> None:
    with pytest.raises(error):
        parse_feed(body)


@pytest.mark.parametrize(
    ("encoding", "title"),
    [
        pytest.param("utf-16", "Grüße", id="utf-16-with-bom"),
        pytest.param("shift_jis", "日本語", id="shift-jis"),  # expat cannot, feedparser can
        pytest.param("windows-1251", "Новости", id="windows-1251"),
    ],
)
def test_declared_encodings_are_decoded(encoding: str, title: str) -> None:
    parsed = parse_feed(rss(f"<title>{title}</title><item><title>x</title></item>", encoding=encoding))
    assert (parsed.feed.title, len(parsed.episodes), parsed.warnings) == (title, 1, [])


def test_unknown_declared_encoding_falls_back_to_utf8() -> None:
    body = rss("<title>Grüße</title><item><title>x</title></item>").replace(b"utf-8", b"x-nonesuch")
    parsed = parse_feed(body)
    assert (parsed.feed.title, len(parsed.episodes)) == ("Grüße", 1)
    assert parsed.warnings == ["encoding: document declared as x-nonesuch, but parsed as utf-8"]


def test_declared_utf8_that_is_really_windows_1252_parses_with_a_warning() -> None:
    body = rss("<title>café</title><item><title>x</title></item>", encoding="cp1252", declared="utf-8")
    parsed = parse_feed(body)
    assert parsed.feed.title == "café"
    assert parsed.warnings == ["encoding: document declared as utf-8, but parsed as windows-1252"]


def test_guid_is_not_resolved_against_the_feed_url() -> None:
    # Given a permalink-by-default guid that is not a URL
    body = rss("<title>t</title><item><guid>ep-7</guid></item>")
    # When the feed is parsed at two different URLs (e.g. before and after a 301)
    ids = {parse_feed(body, url=u).episodes[0].id for u in ("https://a.example/f", "https://b.example/r")}
    # Then the episode keeps the same id
    assert ids == {"ep-7"}


_fixture_bodies = [p.read_bytes() for p in sorted(FIXTURES.glob("*.xml"))]


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_truncation_or_corruption_raises_only_parse_errors(data: st.DataObject) -> None:
    body = data.draw(st.sampled_from(_fixture_bodies))
    cut = data.draw(st.integers(0, len(body)))
    junk = data.draw(st.binary(max_size=8))
    where = data.draw(st.integers(0, cut))
    mangled = body[:where] + junk + body[where:cut]
    try:
        assert isinstance(parse_feed(mangled), ParsedFeed)
    except ParseError:
        pass


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_parse_errors(body: bytes) -> None:
    try:
        assert isinstance(parse_feed(body), ParsedFeed)
    except ParseError:
        pass


_field_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)


@settings(max_examples=150, deadline=None)
@given(title=_field_text, date=_field_text, duration=_field_text, length=_field_text,
       href=_field_text, notes=_field_text)
def test_any_field_values_map_without_crashing(
    title: str, date: str, duration: str, length: str, href: str, notes: str
) -> None:
    # Given a well-formed feed whose item fields hold arbitrary text (XML-escaped)
    item = (f"<title>{escape(title)}</title><pubDate>{escape(date)}</pubDate>"
            f"<itunes:duration>{escape(duration)}</itunes:duration>"
            f"<enclosure url={quoteattr(href)} length={quoteattr(length)} type='audio/mpeg'/>"
            f"<description>{escape(notes)}</description>")
    body = rss(f"<title>t</title><item>{item}</item>")
    # When it is parsed, Then the outcome is a feed or a typed error, never a crash
    try:
        assert isinstance(parse_feed(body, url=FEED_URL), ParsedFeed)
    except ParseError:
        pass


def test_huge_text_is_capped_so_an_episode_fits_one_item() -> None:
    notes = "<p>" + "word " * 300_000 + "</p>"
    body = (f"<rss version='2.0'><channel><title>{'T' * 5000}</title><item><guid>g</guid>"
            f"<title>{'A' * 1_048_576}</title><description><![CDATA[{notes}]]></description>"
            "</item></channel></rss>").encode()
    parsed = parse_feed(body)
    (episode,) = parsed.episodes
    assert len(episode.title) <= parser_module.MAX_TITLE_CHARS
    assert len(episode.summary) <= parser_module.MAX_SUMMARY_CHARS and episode.summary.endswith("…")
    assert len(episode.summary_html) <= parser_module.MAX_SUMMARY_HTML_CHARS + 7
    assert len(parsed.feed.title) <= parser_module.MAX_TITLE_CHARS
    assert len(episode.model_dump_json().encode()) < 400_000
