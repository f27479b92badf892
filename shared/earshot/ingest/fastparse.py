"""The fast path: one streaming lxml pass over a well-formed RSS 2.0 document. No I/O.

:class:`FastReader` is fed the body in chunks (as it arrives, or slices of it). The
parser reports only the elements named item, entry or channel; when an item ends, its
children are read from the tree into a :class:`RawItem` (the values feedparser files
that Earshot reads; ``parser`` takes the same from feedparser's entry on the fallback,
so one mapping serves both), plus its Podcasting 2.0 and Media RSS tags.
HTML is not touched here: both paths hand it to ``sanitize`` later, so what an
episode says does not depend on which parser read it. The channel's own elements are
kept whole (:class:`ChannelParts`) for ``earshot.ingest.channel`` to read at the end.

Safety: the parser loads no DTD, makes no network access and expands no entity
(``resolve_entities=False, load_dtd=False, no_network=True``, libxml2's size guards on:
no ``huge_tree``), and the reader declines any document with a DOCTYPE before the
root element is read, so an entity declaration is refused by the same code on both
paths (``parser``'s expat pass). Each item is cleared once read and dropped with the
channel's elements before it, so memory holds one item's tree at a time, not the
document's (and megabytes of anything else between items are declined as they come).

What it reads the way feedparser 6 does, because the output must be the same
Episodes: element and attribute names are case-insensitive; namespaces map to
feedparser's prefixes (an unknown namespace keeps the prefix the document gave it, and
Atom elements inside RSS act as their RSS namesakes); the first non-empty title wins; a
description or ``itunes:summary`` that follows another summary of the item, before any
``content:encoded``, is filed as content; RSS titles and summaries are HTML when they
look like it (a closing tag or an entity, only known tags and entities); text is
stripped, mis-decoded UTF-8 repaired (in a document of any encoding: feedparser reads
them all as UTF-8) and C1 controls read as Windows-1252; a guid
without ``isPermaLink="false"`` is the link when there is no ``<link>`` before it.

It declines -- :class:`Declined`, and ``parser`` runs feedparser instead -- whatever it
cannot read exactly so: XML that is not well-formed, an encoding other than UTF-8 and
the single-byte ones in ``_ENCODINGS``, a DOCTYPE, a root other than ``<rss>``, an
element beside ``<channel>``, ``xml:base`` or a plain ``base`` attribute, markup inside
a text element, megabytes of anything besides items, and the
elements whose feedparser handling depends on more state than is worth copying (an
item ``<image>`` or ``<source>`` with child elements, Atom content).
Declining is never wrong, only slower.
"""

from __future__ import annotations

import html.entities
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

from lxml import etree

# Podcasting 2.0 (see parser.PODCAST_NAMESPACES): the settled namespace and the spec URL.
PODCAST_NAMESPACES = frozenset({
    "https://podcastindex.org/namespace/1.0",
    "https://github.com/podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
})
# feedparser 6's prefixes for the namespaces whose elements change a field Earshot reads;
# keys lowercased, as feedparser matches them. Any other namespace keeps its prefix.
_PREFIXES = {
    "": "",
    "http://backend.userland.com/rss": "",
    "http://backend.userland.com/rss2": "",
    "http://blogs.law.harvard.edu/tech/rss": "",
    "http://purl.org/rss/1.0/modules/rss091#": "",
    "http://www.w3.org/2005/atom": "",
    "http://purl.org/atom/ns#": "",
    "http://purl.org/rss/1.0/": "",
    "http://my.netscape.com/rdf/simple/0.9/": "",
    "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes",
    "http://example.com/dtds/podcast-1.0.dtd": "itunes",
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://search.yahoo.com/mrss/": "media",
    "http://search.yahoo.com/mrss": "media",
    "http://www.w3.org/1999/xhtml": "xhtml",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
}
_VERSIONS = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_BASE_ATTRIBUTE = re.compile(rb"base[ \t\r\n]*(?:=|$)")  # searched in lowercased bytes: a literal first

# Item children read here, by feedparser name.
_PUBLISHED = frozenset({"pubdate", "published", "issued", "dcterms:issued"})
_UPDATED = frozenset({"updated", "modified", "dc:date", "dcterms:modified"})
_ITEM_TEXT = frozenset({"itunes:title", "itunes:duration", "itunes:episode", "itunes:season"})
# Elements whose feedparser handling touches a field Earshot reads in ways not copied here.
_DECLINED = frozenset({
    "abstract", "content", "body", "xhtml:body", "fullitem", "image", "itunes:link", "source", "entry", "item",
    "channel", "feed", "info",
})
# Item children that feedparser reads into fields Earshot ignores, but that reset its
# title lock (read here when they have no child elements).
_UNLOCKING = frozenset({"image", "source"})
# In the channel, what would change how feedparser files the first item's summaries.
_CHANNEL_DECLINED = frozenset({"content", "body", "xhtml:body", "fullitem", "content:encoded", "source", "entry",
                               "feed", "channel"})
_AUTHORS = frozenset({"author", "dc:creator", "dc:author", "managingeditor", "itunes:author"})

# feedparser's looks_like_html: its sanitizer's acceptable elements and HTML's entities.
_HTML_ELEMENTS = frozenset(
    "a abbr acronym address area article aside audio b big blockquote br button canvas caption center cite "
    "code col colgroup command datagrid datalist dd del details dfn dialog dir div dl dt em event-source "
    "fieldset figcaption figure font footer form h1 h2 h3 h4 h5 h6 header hr i img input ins kbd keygen "
    "label legend li m map menu meter multicol nav nextid noscript ol optgroup option output p pre progress "
    "q s samp section select small sound source spacer span strike strong sub sup table tbody td textarea "
    "tfoot th thead time tr tt u ul var video".split()
)
_CLOSE_TAG = re.compile(r"</(\w+)>")
_ENTITY_REF = re.compile(r"&#?\w+;")
_TAG_NAMES = re.compile(r"</?(\w+)")
_ENTITY_NAMES = re.compile(r"&(\w+);")
# C1 controls read as Windows-1252 (feedparser's table: the five undefined bytes stay).
_CP1252 = {c: bytes([c]).decode("cp1252") for c in range(0x80, 0xA0) if c not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}
_C1_CONTROL = re.compile("[\x80-\x9f]")
_URI_SLASHES = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_LINK_ENTITY = re.compile(r"&([A-Za-z0-9_]+);")
_XML_DECLARATION = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")
# Blank lines before the XML declaration: a common defect (XML allows nothing before
# it) that every parser path skips, so the document is read, not recovered.
BLANKS = b" \t\r\n"
BLANK_BEFORE_DECLARATION = re.compile(rb"[ \t\r\n]+<\?xml[ \t\r\n]")
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_CHUNK_BYTES = 64 * 1024
# Declared encodings read here (as the Python codec feedparser would decode with): the
# single-byte ones decode every byte the same way in libxml2 and in Python.
# (Checked byte for byte, 0x80-0xFF, against libxml2: the same characters, and the same
# bytes undefined -- which libxml2 refuses, so the document goes to feedparser. libxml2
# does not know the name "latin-1": such a document goes to feedparser too.)
_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "iso-8859-1": "latin-1", "iso8859-1": "latin-1",
              "latin1": "latin-1", "windows-1252": "cp1252", "cp1252": "cp1252",
              "windows-1251": "cp1251", "cp1251": "cp1251", "windows-1250": "cp1250", "cp1250": "cp1250",
              "koi8-r": "koi8_r", "iso-8859-2": "iso8859_2", "iso-8859-15": "iso8859_15"}
_MAX_CHANNEL_CHARS = 1_000_000
_MAX_OUTSIDE_ITEMS_BYTES = 4 * _MAX_CHANNEL_CHARS  # (the bytes hold markup and blanks too)


class Declined(Exception):
    """The fast path will not read this document; the reason says why (for benchmarks)."""


@dataclass
class ItemTags:
    """The Podcasting 2.0 and Media RSS tags of one item, as attribute maps in document
    order (Media RSS attribute names lowercased, as feedparser gives them)."""

    transcripts: list[dict[str, str]] = field(default_factory=list)
    chapters: list[dict[str, str]] = field(default_factory=list)
    media: list[dict[str, str]] = field(default_factory=list)  # <media:content>, in or out of <media:group>


UNPARSED: Any = object()
"""``RawItem.date_parsed`` when the date is still as written (the fast path's)."""


@dataclass(slots=True)
class RawItem:
    """One item as read, before it is mapped to its episode: the values feedparser
    files for it that Earshot reads. The fast path reads them here; the fallback takes
    them from feedparser's entry (``parser._raw_item``), so both go through one mapping.
    Text is stripped and repaired as feedparser does; None is "no such element"."""

    guid: str | None = None  # <guid> (or <id>): the last one's text
    guid_is_link: bool = False  # feedparser's guidislink: the first guid is a permalink and no link came before it
    link: str | None = None
    title: str = ""  # the title feedparser files: the first non-empty <title>, or a later media:title
    title_type: str = ""  # its MIME type ("text/html" when an RSS title looks like HTML)
    content: str = ""  # the first non-empty content (content:encoded, or a second summary)
    content_type: str = ""
    content_base: str | None = None  # an xml:base in effect there (feedparser's path only)
    summary: str = ""  # the last description or itunes:summary filed as the summary
    summary_type: str = ""
    summary_base: str | None = None
    enclosures: list[tuple[str, str, str]] = field(default_factory=list)  # (href, type, length), in order
    image: str | None = None  # itunes:image
    itunes_title: str | None = None
    itunes_duration: str | None = None
    itunes_episode: str | None = None
    itunes_season: str | None = None
    date: str | None = None  # pubDate (or published...) as written, else updated (or modified...)
    date_parsed: Any = UNPARSED  # what feedparser parsed it to, where feedparser read the item


@dataclass
class ChannelParts:
    """The channel's own elements (items left out), kept whole, in document order, for
    ``earshot.ingest.channel`` to read; and what feedparser would also see of them."""

    elements: list[Any] = field(default_factory=list)
    items_before: list[int] = field(default_factory=list)  # how many items came before each element
    root_attributes: dict[str, str] = field(default_factory=dict)  # of <rss>, as lxml gives them
    channel_attributes: dict[str, str] = field(default_factory=dict)  # of <channel>, likewise
    namespaces: dict[str | None, str] = field(default_factory=dict)  # declared on <rss> and <channel>
    root_namespaces: dict[str | None, str] = field(default_factory=dict)  # declared on <rss>
    codec: str = "utf-8"
    root_xml_attributes: str = ""  # <rss>'s attributes as written back into channel_xml

    def channel_xml(self) -> bytes:
        """The elements as a small RSS document of their own, for feedparser: the route
        for a channel the channel reader declines (its fields are then feedparser's by
        construction). In the document's own encoding, so feedparser treats its text alike."""
        inner = "".join(etree.tostring(element, encoding="unicode", with_tail=False) for element in self.elements)
        # Every namespace declared around the channel, used or not: feedparser maps
        # prefixes by every declaration it has seen.
        declarations = "".join(f" xmlns{':' + prefix if prefix else ''}={quoteattr(uri)}"
                               for prefix, uri in self.namespaces.items())
        document = (f'<?xml version="1.0" encoding="{self.codec}"?>'
                    f"<rss{self.root_xml_attributes}{declarations}><channel>{inner}</channel></rss>")
        return document.encode(self.codec, "xmlcharrefreplace")


def _text_chars(element: Any) -> int:
    """About how many characters ``element`` would take written out: its text, tails and
    attribute values, and a flat 40 for each element's tags (so that a channel of a
    million empty elements is as big as it is)."""
    if not len(element) and not element.attrib:
        return 40 + len(element.text or "")
    return sum(40 + len(e.text or "") + len(e.tail or "") + sum(map(len, e.attrib.values()))
               for e in element.iter())


@dataclass
class FastFeed:
    """What the fast path read besides the items (each handed over as a RawItem): the
    format, the channel's own elements, the item count."""

    version: str
    channel: ChannelParts  # the channel's own elements: ``earshot.ingest.channel`` reads them
    items: int  # each handed to the reader's ``on_item`` as it was read
    podcast_guid: str | None
    blank_prolog: bool = False  # blank lines before the XML declaration were skipped


def read_feed(body: bytes, on_item: ItemSink) -> FastFeed:
    """Read a whole body, fed in slices as if it were arriving; raises :class:`Declined`."""
    reader = FastReader(on_item)
    for start in range(0, len(body), _CHUNK_BYTES):
        reader.feed(body[start:start + _CHUNK_BYTES])
    return reader.close()


ItemSink = Callable[[RawItem, ItemTags], None]
"""Receives each item, in document order, as soon as it has been read."""


class FastReader:
    """Incremental reader: ``feed`` chunks in order, then ``close`` for the result."""

    def __init__(self, on_item: ItemSink) -> None:
        self._on_item = on_item
        self._items = 0
        self._parser = etree.XMLPullParser(
            events=("start", "end"), tag=("{*}item", "{*}entry", "{*}channel"),
            resolve_entities=False, load_dtd=False, no_network=True,
            huge_tree=False, remove_comments=True, remove_pis=True, collect_ids=False,
        )
        self._head = b""
        self._checked_prolog = False
        self._version = ""
        self._root_checked = False
        self._channel_element: Any = None
        self._root_attributes = ""
        self._codec = "utf-8"
        self._channel = ChannelParts()
        self._channel_chars = 0
        self._in_item = False  # an item has started and not ended (as of the last events)
        self._outside_items = 0  # bytes fed since the last item ended
        self._channel_state = _ItemState()
        self._podcast_guid: str | None = None
        self._blank_prolog = False
        self._base_possible = False  # a base attribute may be in the bytes so far
        self._tail = b""  # the last bytes fed, for a "base" split between chunks

    def feed(self, chunk: bytes) -> None:
        if not self._checked_prolog:
            self._head += chunk
            match = _FIRST_ELEMENT.search(self._head)
            if match is None and len(self._head) < 1024 * 1024:
                return  # the root element has not started yet
            head = self._head
            if BLANK_BEFORE_DECLARATION.match(head):
                # read as parser reads it on every path: without the blank lines
                head = head.lstrip(BLANKS)
                self._blank_prolog = True
                match = _FIRST_ELEMENT.search(head)
            self._set_encoding(_check_prolog(head[: match.start() if match else len(head)]))
            self._checked_prolog = True
            chunk, self._head = head, b""
        if not self._base_possible:
            # feedparser resolves URLs against an xml:base or a plain base attribute
            # (any case), written "base" and "=" in the bytes of every encoding read
            # here (a "base" at the end of a chunk counts): without one, the
            # per-element check below is skipped.
            self._base_possible = _BASE_ATTRIBUTE.search((self._tail + chunk).lower()) is not None
            self._tail = chunk[-8:]
        if not self._in_item:
            # The channel's own elements are read when the next item ends (or the
            # channel does): a document that is megabytes of something besides items
            # goes to feedparser before its tree grows.
            self._outside_items += len(chunk)
            if self._outside_items > _MAX_OUTSIDE_ITEMS_BYTES:
                raise Declined("a channel of more than 1 MB besides its items")
        try:
            self._parser.feed(chunk)
        except etree.XMLSyntaxError as exc:
            raise Declined(f"not well-formed: {exc}") from None
        self._drain()

    def close(self) -> FastFeed:
        if not self._checked_prolog:
            self._set_encoding(_check_prolog(self._head))
            self._checked_prolog = True
            self.feed(b"")
        try:
            root = self._parser.close()
        except etree.XMLSyntaxError as exc:
            raise Declined(f"not well-formed: {exc}") from None
        self._drain()
        self._root(root)
        _outside_the_channel(root, self._channel_element)
        if self._channel_element is None:
            raise Declined("no RSS channel")
        if not self._items:
            raise Declined("no items")  # feedparser settles what an empty document is
        self._channel.codec = self._codec
        self._channel.root_xml_attributes = self._root_attributes
        return FastFeed(version=self._version, channel=self._channel, items=self._items,
                        podcast_guid=self._podcast_guid, blank_prolog=self._blank_prolog)

    def _set_encoding(self, codec: str) -> None:
        self._codec = codec

    # ----------------------------------------------------------------- events

    def _drain(self) -> None:
        # The parser reports only elements named item, entry or channel (in any
        # namespace), at any depth: everything else is read from the tree when its item
        # or the channel ends, so there is no event per element of an item.
        for event, element in self._parser.read_events():
            name = _name(element)
            if name == "item" or name == "entry":
                if event == "start":
                    self._item_start(element, name)
                else:
                    self._item_end(element)
            elif name == "channel":
                if event == "start":
                    self._channel_start(element)
                else:
                    self._channel_end(element)
            # (else: an element of an unknown namespace that is named so, read as any other)

    def _root(self, root: Any) -> None:
        """Check the root element once: ``<rss>``, no DOCTYPE; note its version."""
        if self._root_checked:
            return
        name = _name(root)
        if name != "rss":
            raise Declined(f"root <{name}>")
        if root.getroottree().docinfo.doctype:
            raise Declined("DOCTYPE")
        if _has_base(root):
            raise Declined("xml:base")
        self._channel.root_attributes = dict(root.attrib)  # for the channel reader
        self._channel.root_namespaces = dict(root.nsmap)
        version = _attributes(root).get("version", "")
        self._version = _VERSIONS.get(version) or ("rss20" if version.startswith("2.") else "rss")
        self._root_attributes = "".join(
            f" {'xml:' if key.startswith('{http://www.w3.org/XML/1998/namespace}') else ''}"
            f"{key.rpartition('}')[2]}={quoteattr(value)}"
            for key, value in root.attrib.items()
            if not key.startswith("{") or key.startswith("{http://www.w3.org/XML/1998/namespace}")
        )
        self._root_checked = True

    def _channel_start(self, channel: Any) -> None:
        root = channel.getparent()
        self._root(channel if root is None else root)
        if root is None or root.getparent() is not None:
            raise Declined("a channel inside another element")
        if self._channel_element is not None:
            raise Declined("a second channel")
        if _has_base(channel):
            raise Declined("xml:base")
        _outside_the_channel(root, channel)
        self._channel_element = channel
        self._channel.channel_attributes = dict(channel.attrib)  # for the channel reader
        self._channel.namespaces = dict(channel.nsmap)

    def _channel_end(self, channel: Any) -> None:
        # The channel's own elements after its last item (an item deletes those before it).
        for child in channel:
            self._channel_child(child)
        channel.clear(keep_tail=False)

    def _item_start(self, item: Any, name: str) -> None:
        if not self._root_checked:
            self._root(item.getroottree().getroot())
        parent = item.getparent()
        if parent is None or parent is not self._channel_element:
            if parent is not None and parent.getparent() is None:
                raise Declined("an item outside the channel")
            raise Declined("an item inside another element")
        if name == "entry":
            raise Declined("channel <entry>")
        self._in_item = True

    def _item_end(self, item: Any) -> None:
        self._in_item, self._outside_items = False, 0
        channel = self._channel_element
        # The channel's own elements before this item, in document order (they can
        # change how feedparser files the item's summaries), then the item itself.
        while True:
            first = channel[0]
            if first is item:
                break
            self._channel_child(first)
            del channel[0]  # (a channel element stays whole in ChannelParts)
        self._items += 1
        self._read(item)
        item.clear(keep_tail=False)
        del channel[0]

    def _read(self, item: Any) -> None:
        if self._base_possible:
            for element in item.iter():
                if element.attrib and _has_base(element):
                    raise Declined("xml:base")
        raw = RawItem()
        tags = ItemTags()
        self._read_item(item, raw, tags)
        self._on_item(raw, tags)

    def _channel_child(self, element: Any) -> None:
        name = _name(element)
        if name == "item":
            # an <Item> (feedparser's names are case-insensitive; the parser reports
            # the lowercase tag only): an item all the same
            self._items += 1
            self._read(element)
            return
        if self._base_possible:
            for inner in element.iter():
                if inner.attrib and _has_base(inner):
                    raise Declined("xml:base")
        self._read_channel_child(name, element)

    # ---------------------------------------------------------------- channel

    def _read_channel_child(self, name: str, element: Any) -> None:
        """Keep the channel's own element whole for the channel reader (see
        :class:`ChannelParts`); track the one piece of feedparser state that reaches into items."""
        if name in _CHANNEL_DECLINED:
            raise Declined(f"channel <{name}>")
        channel = self._channel
        channel.elements.append(element)
        channel.items_before.append(self._items)
        self._channel_chars += _text_chars(element)
        if self._channel_chars > _MAX_CHANNEL_CHARS:
            raise Declined("a channel of more than 1 MB besides its items")
        if name in ("description", "dc:description", "media:description", "abstract"):
            _description(self._channel_state, None, element)
        elif name in ("itunes:summary", "summary"):
            _summary(self._channel_state, None, element)
        elif name == "podcast:guid" and self._podcast_guid is None and _namespace(element) in PODCAST_NAMESPACES:
            self._podcast_guid = (element.text or "").strip() or None

    # ------------------------------------------------------------------- item

    def _read_item(self, item: Any, raw: RawItem, tags: ItemTags) -> None:
        if item.attrib:
            attrs = _attributes(item)
            if attrs.get("rdf:about") or attrs.get("about") or attrs.get("href") or attrs.get("lastmod"):
                raise Declined("item attributes")
        # feedparser's "has content" flag is one for the document, reset when an item
        # ends: a channel description filed as content carries it into the next item.
        state = _ItemState(has_content=self._channel_state.has_content)
        self._channel_state.has_content = False
        skipped = _SKIPPED_TAGS
        published: str | None = None
        updated: str | None = None
        for child in item:
            tag = child.tag
            if tag in skipped:
                continue  # a tag none of the branches below reads or declines (most tags)
            name = _TAG_NAMES_SEEN.get(tag) or _name(child)
            if name not in _ITEM_CHILDREN_SEEN and not name.startswith("podcast:"):
                if tag in _TAG_NAMES_SEEN and len(skipped) < 4096:
                    skipped.add(tag)  # its name does not depend on the document's prefixes
                continue
            if name in _DECLINED:
                if name in _UNLOCKING and not len(child):
                    # feedparser keeps nothing Earshot reads of an item's <image> or
                    # <source> (text only: the RSS 2.0 shapes), but either one unlocks
                    # the title, so that a later <title> of the item wins.
                    state.title_locked = False
                    continue
                raise Declined(f"item <{name}>")
            if name.startswith("podcast:") and _namespace(child) in PODCAST_NAMESPACES:
                local = name.partition(":")[2]
                if local == "transcript":
                    tags.transcripts.append(dict(child.attrib))
                elif local == "chapters":
                    tags.chapters.append(dict(child.attrib))
                continue
            # (a Podcasting 2.0 element always has the "podcast:" name: it was read above)
            if name == "media:content" or name == "media:group":
                if name == "media:content":
                    tags.media.append({key.lower(): value for key, value in child.attrib.items()})
                elif name == "media:group":
                    for grandchild in child:
                        inner = _name(grandchild)
                        if inner == "media:content":
                            tags.media.append({key.lower(): value for key, value in grandchild.attrib.items()})
                        elif inner in _DECLINED or (len(grandchild) and inner in _TEXT_CHILDREN):
                            raise Declined(f"<{inner}> in media:group")
                        elif inner == "media:title":
                            _media_title(state, raw, grandchild)
                        elif inner == "media:description":
                            _description(state, raw, grandchild)
                continue
            if len(child) and (name in _TEXT_CHILDREN or name in _AUTHORS):
                raise Declined(f"markup inside <{name}>")
            if name == "title" or name == "dc:title":
                if not state.title_locked:
                    raw.title_type, raw.title = _detail(child, "text/plain")
                    if raw.title:
                        state.title_locked = True
            elif name == "enclosure":
                attrs = _attributes(child)
                href = attrs.get("url", attrs.get("uri", attrs.get("href")))
                raw.enclosures.append((href or "", attrs.get("type", ""), attrs.get("length", "")))
            elif name == "link":
                _link(raw, child)
            elif name == "guid" or name == "id":
                _guid(raw, child)
            elif name in _PUBLISHED:
                published = _text(child)
            elif name in _ITEM_TEXT:
                value = _text(child)
                if name == "itunes:duration":
                    raw.itunes_duration = value
                elif name == "itunes:episode":
                    raw.itunes_episode = value
                elif name == "itunes:season":
                    raw.itunes_season = value
                else:
                    raw.itunes_title = value
            elif name in ("description", "dc:description", "media:description"):
                _description(state, raw, child)
            elif name == "itunes:summary" or name == "summary":
                _summary(state, raw, child)
            elif name == "content:encoded":
                state.has_content = True
                state.saw_summary_key = True
                if not raw.content or child.attrib:  # (a later content is never shown)
                    _content(raw, _detail(child, "text/html"))
            elif name == "itunes:image":
                attrs = _attributes(child)
                href = attrs.get("href") or attrs.get("url")
                if href:
                    raw.image = href
            elif name == "media:title":
                _media_title(state, raw, child)
            elif name in _UPDATED:
                updated = _text(child)
        if not raw.content and state.summary_element is not None:
            raw.summary_type, raw.summary = _detail(state.summary_element, state.summary_type)
        # RSS has pubDate (feedparser's "published"); Atom requires <updated>: a
        # published date is the item's date when there is one, even an empty one.
        raw.date = published if published is not None else updated


_TEXT_CHILDREN = frozenset({
    "title", "dc:title", "media:title", "description", "dc:description", "media:description", "itunes:summary",
    "summary", "content:encoded", "link", "guid", "id", "itunes:title", "itunes:duration", "itunes:episode",
    "itunes:season",
}) | _PUBLISHED | _UPDATED
# Every item child name that _read_item reads or declines, besides "podcast:" ones.
_ITEM_CHILDREN_SEEN = _TEXT_CHILDREN | _DECLINED | _AUTHORS | {"media:content", "media:group", "enclosure",
                                                               "itunes:image"}


@dataclass(slots=True)
class _ItemState:
    """feedparser's per-item bookkeeping that decides where a value lands."""

    title_locked: bool = False
    has_content: bool = False
    saw_summary_key: bool = False  # 'summary' in the context
    summary_element: Any = None  # the summary filed last, read only if the item has no content
    summary_type: str = "text/html"  # its default MIME type


def _media_title(state: _ItemState, raw: RawItem, element: Any) -> None:
    """feedparser reads ``media:title`` as a title that never locks the title in."""
    if not state.title_locked:
        raw.title_type, raw.title = _detail(element, "text/plain")


def _description(state: _ItemState, raw: RawItem | None, element: Any) -> None:
    """A description: the item's summary (None: the channel's, where only the state
    it leaves counts), or its content after another summary."""
    if state.saw_summary_key and not state.has_content:
        _as_content(state, raw, element)
        return
    if raw is None:
        _detail(element, "text/html")  # (declines what it cannot read)
        return
    _file_summary(state, element, "text/html")
    state.saw_summary_key = True


def _summary(state: _ItemState, raw: RawItem | None, element: Any) -> None:
    if state.saw_summary_key and not state.has_content:
        _as_content(state, raw, element)
        return
    if raw is None:
        _detail(element, "text/plain")
    else:
        _file_summary(state, element, "text/plain")
    state.saw_summary_key = True


def _file_summary(state: _ItemState, element: Any, default_type: str) -> None:
    """The last summary filed is the item's summary, but only shown when the item has no
    content: its text is read when the item ends, and only then (most podcast items
    carry their notes twice, in content:encoded and in a description)."""
    if element.attrib:
        _detail(element, default_type)  # what it declines, it declines now
    state.summary_element, state.summary_type = element, default_type


def _as_content(state: _ItemState, raw: RawItem | None, element: Any) -> None:
    """feedparser files a second summary of an item, before any content, as content."""
    state.has_content = True
    if raw is None:
        return  # a channel's content is not read
    if not raw.content or element.attrib:
        _content(raw, _detail(element, "text/plain"))


def _content(raw: RawItem, detail: tuple[str, str]) -> None:
    if not raw.content:  # the first non-empty content is the show notes
        raw.content_type, raw.content = detail


def _link(raw: RawItem, element: Any) -> None:
    """An item's RSS ``<link>`` (text) or Atom-style ``<link href rel type>`` (an
    enclosure link counts as an enclosure)."""
    attrs = _attributes(element)
    rel = attrs.setdefault("rel", "alternate")
    mime = attrs.setdefault("type", "application/atom+xml" if rel == "self" else "text/html")
    href = attrs.get("url", attrs.get("uri", attrs.get("href")))
    if href:
        href = _resolve(href)
        if rel == "alternate" and _content_type(mime) in _HTML_TYPES:
            raw.link = href
        elif rel == "enclosure":
            raw.enclosures.append((href, mime, attrs.get("length", "")))
        return
    value = _resolve(_text(element))
    # feedparser's repair of query strings it once took for entity references
    raw.link = _LINK_ENTITY.sub(r"&\g<1>", value.replace("&amp;", "&")) if "&" in value else value


def _guid(raw: RawItem, element: Any) -> None:
    is_link = _attributes(element).get("ispermalink", "true") == "true" if element.attrib else True
    value = _text(element)
    if is_link and value:
        value = _resolve(value)
    if raw.guid is None:  # the first guid says whether the guid is the link
        raw.guid_is_link = is_link and raw.link is None
    raw.guid = value
    if is_link and raw.link is None:
        raw.link = value


def _detail(element: Any, default_type: str) -> tuple[str, str]:
    """A feedparser ``*_detail``: the MIME type and the value (an RSS "plain text"
    value that looks like HTML is HTML)."""
    if element.attrib:
        attrs = _attributes(element)
        mime = _content_type(attrs.get("type", default_type))
        if attrs.get("mode") == "base64" or not (mime.startswith("text/") or mime.endswith(("+xml", "/xml"))):
            raise Declined("base64 content")  # feedparser decodes it
    else:
        mime = default_type  # "text/plain" or "text/html": what _content_type gives back for them
    value = _text(element)
    if mime == "text/plain" and _looks_like_html(value):
        mime = "text/html"
    return mime, value


def _text(element: Any) -> str:
    """The element's text as feedparser stores it."""
    return repaired(element.text)


def repaired(text: str | None) -> str:
    """Text as feedparser stores it: stripped, mis-decoded UTF-8 repaired (in a document
    of any encoding: feedparser reads them all as UTF-8), C1 controls read as
    Windows-1252. The channel reader uses it too."""
    value = (text or "").strip()
    if not value or value.isascii():
        return value
    try:  # UTF-8 that was decoded as Latin-1 somewhere upstream
        value = value.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    if _C1_CONTROL.search(value):
        value = value.translate(_CP1252)
    return value


def _looks_like_html(text: str) -> bool:
    if "</" not in text and "&" not in text:
        return False  # neither pattern below can match (most titles: no regex call)
    if not (_CLOSE_TAG.search(text) or _ENTITY_REF.search(text)):
        return False
    if any(tag.lower() not in _HTML_ELEMENTS for tag in _TAG_NAMES.findall(text)):
        return False
    return all(name in html.entities.entitydefs for name in _ENTITY_NAMES.findall(text))


def _content_type(value: str) -> str:
    value = value.lower()
    return _CONTENT_TYPES.get(value, value)


_CONTENT_TYPES = {"text": "text/plain", "plain": "text/plain", "html": "text/html", "xhtml": "application/xhtml+xml"}


def _resolve(uri: str) -> str:
    """feedparser's URI fix-up with no base URL: extra slashes after the scheme go."""
    slashes = uri.find("://")
    if slashes < 0 or uri[slashes + 3:slashes + 4] != "/":
        return uri  # nothing the pattern would change (the common case: no regex call)
    return _URI_SLASHES.sub(r"\1\3", uri)


def _name(element: Any) -> str:
    """The element's name as feedparser sees it: ``prefix:local``, lowercased."""
    tag = element.tag
    name = _TAG_NAMES_SEEN.get(tag)
    if name is not None:
        return name
    if not isinstance(tag, str):
        return ""
    if tag[0] != "{" or tag[1:].partition("}")[0].lower() in _PREFIXES:
        # The document's prefix does not matter: the name depends on the tag alone.
        name = _feedparser_name(tag, None)
        if len(_TAG_NAMES_SEEN) < 4096:
            _TAG_NAMES_SEEN[tag] = name
        return name
    key = (tag, element.prefix)
    name = _NAMES.get(key)
    if name is None:
        name = _feedparser_name(tag, element.prefix)
        if len(_NAMES) < 4096:  # a hostile feed's endless invented names are not kept
            _NAMES[key] = name
    return name


_SKIPPED_TAGS: set[Any] = set()  # item children's tags that _read_item neither reads nor declines
_NAMES: dict[tuple[str, str | None], str] = {}  # names repeat on every item: work each out once
_TAG_NAMES_SEEN: dict[str, str] = {}  # the same, for tags whose name does not depend on the prefix


def _feedparser_name(tag: str, given_prefix: str | None) -> str:
    if tag[0] != "{":
        return tag.lower()
    namespace, _, local = tag[1:].partition("}")
    prefix = _PREFIXES.get(namespace.lower())
    if prefix is None:
        if namespace in PODCAST_NAMESPACES or namespace.lower() in PODCAST_NAMESPACES:
            prefix = "podcast"
        else:
            prefix = given_prefix or ""
    return f"{prefix}:{local.lower()}" if prefix else local.lower()


def _namespace(element: Any) -> str:
    tag = element.tag
    return tag[1:].partition("}")[0].lower() if isinstance(tag, str) and tag[:1] == "{" else ""


def _attributes(element: Any) -> dict[str, str]:
    """Attribute names lowercased, as feedparser gives them (``rel`` and ``type`` values
    too); namespaced ones as ``prefix:name`` for the namespaces feedparser knows."""
    out: dict[str, str] = {}
    for key, value in element.items():
        if key[0] == "{":
            namespace, _, local = key[1:].partition("}")
            namespace = namespace.lower()
            prefix = "xml" if namespace == "http://www.w3.org/xml/1998/namespace" else _PREFIXES.get(namespace, "")
            key = f"{prefix}:{local}" if prefix else local
        key = key.lower()
        out[key] = value.lower() if key in ("rel", "type") else value
    return out


def _has_base(element: Any) -> bool:
    """An xml:base, or a plain base attribute in any case: feedparser resolves every URL
    after it against it (guids too), which the fast path does not copy."""
    return any(key == _XML_BASE or key.lower() == "base" for key in element.keys())


def _outside_the_channel(root: Any, channel: Any) -> None:
    """Decline an element beside the channel: feedparser files some of them with the feed
    (an ``itunes:image`` or a ``<link href>`` after ``</channel>``...)."""
    for element in root:
        if element is not channel:
            raise Declined(f"<{_name(element)}> outside the channel")


def _check_prolog(prolog: bytes) -> str:
    """Decline what only feedparser settles: other encodings, a DOCTYPE (and with it
    any entity declaration, which the expat pass then refuses)."""
    if prolog.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in prolog[:4]:
        raise Declined("UTF-16 or UTF-32")
    data = prolog.removeprefix(b"\xef\xbb\xbf")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data or b"<!doctype" in data:
        raise Declined("DOCTYPE")
    match = _XML_DECLARATION.match(data)
    declared = match.group(1).decode("ascii").lower() if match else "utf-8"
    codec = _ENCODINGS.get(declared)
    if codec is None or (codec != "utf-8" and data is not prolog):
        raise Declined(f"encoding {declared}")
    return codec
