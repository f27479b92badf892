"""Golden-file tests for the feed parser.

Each ``tests/fixtures/feeds/<name>.xml`` states its expectation in a header comment;
``<name>.expected.json`` is the reviewed output of ``parse_feed`` for it: the
``ParsedFeed`` as ``model_dump(mode="json")``, or ``{"error": ...}`` for a ParseError.

The whole module runs once per parser (``PARSERS``): ``auto`` (the lxml fast path, and
feedparser for what it declines) and ``feedparser`` (forced, as ``EARSHOT_PARSER``
allows), so every golden file and every behaviour below holds on both. Golden files
also hold on feedparser with its own item tags (``PARSER_PATHS``: what is used when the
expat pass and feedparser disagree on the items).

After a deliberate change in behaviour, regenerate and review every diff by hand:

    EARSHOT_REGEN_GOLDEN=1 .venv/bin/python -m pytest -q tests/ingest/test_parser.py
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import pickle
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from earshot.errors import MalformedFeed, NotAFeed, ParseError, UnsafeXml
from earshot.ingest import parser as parser_module
from earshot.ingest.fastparse import Declined, FastReader
from earshot.ingest.parser import PARSER_CHOICES, fallback_title, media_rss_audio, parse_fast, parse_feed
from earshot.models import Episode, ParsedFeed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
FEED_URL = "https://feeds.example.com/show/feed.xml"
REGENERATE = os.environ.get("EARSHOT_REGEN_GOLDEN") == "1"


@pytest.fixture(autouse=True, params=PARSER_CHOICES)
def parser_choice(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here calls ``parse_feed`` through this module's name for it: one run
    of the module per parser."""
    monkeypatch.setattr(sys.modules[__name__], "parse_feed",
                        functools.partial(parser_module.parse_feed, parser=request.param))
    return str(request.param)


def outcome(body: bytes, **options: Any) -> dict[str, Any]:
    """What parse_feed made of ``body``, as JSON-ready data."""
    try:
        parsed = parse_feed(body, url=FEED_URL, **options)
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


def _feedparser_tags_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the expat pass disagree with feedparser on the item count, so every item's
    tags come from feedparser (the path taken when the two do not line up)."""
    real_scan = parser_module._scan

    def scan(body: bytes) -> parser_module._Scan:
        result = real_scan(body)
        if result.items is None:
            return result
        return dataclasses.replace(result, items=[*result.items, parser_module._ItemTags()])

    monkeypatch.setattr(parser_module, "_scan", scan)


# Each way parse_feed can read items. A fast path, once it exists, is one more entry.
PARSER_PATHS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "feedparser-tags": _feedparser_tags_path,
}
# Where a path legitimately differs from the golden file, and why.
PATH_DIFFERENCES = {
    # feedparser keeps one podcast:transcript per item; the expat pass keeps them all.
    ("feedparser-tags", "podcasting20"),
}


@pytest.fixture(params=sorted(PARSER_PATHS))
def parser_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    PARSER_PATHS[request.param](monkeypatch)
    yield request.param


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.xml")), ids=lambda path: path.stem)
def test_golden_files_hold_on_every_parser_path(fixture: Path, parser_path: str) -> None:
    golden = json.loads(fixture.with_suffix(".expected.json").read_text(encoding="utf-8"))
    actual = outcome(fixture.read_bytes(), parser="feedparser")
    if (parser_path, fixture.stem) in PATH_DIFFERENCES:
        assert actual != golden, "no longer differs: drop it from PATH_DIFFERENCES"
    else:
        assert actual == golden


# The fixtures the fast path leaves to feedparser, and why; it reads all the others.
FAST_PATH_DECLINES = {
    "atom-podcast": "root <feed>",
    "atom-shared-id": "root <feed>",
    "billion-laughs": "DOCTYPE",
    "xxe": "DOCTYPE",
    "plain-doctype": "DOCTYPE",
    "html-page": "DOCTYPE",
    "empty-channel": "no items",
    "new-show": "no items",
    "new-show-undeclared-prefixes": "not well-formed",
    "not-well-formed": "not well-formed",
    "truncated": "not well-formed",
}


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.xml")), ids=lambda path: path.stem)
def test_the_fast_path_reads_every_fixture_it_can(fixture: Path, parser_choice: str) -> None:
    if parser_choice != "auto":
        pytest.skip("about the fast path itself")
    reason = FAST_PATH_DECLINES.get(fixture.stem)
    if reason is None:
        assert parse_fast(fixture.read_bytes(), url=FEED_URL).model_dump(mode="json") == outcome(fixture.read_bytes())
    else:
        with pytest.raises(Declined, match=reason):
            parse_fast(fixture.read_bytes(), url=FEED_URL)


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
        pytest.param("windows-1250", "Zpráva dne", id="windows-1250"),
        pytest.param("koi8-r", "Новости дня", id="koi8-r"),
        pytest.param("iso-8859-2", "Łódź", id="iso-8859-2"),
        pytest.param("iso-8859-15", "Prix : 5 €", id="iso-8859-15"),
    ],
)
def test_declared_encodings_are_decoded(encoding: str, title: str) -> None:
    parsed = parse_feed(rss(f"<title>{title}</title><item><title>x</title></item>", encoding=encoding))
    assert (parsed.feed.title, len(parsed.episodes), parsed.warnings) == (title, 1, [])


# The single-byte encodings the fast path reads (it leaves the others to feedparser).
FAST_PATH_ENCODINGS = {
    "windows-1251": "Новости «дня» — №5", "windows-1250": "Zpráva „dne“ – č. 5", "koi8-r": "Новости дня",
    "iso-8859-2": "Łódź Świętokrzyska", "iso-8859-15": "Prix : 5 € œuvre", "windows-1252": "Café « 5 € »",
    "iso-8859-1": "Café à 5 ¤",
}


@pytest.mark.parametrize("encoding", sorted(FAST_PATH_ENCODINGS))
def test_single_byte_encodings_read_alike_on_both_paths(encoding: str, parser_choice: str) -> None:
    if parser_choice != "auto":
        pytest.skip("compares the two paths itself")
    text = FAST_PATH_ENCODINGS[encoding]
    body = rss(f"<title>{text}</title><item><title>{text} 1</title><guid>e1</guid>"
               f"<description>&lt;p&gt;{text}&lt;/p&gt;</description>"
               f"<itunes:summary>{text}</itunes:summary></item>", encoding=encoding)
    fast = parse_fast(body, url=FEED_URL)  # read by the fast path, not declined
    assert fast.feed.title == text and fast.episodes[0].title == f"{text} 1"
    assert fast.model_dump(mode="json") == outcome(body, parser="feedparser")


def test_a_byte_its_encoding_leaves_undefined_goes_to_feedparser() -> None:
    # 0x98 is undefined in windows-1251: libxml2 refuses it, feedparser settles it
    body = rss("<title>x</title><item><title>y</title></item>", encoding="windows-1251").replace(b"y", b"\x98")
    with pytest.raises(Declined, match="not well-formed"):
        parse_fast(body, url=FEED_URL)
    assert outcome(body) == outcome(body, parser="feedparser")


def test_an_item_image_with_child_elements_goes_to_feedparser() -> None:
    # feedparser files the children of an item's <image> into the channel's image (when
    # there is one) or into the item: state the fast path does not copy
    body = rss("<title>t</title><image><url>https://e.example/c.png</url></image>"
               "<item><title>x</title><image><url>https://e.example/i.png</url><title>In image</title></image>"
               "<guid>e1</guid></item>")
    with pytest.raises(Declined, match="item <image>"):
        parse_fast(body, url=FEED_URL)
    assert outcome(body) == outcome(body, parser="feedparser")


# Show notes written more than once in an item: the first non-empty content wins, else the
# last summary; a description or itunes:summary after another summary is content. The
# fast path reads a summary's text only when the item ends without content.
CONTENT = "<content:encoded>&lt;p&gt;Full &lt;b&gt;notes&lt;/b&gt;&lt;/p&gt;</content:encoded>"
EMPTY_CONTENT = "<content:encoded>  </content:encoded>"
DESCRIPTION = "<description>&lt;p&gt;Short notes&lt;/p&gt;</description>"
SECOND_DESCRIPTION = "<description>Second &amp; last</description>"
ITUNES_SUMMARY = "<itunes:summary>Plain summary, 5 &lt; 6</itunes:summary>"
BASE64_DESCRIPTION = '<description mode="base64">PHA+aGk8L3A+</description>'
NOTES = {
    "description then content": DESCRIPTION + CONTENT,
    "content then description": CONTENT + DESCRIPTION,
    "description then itunes:summary": DESCRIPTION + ITUNES_SUMMARY,
    "itunes:summary then description": ITUNES_SUMMARY + DESCRIPTION,
    "two descriptions": DESCRIPTION + SECOND_DESCRIPTION,
    "summary, description, content": ITUNES_SUMMARY + DESCRIPTION + CONTENT,
    "empty content then description": EMPTY_CONTENT + DESCRIPTION,
    "empty content, content": EMPTY_CONTENT + CONTENT,
    "content twice": CONTENT + CONTENT.replace("Full", "Other"),
    "base64 description and content": BASE64_DESCRIPTION + CONTENT,
    "content and base64 description": CONTENT + BASE64_DESCRIPTION,
}


@pytest.mark.parametrize("notes", sorted(NOTES))
def test_notes_written_twice_read_alike_on_both_paths(notes: str, parser_choice: str) -> None:
    if parser_choice != "auto":
        pytest.skip("compares the two paths itself")
    body = rss('<title>t</title><item><guid>e1</guid><title>x</title>' + NOTES[notes] + "</item>").replace(
        b"<rss ", b'<rss xmlns:content="http://purl.org/rss/1.0/modules/content/" ')
    assert outcome(body) == outcome(body, parser="feedparser")
    if "base64" not in notes:
        assert parse_fast(body, url=FEED_URL).episodes[0].summary  # read by the fast path itself


# The common shape read directly on the fast path, its edges (out-of-range fields, zones
# feedparser's table does or does not know, extra words) and shapes left to feedparser.
PUB_DATES = [
    "Wed, 15 Jan 2020 10:00:00 +0100", "Thursday, 1 Feb 2024 23:59:59 -0530", "15 jan 2020 10:00 GMT",
    "SAT,  29 Feb 2020 00:00:00 EST", "Mon, 31 Apr 2020 10:00:00 +0000", "Mon, 30 Apr 2020 24:00:00 +0000",
    "Mon, 30 Apr 2020 23:59:60 +0000", "Tue, 1 Jan 0001 00:30:00 +0100", "Fri, 31 Dec 9999 23:00:00 -0200",
    "Fri, 14 Jun 2024 08:00:00 CET", "Fri, 14 Jun 2024 08:00:00 PDT", "Fri, 14 Jun 2024 08:00:00 mest",
    "Fri, 14 Jun 2024 08:00:00 +0000 (UTC)", "Fri, 14 Jun 24 08:00:00 +0000", "Fri,14 Jun 2024 08:00:00 +0000",
    "Fri, 14 June 2024 08:00:00 GMT+2", "Fri, 14 Jun 2024 08:00:00 +05:30", "Fri, 14 Jun 2024 08:00:00 Etc/GMT",
    "Fri, 14 Jun 2024", "2024-06-14T08:00:00Z", "Jun 14 2024 08:00:00 +0000", "Fri, 14 Jun 2024 8:0:0 +0000",
]


@pytest.mark.parametrize("written", PUB_DATES)
def test_dates_read_alike_on_both_paths(written: str, parser_choice: str) -> None:
    if parser_choice != "auto":
        pytest.skip("compares the two paths itself")
    body = rss(f"<title>t</title><item><guid>e1</guid><pubDate>{written}</pubDate></item>")
    fast = parse_fast(body, url=FEED_URL)
    assert fast.model_dump(mode="json") == outcome(body, parser="feedparser")


def test_an_xml_base_deep_in_an_item_goes_to_feedparser_wherever_the_body_is_cut() -> None:
    body = rss('<title>t</title><item><guid>e1</guid><description xml:base="https://other.example/">'
               "&lt;a href='x'&gt;x&lt;/a&gt;</description></item>")
    start = body.index(b"xml:base")
    for cut in range(start - 2, start + 10):
        reader = FastReader(lambda entry, tags: None)
        with pytest.raises(Declined, match="xml:base"):
            reader.feed(body[:cut])
            reader.feed(body[cut:])
            reader.close()
    assert outcome(body) == outcome(body, parser="feedparser")


@pytest.mark.parametrize("encoding", ["utf-8", "windows-1252", "iso-8859-1", "iso-8859-15"])
def test_utf8_read_as_latin1_upstream_is_repaired_in_every_encoding(encoding: str) -> None:
    # feedparser reads every document as UTF-8 and repairs such text whatever the
    # document's declared encoding; the fast path reads these encodings itself
    body = rss("<title>t</title><item><guid>e1</guid><title>CafÃ© au lait</title>"
               "<description>SchÃ¶n</description></item>", encoding=encoding)
    fast = parse_fast(body, url=FEED_URL)
    assert (fast.episodes[0].title, fast.episodes[0].summary) == ("Café au lait", "Schön")
    assert outcome(body) == outcome(body, parser="feedparser")


@pytest.mark.parametrize("attribute", ['base="https://other.example/dir/"', 'BASE = "https://other.example/dir/"',
                                       'xml:base="https://other.example/dir/"'])
def test_a_base_attribute_in_an_item_goes_to_feedparser(attribute: str) -> None:
    # feedparser resolves every later URL of the item against it, the guid too
    body = rss(f"<title>t</title><item><title {attribute}>x</title><guid>a</guid>"
               "<enclosure url='ep.mp3' type='audio/mpeg'/></item>")
    with pytest.raises(Declined, match="xml:base"):
        parse_fast(body, url=FEED_URL)
    assert outcome(body) == outcome(body, parser="feedparser")


@pytest.mark.parametrize("where", ["before the items", "after the items"])
def test_megabytes_beside_the_items_go_to_feedparser_before_the_tree_grows(where: str) -> None:
    # the channel's own elements are read when the next item (or the channel) ends: a
    # channel of megabytes besides its items is declined while it is being fed
    filler = "<!--" + "x" * 5_000_000 + "-->"
    items = "<item><guid>e1</guid><title>One</title></item>"
    body = rss("<title>t</title>" + (filler + items if where == "before the items" else items + filler))
    with pytest.raises(Declined, match="more than 1 MB besides its items"):
        parse_fast(body, url=FEED_URL)
    assert outcome(body) == outcome(body, parser="feedparser")
    assert [e["id"] for e in outcome(body)["episodes"]] == ["e1"]


def test_episodes_are_what_validating_their_values_makes() -> None:
    # the mapping builds an episode without validating values no bound could change
    body = rss('<title>t</title><item><guid>e1</guid><title>Ep &amp; 1</title><pubDate>Wed, 15 Jan 2020 10:00:00 '
               '+0100</pubDate><enclosure url="a/1.mp3" type="audio/mpeg" length="12"/><itunes:duration>1:02'
               "</itunes:duration><itunes:episode>3</itunes:episode><description>&lt;p&gt;Notes&lt;/p&gt;"
               "</description><link>https://e.example/1</link></item><item><title>Untitled?</title></item>")
    for episode in parse_feed(body, url=FEED_URL).episodes:
        validated = Episode(**{name: getattr(episode, name) for name in episode.model_fields_set})
        assert episode == validated and episode.model_fields_set == validated.model_fields_set
        assert episode.model_dump_json() == validated.model_dump_json()
        assert pickle.loads(pickle.dumps(episode)) == validated
    # A validator added to Episode must be weighed in parser._episode, which skips them
    # for values they cannot change (a transcript or chapters reference always validates).
    decorators = Episode.__pydantic_decorators__
    assert set(decorators.field_validators) == {"_drop_unlinked_transcripts", "_drop_unlinked_chapters"}
    assert not decorators.model_validators and not decorators.validators and not decorators.root_validators


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


# --------------------------------------------------------------- feeds with no items yet
@pytest.mark.parametrize(
    ("body", "warnings"),
    [
        pytest.param(b"<rss version='2.0'><channel><title>Soon</title></channel></rss>", [], id="titled-channel"),
        pytest.param(b"<rss><channel>\n</channel></rss>", ["the channel has no title"],
                     id="bare-channel"),
        pytest.param(b"<feed xmlns='http://www.w3.org/2005/Atom'><title>Soon</title></feed>", [], id="atom-feed"),
        pytest.param(b"<feed xmlns='http://www.w3.org/2005/Atom'/>", ["the channel has no title"],
                     id="empty-atom-feed"),
        pytest.param(b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#' "
                     b"xmlns='http://purl.org/rss/1.0/'><channel><title>Soon</title></channel></rdf:RDF>", [],
                     id="rss-1.0-channel"),
        pytest.param(b"<rss><channel><title>Soon</title><itunes:author>A</itunes:author></channel></rss>",
                     ["not well-formed XML: unbound prefix; recovered 0 items"], id="undeclared-itunes-prefix"),
        pytest.param(b"<rss><channel><podcast:locked>no</podcast:locked></channel></rss>",
                     ["not well-formed XML: unbound prefix; recovered 0 items",
                      "the channel has no title"], id="undeclared-podcast-prefix-only"),
    ],
)
def test_a_channel_without_items_is_a_feed_with_no_episodes_yet(body: bytes, warnings: list[str]) -> None:
    parsed = parse_feed(body)
    assert (parsed.episodes, parsed.warnings) == ([], warnings)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(b"<rss version='2.0'></rss>", NotAFeed, id="rss-without-channel"),
        pytest.param(b"<rss version='2.0'><notchannel/></rss>", NotAFeed, id="wrong-child"),
        pytest.param(b"<rss><redirect><newLocation>https://x.example/f</newLocation></redirect></rss>", NotAFeed,
                     id="redirect-document"),
        pytest.param(b"<rss version='2.0'><channel><title>Cut", MalformedFeed, id="cut-off-channel"),
        pytest.param(b"<rss><channel><title>Soon</title><itunes:author>A</itunes:author></rss>", MalformedFeed,
                     id="undeclared-prefix-and-broken"),
    ],
)
def test_no_channel_or_a_cut_off_one_is_still_refused(body: bytes, error: type[ParseError]) -> None:
    with pytest.raises(error):
        parse_feed(body)


# ------------------------------------------------------------------ identity
def _platform_items() -> tuple[bytes, list[bytes]]:
    """shared-guid-platform.xml split into its head and its 8 <item>s."""
    body = (FIXTURES / "shared-guid-platform.xml").read_bytes()
    head, _, rest = body.partition(b"    <item>")
    items = [b"    <item>" + chunk for chunk in rest.split(b"    <item>")]
    items[-1], tail = items[-1].split(b"  </channel>")
    return head + b"<!--items-->" + b"  </channel>" + tail, items


def test_items_sharing_a_guid_keep_the_same_ids_across_parses_and_reorderings() -> None:
    # Given the fixture where a platform stamped one guid on 8 distinct episodes
    template, items = _platform_items()
    as_listed = template.replace(b"<!--items-->", b"".join(items))
    reordered = template.replace(b"<!--items-->", b"".join(reversed(items)))
    newest_two_gone = template.replace(b"<!--items-->", b"".join(items[2:]))
    # When it is fetched twice, reordered, and after the feed dropped its two newest items
    first, second = parse_feed(as_listed, url=FEED_URL), parse_feed(as_listed, url=FEED_URL)
    ids = {e.title: e.id for e in first.episodes}
    # Then 8 episodes, and every episode keeps its id in every version of the feed
    assert len(ids) == len(set(ids.values())) == 8
    assert {e.title: e.id for e in second.episodes} == ids
    assert {e.title: e.id for e in parse_feed(reordered, url=FEED_URL).episodes} == ids
    assert {e.title: e.id for e in parse_feed(newest_two_gone, url=FEED_URL).episodes}.items() <= ids.items()


def test_the_identity_rule_holds_when_the_xml_is_broken() -> None:
    # Given the same items in a document cut short after its last item (loose parser)
    template, items = _platform_items()
    whole = parse_feed(template.replace(b"<!--items-->", b"".join(items)), url=FEED_URL)
    broken_body = template.replace(b"<!--items-->", b"".join(items)).rsplit(b"</channel>", 1)[0]
    # When it is parsed
    broken = parse_feed(broken_body, url=FEED_URL)
    # Then it is recovered with the same 8 ids
    assert broken.warnings[0].startswith("not well-formed XML")
    assert [e.id for e in broken.episodes] == [e.id for e in whole.episodes]


def test_a_re_upload_under_the_same_guid_stays_one_episode() -> None:
    body = rss("<title>t</title>"
               "<item><title>A</title><guid>g</guid><enclosure url='https://cdn.example/a.mp3' type='audio/mpeg'/></item>"
               "<item><title>A (fixed)</title><guid>g</guid>"
               "<enclosure url='https://chtbl.com/track/X/cdn.example/a.mp3' type='audio/mpeg'/></item>")
    parsed = parse_feed(body)
    assert [(e.id, e.title) for e in parsed.episodes] == [("g", "A")]


# ------------------------------------------------------------------ fallback titles
_MAY_3 = datetime(2024, 5, 3, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("itunes_title", "audio_url", "published", "summary", "expected"),
    [
        pytest.param("iTunes title", "https://cdn/x.mp3", _MAY_3, "notes", ("iTunes title", "itunes:title"),
                     id="itunes-title-first"),
        pytest.param("", "https://cdn/shows/ep-12.mp3", _MAY_3, "notes", ("ep-12", "enclosure file name"),
                     id="then-file-name"),
        pytest.param("", "https://cdn/a%20b%C3%A9.m4a?x=1#t", None, "", ("a bé", "enclosure file name"),
                     id="file-name-decoded-query-dropped"),
        pytest.param("", "https://cdn/download/", None, "", ("download", "enclosure file name"),
                     id="trailing-slash"),
        pytest.param("", "https://cdn/", _MAY_3, "", ("Episode of 3 May 2024", "date"), id="no-file-name-then-date"),
        pytest.param("", "https://cdn/noextension", None, "", ("noextension", "enclosure file name"),
                     id="no-extension"),
        pytest.param("", None, None, "First line\nSecond", ("First line", "description"), id="then-description"),
        pytest.param("", None, None, "word " * 100, ("word " * 18 + "word…", "description"), id="description-clipped"),
        pytest.param("", None, None, "", ("Untitled episode", "nothing"), id="nothing-at-all"),
    ],
)
def test_fallback_title(itunes_title: str, audio_url: str | None, published: datetime | None, summary: str,
                        expected: tuple[str, str]) -> None:
    assert fallback_title(itunes_title, audio_url, published, summary) == expected


def test_untitled_items_keep_the_ids_they_had_before_titles_fell_back() -> None:
    # The hash id of an item with neither guid nor enclosure nor link is made from the
    # title as written (empty) and the date; a fallback title must not change it.
    body = rss("<title>t</title><item><pubDate>Fri, 03 May 2024 10:00:00 GMT</pubDate>"
               "<description>x</description></item>")
    (episode,) = parse_feed(body).episodes
    assert episode.title == "Episode of 3 May 2024"
    assert episode.id == "h:" + hashlib.sha256(b"\nFri, 03 May 2024 10:00:00 GMT").hexdigest()[:24]


# ------------------------------------------------------------------ Media RSS
def _mc(url: str, **attrs: str) -> dict[str, str]:
    return {"url": url, **{k.lower(): v for k, v in attrs.items()}}


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        pytest.param([_mc("https://c/a.mp3", type="audio/mpeg", fileSize="10", duration="61")],
                     ("https://c/a.mp3", "audio/mpeg", 10, 61), id="one-audio"),
        pytest.param([_mc("https://c/v.mp4", type="video/mp4"), _mc("https://c/a.mp3", type="audio/mpeg")],
                     ("https://c/a.mp3", "audio/mpeg", None, None), id="audio-over-video"),
        pytest.param([_mc("https://c/v.mp4", type="video/mp4", fileSize="5")],
                     ("https://c/v.mp4", "video/mp4", 5, None), id="video-when-no-audio"),
        pytest.param([_mc("https://c/s.mp3", type="audio/mpeg", expression="sample", fileSize="99"),
                      _mc("https://c/f.mp3", type="audio/mpeg", fileSize="1")],
                     ("https://c/f.mp3", "audio/mpeg", 1, None), id="full-over-sample"),
        pytest.param([_mc("https://c/big.mp3", type="audio/mpeg", fileSize="99"),
                      _mc("https://c/def.mp3", type="audio/mpeg", isDefault="true", fileSize="1")],
                     ("https://c/def.mp3", "audio/mpeg", 1, None), id="default-over-larger"),
        pytest.param([_mc("https://c/small.mp3", type="audio/mpeg", fileSize="1"),
                      _mc("https://c/big.mp3", type="audio/mpeg", fileSize="99")],
                     ("https://c/big.mp3", "audio/mpeg", 99, None), id="largest"),
        pytest.param([_mc("https://c/1.mp3", type="audio/mpeg"), _mc("https://c/2.mp3", type="audio/mpeg")],
                     ("https://c/1.mp3", "audio/mpeg", None, None), id="first-when-sizes-unknown"),
        pytest.param([_mc("https://c/a.mp3", medium="audio")], ("https://c/a.mp3", None, None, None),
                     id="medium-audio-without-type"),
        pytest.param([_mc("https://c/a.ogg")], ("https://c/a.ogg", None, None, None), id="untyped-audio-file-name"),
        pytest.param([_mc("https://c/a.mp3", medium="image")], None, id="declared-image-is-not-audio"),
        pytest.param([_mc("https://c/cover.jpg", type="image/jpeg")], None, id="image-type"),
        pytest.param([_mc("javascript:alert(1)", type="audio/mpeg")], None, id="unsafe-url"),
        pytest.param([{"type": "audio/mpeg"}], None, id="no-url"),
        pytest.param([], None, id="none"),
    ],
)
def test_media_rss_audio(contents: list[dict[str, str]], expected: tuple | None) -> None:
    assert media_rss_audio(contents, None) == expected


def test_media_rss_relative_urls_are_joined_to_the_feed_url() -> None:
    assert media_rss_audio([_mc("ep.mp3", type="audio/mpeg")], FEED_URL)[0] == "https://feeds.example.com/show/ep.mp3"

