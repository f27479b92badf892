"""The fast path's channel reader: a channel's own elements -> the feed-level values
feedparser 6 gives for them. No I/O.

``read_channel`` walks the elements ``fastparse`` kept whole (:class:`ChannelParts`:
the channel's children other than items, in document order, with how many items came
before each) and gives the feedparser-shaped values ``parser`` maps to ``FeedInfo``:
``title_detail``, ``link``, ``summary_detail``, ``subtitle_detail``, ``image.href``,
``language``, ``author``, ``podcast_guid``, ``ttl``, ``generator``. Their rules are
copied from feedparser 6.0's handlers (``mixin.py``, ``namespaces/_base.py``,
``itunes.py``, ``dc.py``, ``mediarss.py``), because the fallback reads the same
documents with feedparser itself:

- element names are feedparser's: lowercased, namespaces mapped to its prefixes (its
  whole table, and any namespace with ``backend.userland.com/rss`` in it is RSS), an
  unknown namespace keeping the document's prefix; an element it has no handler for
  stores its text (or, with attributes, its attributes) under its name, so ``<ttl>``
  and ``podcast:guid`` are read that way;
- the title: a non-empty title locks the title at its depth, and a later title at that
  depth or deeper is not stored; ``<image>`` and ``<textInput>`` unlock it and their own
  non-empty title locks it one level deeper, so a channel title after them (or after an
  item) is stored again; ``media:title`` is stored when not locked and never locks;
- ``<link>``: text, or an ``href`` (``url``, ``uri``) with rel ``alternate`` and an HTML
  type; a ``<guid>``/``<id>`` that is a permalink is the link when there is none yet;
  ``<channel href>`` is a link;
- the image: ``itunes:image`` (``href``, else ``url``) replaces the image, ``<image><url>``
  sets its ``href``; whichever comes last wins;
- the description: ``<description>`` is the subtitle, unless a summary was already read
  and no content since, when it is filed as content; ``itunes:subtitle`` is the
  subtitle; ``itunes:summary`` the summary, or content on the same condition;
- the author: the text of the last ``author``/``managingEditor``/``itunes:author``/
  ``dc:creator``, unless ``itunes:owner`` follows it: its name and email are written
  into the last author's details and the author becomes "name (email)" of those
  details, as feedparser's ``_save_author`` and ``_sync_author_detail`` do;
- the language: ``xml:lang`` (or ``lang``) on ``<rss>``, replaced by ``<language>``;
- text is stripped, mis-decoded UTF-8 repaired (feedparser's parser always works in
  UTF-8, whatever the document's encoding) and C1 controls read as Windows-1252; RSS
  "plain text" that looks like HTML is HTML.

Anything else it is not sure of raises :class:`Declined`, and ``parser`` hands the
channel's elements to feedparser as a small document of their own, as before: a
handler of feedparser's not copied here, markup inside a text element, another child
in ``<image>``, ``<textInput>`` or ``itunes:owner``, namespaced attributes where
feedparser's names for them could differ, a prefix that feedparser would map to another
namespace's, a date that feedparser's date parser fails on. Declining is never wrong,
only slower.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from earshot.ingest.fastparse import (
    _HTML_TYPES,
    _LINK_ENTITY,
    ChannelParts,
    Declined,
    _content_type,
    _detail,
    _resolve,
    repaired,
)

# feedparser 6's namespace table (``_FeedParserMixin.namespaces``), keys lowercased as it
# matches them, prefixes as it spells them.
FEEDPARSER_NAMESPACES = {
    "": "",
    "http://backend.userland.com/rss": "",
    "http://blogs.law.harvard.edu/tech/rss": "",
    "http://purl.org/rss/1.0/": "",
    "http://my.netscape.com/rdf/simple/0.9/": "",
    "http://example.com/newformat#": "",
    "http://example.com/necho": "",
    "http://purl.org/echo/": "",
    "uri/of/echo/namespace#": "",
    "http://purl.org/pie/": "",
    "http://purl.org/atom/ns#": "",
    "http://www.w3.org/2005/atom": "",
    "http://purl.org/rss/1.0/modules/rss091#": "",
    "http://webns.net/mvcb/": "admin",
    "http://purl.org/rss/1.0/modules/aggregation/": "ag",
    "http://purl.org/rss/1.0/modules/annotate/": "annotate",
    "http://media.tangent.org/rss/1.0/": "audio",
    "http://backend.userland.com/blogchannelmodule": "blogChannel",
    "http://creativecommons.org/ns#license": "cc",
    "http://web.resource.org/cc/": "cc",
    "http://cyber.law.harvard.edu/rss/creativecommonsrssmodule.html": "creativeCommons",
    "http://backend.userland.com/creativecommonsrssmodule": "creativeCommons",
    "http://purl.org/rss/1.0/modules/company": "co",
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://my.theinfo.org/changed/1.0/rss/": "cp",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://purl.org/rss/1.0/modules/email/": "email",
    "http://purl.org/rss/1.0/modules/event/": "ev",
    "http://rssnamespace.org/feedburner/ext/1.0": "feedburner",
    "http://freshmeat.net/rss/fm/": "fm",
    "http://xmlns.com/foaf/0.1/": "foaf",
    "http://www.w3.org/2003/01/geo/wgs84_pos#": "geo",
    "http://www.georss.org/georss": "georss",
    "http://www.opengis.net/gml": "gml",
    "http://postneo.com/icbm/": "icbm",
    "http://purl.org/rss/1.0/modules/image/": "image",
    "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes",
    "http://example.com/dtds/podcast-1.0.dtd": "itunes",
    "http://purl.org/rss/1.0/modules/link/": "l",
    "http://search.yahoo.com/mrss": "media",
    "http://search.yahoo.com/mrss/": "media",
    "http://madskills.com/public/xml/rss/module/pingback/": "pingback",
    "http://prismstandard.org/namespaces/1.2/basic/": "prism",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "http://www.w3.org/2000/01/rdf-schema#": "rdfs",
    "http://purl.org/rss/1.0/modules/reference/": "ref",
    "http://purl.org/rss/1.0/modules/richequiv/": "reqv",
    "http://purl.org/rss/1.0/modules/search/": "search",
    "http://purl.org/rss/1.0/modules/slash/": "slash",
    "http://schemas.xmlsoap.org/soap/envelope/": "soap",
    "http://purl.org/rss/1.0/modules/servicestatus/": "ss",
    "http://hacks.benhammersley.com/rss/streaming/": "str",
    "http://purl.org/rss/1.0/modules/subscription/": "sub",
    "http://purl.org/rss/1.0/modules/syndication/": "sy",
    "http://schemas.pocketsoap.com/rss/mydescmodule/": "szf",
    "http://purl.org/rss/1.0/modules/taxonomy/": "taxo",
    "http://purl.org/rss/1.0/modules/threading/": "thr",
    "http://purl.org/rss/1.0/modules/textinput/": "ti",
    "http://madskills.com/public/xml/rss/module/trackback/": "trackback",
    "http://wellformedweb.org/commentapi/": "wfw",
    "http://purl.org/rss/1.0/modules/wiki/": "wiki",
    "http://www.w3.org/1999/xhtml": "xhtml",
    "http://www.w3.org/1999/xlink": "xlink",
    "http://www.w3.org/xml/1998/namespace": "xml",
    "http://podlove.org/simple-chapters": "psc",
}
_XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"
_RSS090 = "http://my.netscape.com/rdf/simple/0.9/"

# Every element name feedparser 6 has a ``_start_``/``_end_`` handler for (``prefix_local``,
# as its method names spell them); a name without one is stored under its own name.
FEEDPARSER_HANDLED = frozenset("""
abstract author body category cc_license channel cloud content content_encoded contributor copyright created
creativeCommons_license creativecommons_license dc_author dc_contributor dc_creator dc_date dc_description
dc_language dc_publisher dc_rights dc_subject dc_title dcterms_created dcterms_issued dcterms_modified dcterms_valid
description email enclosure entry expirationdate feed feedburner_browserfriendly fullitem generator geom georss_box
georss_line georss_point georss_polygon georss_where georssgeom gml_exterior gml_linearring gml_linestring gml_point
gml_polygon gml_pos gml_poslist guid height homepage id image info issued item itunes_author itunes_block
itunes_category itunes_email itunes_explicit itunes_image itunes_keywords itunes_link itunes_name itunes_owner
itunes_subtitle itunes_summary keywords language lastbuilddate link managingeditor media_category media_content
media_credit media_description media_group media_keywords media_license media_player media_rating
media_restriction media_thumbnail media_title modified name newlocation psc_chapter psc_chapters pubdate published
rights rss source subtitle summary tagline tags textInput textinput title updated uri url webmaster where width
xhtml_body
""".split())

_AUTHORS = frozenset({"author", "managingeditor", "itunes:author", "dc:author", "dc:creator"})
_DESCRIPTIONS = frozenset({"description", "dc:description", "media:description"})
_SUBTITLES = frozenset({"itunes:subtitle", "subtitle", "tagline"})
_SUMMARIES = frozenset({"itunes:summary", "summary"})
_TITLES = frozenset({"title", "dc:title"})
_GUIDS = frozenset({"guid", "id"})
_DATES = frozenset({"pubdate", "published", "issued", "dcterms:issued", "updated", "modified", "lastbuilddate",
                    "dc:date", "dcterms:modified", "created", "dcterms:created", "expirationdate"})
# Handled by feedparser, but nothing they do reaches a value read here or the state that
# decides where one lands (tags, ratings, thumbnails, publisher, a name or URL outside an
# author...); their children are read as if they were the channel's.
_QUIET = frozenset({
    "category", "itunes:category", "media:category", "dc:subject", "keywords", "itunes:keywords", "media:keywords",
    "tags", "itunes:explicit", "itunes:block", "cloud", "webmaster", "dc:publisher", "media:rating", "media:credit",
    "media:thumbnail", "media:restriction", "media:license", "media:content", "media:player", "media:group",
    "creativecommons:license", "itunes:name", "itunes:email", "name", "email", "width", "height", "url", "uri",
    "homepage", "enclosure", "dc:contributor",
})
# Handled as text with a type (copyright...), read nowhere here: leaves only, since
# feedparser takes what is inside them for markup.
_QUIET_TEXT = frozenset({"copyright", "rights", "dc:rights", "info", "feedburner:browserfriendly"})
# Children feedparser keeps inside <image>, <textInput>, a contributor and itunes:owner
# (any other resets its "in image" state, or is stored elsewhere).
_IMAGE_CHILDREN = frozenset({"url", "title", "link", "width", "height", "description"})
_TEXTINPUT_CHILDREN = frozenset({"title", "link", "description", "name"})
_CONTRIBUTOR_CHILDREN = frozenset({"name", "email", "uri", "url", "homepage"})
_OWNER_CHILDREN = {"itunes:name": "name", "name": "name", "itunes:email": "email", "email": "email"}
# Keys feedparser's handlers use as containers: an element without a handler that is
# stored under one of these names would change what they do.
_CONTAINER_KEYS = frozenset({
    "authors", "contributors", "links", "tags", "image", "textinput", "summary", "subtitle", "title", "content",
    "publisher", "media_rating", "media_credit", "media_thumbnail", "media_content", "media_player",
    "media_restriction", "media_license", "psc_chapters", "license", "href", "cloud", "where", "publishers",
})
_EMAIL = re.compile(r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"""
                    r"""([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?""")
_NAMES: dict[tuple[Any, str | None], str] = {}  # feedparser names, worked out once per tag and prefix

class DeclinedDocument(Declined):
    """Not only the channel: feedparser reads the whole document otherwise than the fast
    path does (a ``base`` attribute changes how it resolves every later URL)."""


DateCheck = Callable[[str], object]
"""feedparser's own date parser: a channel date it fails on (raises) declines the channel."""


def read_channel(parts: ChannelParts, check_date: DateCheck) -> dict[str, Any]:
    """The feed-level values feedparser would give for the channel (the keys
    ``parser._feed_info`` reads, with their feedparser shapes); raises :class:`Declined`
    for anything not copied exactly (then feedparser reads the channel)."""
    reader = _ChannelReader(parts, check_date)
    reader.read()
    return reader.feed


class _ChannelReader:
    """feedparser's feed-level state while it reads a channel's own elements."""

    def __init__(self, parts: ChannelParts, check_date: DateCheck) -> None:
        self.parts = parts
        self.check_date = check_date
        self.feed: dict[str, Any] = {}
        # feedparser's title_depth: a title at this depth or deeper is not stored; -1 for
        # none. None: after an item, where it is -1 or the depth of the item's title (4
        # or more): either way a channel title is stored, and a deeper one is declined.
        self.title_depth: int | None = -1
        self.has_content = False  # feedparser's hasContent: reset when an item ends
        self.authors: list[dict[str, str]] | None = None  # feedparser's feeddata['authors']
        self.remapped = _remapped_prefixes(parts.namespaces)

    def read(self) -> None:
        parts = self.parts
        _check_base(parts.root_attributes)
        _check_base(parts.channel_attributes)
        language = _root_language(parts.root_attributes)
        if language:
            self.feed["language"] = language
        self._channel_attributes(parts.channel_attributes)
        items_seen = 0
        for element, items_before in zip(parts.elements, parts.items_before, strict=True):
            if items_before != items_seen:
                items_seen = items_before
                self.title_depth = None
                self.has_content = False
            self._read(element, 3)

    # ---------------------------------------------------------------- dispatch

    def _read(self, element: Any, depth: int) -> None:
        """One element in the feed's context, as feedparser's start and end handlers read it."""
        if element.attrib:
            _check_base(element.attrib)
        name = self._name(element)
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, element, depth)
            return
        key = name.replace(":", "_", 1)
        if key in FEEDPARSER_HANDLED:
            raise Declined(f"channel <{name}>")
        self._unhandled(element, key, depth)

    def _subtitle(self, element: Any, depth: int) -> None:
        # (abstract too: a description that is never filed as content)
        self.feed["subtitle_detail"] = self._detail(element, "text/plain")

    def _date(self, element: Any, depth: int) -> None:
        self._check_date(self._leaf_text(element))  # stored under keys not read here

    def _language(self, element: Any, depth: int) -> None:
        self.feed["language"] = self._leaf_text(element)

    def _generator(self, element: Any, depth: int) -> None:
        self.feed["generator"] = self._leaf_text(element)

    def _quiet_text(self, element: Any, depth: int) -> None:
        self._detail(element, "text/plain")

    def _contributor(self, element: Any, depth: int) -> None:
        self._only_leaves(element, _CONTRIBUTOR_CHILDREN)

    def _children(self, element: Any, depth: int) -> None:
        for child in element:
            self._read(child, depth + 1)

    def _unhandled(self, element: Any, key: str, depth: int) -> None:
        """An element feedparser has no handler for: stored under its name (its
        attributes when it has any, else its text); its children are read as usual."""
        if key in _CONTAINER_KEYS or key.endswith(("_detail", "_parsed")):
            raise Declined(f"channel <{key}>")
        if (key == "ttl" or key == "podcast_guid") and not element.attrib:
            self.feed[key] = self._leaf_text(element)
            return
        if key == "ttl" or key == "podcast_guid":
            self.feed[key] = dict(element.attrib)  # feedparser keeps the attributes: no value
        if len(element):
            self._children(element, depth)

    # ---------------------------------------------------------------- handlers

    def _title(self, element: Any, depth: int) -> None:
        detail = self._detail(element, "text/plain")
        if not self._title_locked(depth):
            self.feed["title"] = detail["value"]
            self.feed["title_detail"] = detail
        if detail["value"]:
            self.title_depth = depth

    def _media_title(self, element: Any, depth: int) -> None:
        """feedparser's media:title is a title that leaves the lock as it was."""
        detail = self._detail(element, "text/plain")
        if not self._title_locked(depth):
            self.feed["title"] = detail["value"]
            self.feed["title_detail"] = detail

    def _title_locked(self, depth: int) -> bool:
        if self.title_depth is None:
            if depth > 3:
                raise Declined("a title inside another element, after an item")
            return False
        return -1 < self.title_depth <= depth

    def _link(self, element: Any, depth: int = 3) -> None:
        attributes = self._attributes(element)
        rel = attributes.setdefault("rel", "alternate")
        attributes.setdefault("type", "application/atom+xml" if rel == "self" else "text/html")
        href = attributes.get("url", attributes.get("uri", attributes.get("href")))
        if href:
            attributes["href"] = href
        if "href" in attributes:
            if len(element):
                raise Declined("markup inside <link href>")
            if rel == "alternate" and _content_type(attributes["type"]) in _HTML_TYPES:
                self.feed["link"] = _resolve(attributes["href"])
            return
        self._link_text(self._leaf_text(element))

    def _link_text(self, value: str) -> None:
        # feedparser's feed-level repair of query strings (unlike an item's, no "&amp;" first)
        self.feed["link"] = _LINK_ENTITY.sub(r"&\g<1>", _resolve(value) if value else value)

    def _guid(self, element: Any, depth: int = 3) -> None:
        is_link = self._attributes(element).get("ispermalink", "true") == "true"
        value = self._leaf_text(element)
        if is_link:
            self.feed.setdefault("link", _resolve(value) if value else value)

    def _description(self, element: Any, depth: int = 3) -> None:
        if "summary" in self.feed and not self.has_content:
            self._detail(element, "text/plain")
            self.has_content = True  # filed as content: nothing read here changes
            return
        self.feed["subtitle_detail"] = self._detail(element, "text/html")

    def _summary(self, element: Any, depth: int = 3) -> None:
        if "summary" in self.feed and not self.has_content:
            self._detail(element, "text/plain")
            self.has_content = True
            return
        detail = self._detail(element, "text/plain")
        self.feed["summary"] = detail["value"]
        self.feed["summary_detail"] = detail

    def _itunes_image(self, element: Any, depth: int = 3) -> None:
        if len(element):
            raise Declined("markup inside itunes:image")
        attributes = self._attributes(element)
        href = attributes.get("href") or attributes.get("url")
        if href:
            self.feed["image"] = {"href": href}

    def _image(self, element: Any, depth: int) -> None:
        image = self.feed.setdefault("image", {})
        self.title_depth = -1
        for child in element:
            name = self._name(child)
            if name not in _IMAGE_CHILDREN:
                raise Declined(f"<{name}> in <image>")
            if name == "url":
                value = self._leaf_text(child)
                image["href"] = _resolve(value) if value else value
            elif name == "title":
                if self._detail(child, "text/plain")["value"]:
                    self.title_depth = depth + 1
            elif len(child):
                raise Declined(f"markup inside <image><{name}>")

    def _textinput(self, element: Any, depth: int) -> None:
        self.title_depth = -1
        for child in element:
            name = self._name(child)
            if name not in _TEXTINPUT_CHILDREN:
                raise Declined(f"<{name}> in <textInput>")
            if name == "title":
                if self._detail(child, "text/plain")["value"]:
                    self.title_depth = depth + 1
            elif len(child):
                raise Declined(f"markup inside <textInput><{name}>")

    def _only_leaves(self, element: Any, names: frozenset[str]) -> None:
        for child in element:
            name = self._name(child)
            if name not in names or len(child):
                raise Declined(f"<{name}> in <{self._name(element)}>")

    # ---------------------------------------------------------------- authors

    def _author(self, element: Any, depth: int = 3) -> None:
        if self.authors is None:
            self.authors = []
        self.authors.append({})
        self.feed["author"] = self._leaf_text(element)
        self._sync_author()

    def _owner(self, element: Any, depth: int = 3) -> None:
        """itunes:owner: its name and email go to the publisher, and, through
        feedparser's ``_save_author``, into the last author's details too."""
        for child in element:
            key = _OWNER_CHILDREN.get(self._name(child))
            if key is None or len(child):
                raise Declined(f"<{self._name(child)}> in itunes:owner")
            value = (child.text or "").strip()  # read without the text repairs: not "expecting text"
            self._sync_author()
            if self.authors is None:
                self.authors = [{}]
            self.authors[-1][key] = value

    def _sync_author(self) -> None:
        """feedparser's ``_sync_author_detail``: the author from the last author's
        details, or those details from the author text."""
        detail: dict[str, str] = self.authors[-1] if self.authors else {}
        if detail:
            name, email = detail.get("name"), detail.get("email")
            if name and email:
                self.feed["author"] = f"{name} ({email})"
            elif name:
                self.feed["author"] = name
            elif email:
                self.feed["author"] = email
            return
        author = self.feed.get("author")
        if not author:
            return
        found = None
        match = _EMAIL.search(author)
        if match:
            found = match.group(0)
            author = author.replace(found, "").replace("()", "").replace("<>", "").replace("&lt;&gt;", "").strip()
            if author and author[0] == "(":
                author = author[1:]
            if author and author[-1] == ")":
                author = author[:-1]
            author = author.strip()
        if author:
            detail["name"] = author
        if found:
            detail["email"] = found

    # ---------------------------------------------------------------- values

    def _check_date(self, value: str) -> None:
        """feedparser parses every channel date (and keeps it where nothing here reads
        it); one its date parser fails on makes feedparser fail, so it decides."""
        try:
            self.check_date(value)
        except Exception:  # noqa: BLE001 - whatever it is, feedparser would not get past it
            raise Declined("a channel date feedparser's date parser fails on") from None

    def _leaf_text(self, element: Any) -> str:
        if len(element):
            raise Declined(f"markup inside <{self._name(element)}>")
        return repaired(element.text)

    def _detail(self, element: Any, default_type: str) -> dict[str, str]:
        """A feedparser ``*_detail`` of a text element: only plain text and HTML (an
        XHTML or other type changes how feedparser reads the text)."""
        if len(element):
            raise Declined(f"markup inside <{self._name(element)}>")
        if element.attrib:
            self._attributes(element)
        mime, value = _detail(element, default_type)
        if mime not in ("text/plain", "text/html"):
            raise Declined(f"content type {mime}")
        return {"type": mime, "value": value}

    def _attributes(self, element: Any) -> dict[str, str]:
        """Attribute names lowercased (``rel`` and ``type`` values too), as feedparser gives
        them; a namespaced attribute declines (feedparser's name for it may differ)."""
        out: dict[str, str] = {}
        for key, value in element.attrib.items():
            if key[:1] == "{":
                raise Declined("a namespaced attribute in the channel")
            key = key.lower()
            if key in out:
                raise Declined("an attribute written twice in different case")
            out[key] = value.lower() if key in ("rel", "type") else value
        return out

    def _name(self, element: Any) -> str:
        name = _feedparser_name(element)
        prefix, colon, _ = name.partition(":")
        if colon and prefix in self.remapped:
            raise Declined(f"prefix {prefix}: declared for another namespace")
        return name

    def _channel_attributes(self, attributes: dict[str, str]) -> None:
        """feedparser's ``_cdf_common`` on ``<channel>``: ``lastmod`` is a date, ``href`` a link."""
        seen: dict[str, str] = {}
        for key, value in attributes.items():
            if key[:1] == "{":
                if key == "{" + _XML_NAMESPACE + "}lang":
                    continue  # the language comes from the root only
                raise Declined("a namespaced attribute on <channel>")
            if key.lower() in seen:
                raise Declined("an attribute of <channel> written twice in different case")
            seen[key.lower()] = value
        if "lastmod" in seen:
            self._check_date(repaired(seen["lastmod"]))
        if "href" in seen:
            value = repaired(seen["href"])
            self._link_text(value)


_Handler = Callable[[_ChannelReader, Any, int], None]
# feedparser names -> how the reader reads them (any other name: see _ChannelReader._read)
_HANDLERS: dict[str, _Handler] = {
    **dict.fromkeys(_TITLES, _ChannelReader._title),
    "link": _ChannelReader._link,
    **dict.fromkeys(_DESCRIPTIONS, _ChannelReader._description),
    **dict.fromkeys(_SUBTITLES | {"abstract"}, _ChannelReader._subtitle),
    **dict.fromkeys(_SUMMARIES, _ChannelReader._summary),
    **dict.fromkeys(_AUTHORS, _ChannelReader._author),
    **dict.fromkeys(_DATES, _ChannelReader._date),
    **dict.fromkeys(_QUIET, _ChannelReader._children),
    # feedparser reads itunes:link as an image
    **dict.fromkeys(("itunes:image", "itunes:link"), _ChannelReader._itunes_image),
    "image": _ChannelReader._image,
    **dict.fromkeys(("language", "dc:language"), _ChannelReader._language),
    "generator": _ChannelReader._generator,
    "itunes:owner": _ChannelReader._owner,
    **dict.fromkeys(_GUIDS, _ChannelReader._guid),
    "media:title": _ChannelReader._media_title,
    **dict.fromkeys(_QUIET_TEXT, _ChannelReader._quiet_text),
    "textinput": _ChannelReader._textinput,
    "contributor": _ChannelReader._contributor,
}


def _check_base(attributes: Any) -> None:
    """feedparser takes any attribute named ``base`` (``xml:base``, a plain ``base``, one
    in a namespace it does not know) as the base URI, and keeps it for every later
    element while no earlier base was set: the whole document is then feedparser's."""
    for key in attributes:
        if key[:1] == "{":
            key = key.rpartition("}")[2]
        if key.lower() == "base":
            raise DeclinedDocument("a base attribute")


def sets_another_version(parts: ChannelParts) -> bool:
    """Whether feedparser names the format by a namespace declared on ``<rss>`` (RSS 1.0,
    or RSS 0.90 as the default namespace), not by ``<rss version>``: it notes the first
    such declaration before it reads the root element, and keeps any "rss..." name."""
    for prefix, uri in parts.root_namespaces.items():
        lowered = uri.lower()
        if lowered == "http://purl.org/rss/1.0/" or (prefix is None and lowered == _RSS090):
            return True
    return False


def _feedparser_name(element: Any) -> str:
    """The element's name as feedparser's strict parser passes it on: ``prefix:local``,
    lowercased, the prefix its own for the namespaces it knows, else the document's."""
    key = (element.tag, element.prefix)
    name = _NAMES.get(key)
    if name is not None:
        return name
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    namespace, _, local = tag[1:].partition("}") if tag[:1] == "{" else ("", "", tag)
    lowered = namespace.lower()
    if "backend.userland.com/rss" in lowered:
        lowered = "http://backend.userland.com/rss"
    prefix = FEEDPARSER_NAMESPACES.get(lowered, element.prefix)
    name = f"{prefix.lower()}:{local.lower()}" if prefix else local.lower()
    if len(_NAMES) < 4096:  # a hostile feed's endless invented names are not kept
        _NAMES[key] = name
    return name


def _remapped_prefixes(namespaces: dict[str | None, str]) -> frozenset[str]:
    """Prefixes the document binds to a namespace feedparser knows by another prefix:
    feedparser then reads any element named with that prefix as that namespace's."""
    remapped = set()
    for prefix, uri in namespaces.items():
        if prefix is None:
            continue
        lowered = uri.lower()
        if "backend.userland.com/rss" in lowered:
            lowered = "http://backend.userland.com/rss"
        known = FEEDPARSER_NAMESPACES.get(lowered)
        if known is not None and known != prefix:
            remapped.add(prefix)
    return frozenset(remapped)


def _root_language(attributes: dict[str, str]) -> str | None:
    """feedparser's feed language from ``<rss xml:lang>`` (else ``lang``), ``_`` as ``-``."""
    found: dict[str, str] = {}
    for key, value in attributes.items():
        if key[:1] == "{":
            namespace, _, local = key[1:].partition("}")
            if local.lower() != "lang":
                continue
            if namespace != _XML_NAMESPACE:
                raise Declined("a namespaced lang attribute on the root")
            name = "xml:lang"
        elif key.lower() == "lang":
            name = "lang"
        else:
            continue
        if name in found:
            raise Declined("a lang attribute written twice in different case")
        found[name] = value
    language = found.get("xml:lang", found.get("lang"))
    return language.replace("_", "-") if language else None
