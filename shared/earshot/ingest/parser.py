"""The feed parser: the bytes of an RSS or Atom document -> :class:`ParsedFeed`. No I/O.

    parse_feed(body, url=..., parser="auto")
      1. refuse an empty body (NotAFeed)
      *. ``auto``: the fast path (``earshot.ingest.fastparse``, lxml, streaming) reads a
         well-formed RSS 2.0 document, each item mapped as in step 5 as soon as it is
         read, the channel's own elements by feedparser's rules (``earshot.ingest.channel``,
         feedparser itself for a channel it declines); whatever it declines, or
         ``parser="feedparser"``, takes the steps below
      2. one expat pass over the raw bytes: refuse DTD entity declarations (UnsafeXml),
         note the root element, whether there is a channel, channel ``podcast:guid``
         and every item's ``podcast:transcript`` / ``podcast:chapters`` / ``media:content``
      3. feedparser on the same bytes (a BytesIO; its sanitizer and URI resolution off:
         show notes are sanitized on both paths by ``earshot.ingest.sanitize``), less
         any blank lines before the XML declaration (skipped with a warning on both
         paths, so such a document is read strictly, not recovered)
      4. classify: no RSS/RDF/Atom root -> NotAFeed; broken XML with no items ->
         MalformedFeed; no channel and no items -> NotAFeed; a channel with no items
         yet (a new show) -> ParsedFeed with 0 episodes; broken but recovered ->
         ParsedFeed with a warning
      5. map entries to Episodes (UTC dates, durations, the first audio/video enclosure
         or else Media RSS audio, a fallback title for untitled items), then give them
         ids by the one identity rule (``earshot.identity``): items that share a guid
         stay apart when their content differs, repeats of one item are dropped

    parse_in_batches(body, url=..., parser="auto", batch_size=...)
      the same episodes for the refresh, a batch at a time: on the fast path each mapped
      item is set aside in a temporary file (in memory while small) as it is read, and
      only the identity rule's inputs stay in memory, so a feed of 30,000 episodes never
      has them all as objects at once; the fallback builds them all, then hands them out
      in batches

How feedparser treats DTDs and entities
---------------------------------------
Findings for feedparser 6.0.x, read from its source and checked by experiment.
feedparser never fetches a DTD or external entity: its SAX parser runs with
``feature_external_ges`` off, and Python's expat does not load external DTDs. Before
parsing it rewrites the prolog with regular expressions anchored at line starts: every
``<!ENTITY ...>`` line is removed and only "safe" ones (plain text, or one character
reference) are put back, so a multi-line billion-laughs or XXE document fails with
"undefined entity" and drops to the loose parser, which leaves ``&name;`` in the text.
Those regexes miss a DOCTYPE written on one line with the root element: then the whole
internal subset reaches expat unchanged. A one-line XXE still reads nothing (external
entities are skipped, the title came out empty), but a one-line billion laughs is
expanded until expat's amplification limit (expat >= 2.4) stops it, after ~0.8 s of
work. A plain ``<!DOCTYPE rss>`` or the RSS 0.91 Netscape DOCTYPE is harmless; XML has
no ``&nbsp;``, so such feeds are bozo ("undefined entity") and recovered by the loose
parser. Two more traps: ``feedparser.parse(b"/some/path")`` opens and parses that local
file (bytes are tried as a filename first), so bodies are always wrapped in a BytesIO;
and giving feedparser a base URL (``Content-Location``) makes it resolve relative
``<guid>`` values against it ("abc-123" becomes "https://host/abc-123"), which would
change episode ids whenever the feed URL changes. So feedparser gets no base URL and
relative URLs are resolved here, against ``url``, for the fields that hold URLs.
Earshot does not depend on any of that: step 2 refuses every entity declaration first.
"""

from __future__ import annotations

import functools
import html
import io
import pickle
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote, urljoin, urlsplit
from xml.parsers import expat

import feedparser
from feedparser.datetimes import _date_handlers as _DATE_HANDLERS
from feedparser.datetimes import _parse_date as feedparser_date
from feedparser.datetimes.rfc822 import _parse_date_rfc822
from feedparser.datetimes.rfc822 import timezone_names as _RFC822_ZONES
from feedparser.datetimes.w3dtf import _parse_date_w3dtf

# Text caps live with every other stored bound (earshot.bounds); the models apply them
# too, so a parser path that forgets one is still bounded.
from earshot.bounds import (
    MAX_GUID_CHARS,
    MAX_ID_CHARS,
    MAX_LABEL_CHARS,
    MAX_SUMMARY_CHARS,
    MAX_SUMMARY_HTML_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_BYTES,
)
from earshot.errors import MalformedFeed, NotAFeed, UnsafeXml
from earshot.identity import Assignment, Candidate, IdChoice, assign_ids, content_key, stable_episode_id
from earshot.ingest.channel import DeclinedDocument, read_channel, sets_another_version
from earshot.ingest.fastparse import (
    BLANK_BEFORE_DECLARATION,
    BLANKS,
    UNPARSED,
    ChannelParts,
    Declined,
    FastFeed,
    ItemTags,
    RawItem,
    read_feed,
)
from earshot.ingest.sanitize import Sanitizer
from earshot.models import Chapters, Episode, FeedInfo, ParsedFeed, Transcript
from earshot.textutil import (
    UNTITLED_EPISODE,
    clean_text,
    clip,
    neutralize,
    parse_duration,
    strip_html,
    strip_serialized_html,
    to_utc,
)

# Podcasting 2.0: the namespace is https://podcastindex.org/namespace/1.0; feeds written
# before it settled use the GitHub URL of the spec document.
PODCAST_NAMESPACES = frozenset({
    "https://podcastindex.org/namespace/1.0",
    "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
})
# Namespaces whose <item>/<entry> is an episode: none (RSS 0.9x/2.0), RSS 1.0, RSS 0.90,
# the RSS 2.0 namespace some generators add, Atom 1.0 and Atom 0.3.
_ITEM_NAMESPACES = frozenset({
    "",
    "http://purl.org/rss/1.0/",
    "http://my.netscape.com/rdf/simple/0.9/",
    "http://backend.userland.com/rss2",
    "http://www.w3.org/2005/Atom",
    "http://purl.org/atom/ns#",
})
# Media RSS 1.5.1: "The namespace for Media RSS is defined to be
# http://search.yahoo.com/mrss/" -- with "confusion around" the trailing slash, so both.
MEDIA_RSS_NAMESPACES = frozenset({"http://search.yahoo.com/mrss/", "http://search.yahoo.com/mrss"})
_ATOM_NAMESPACES = frozenset({"http://www.w3.org/2005/Atom", "http://purl.org/atom/ns#"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Enclosures without a usable MIME type count as media when the file name says so.
_AUDIO_EXTENSIONS = (".mp3", ".m4a", ".m4b", ".aac", ".ogg", ".oga", ".opus", ".wav", ".flac")
_VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".webm")
_MEDIA_EXTENSIONS = _AUDIO_EXTENSIONS + _VIDEO_EXTENSIONS
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_EXAMPLES_SHOWN = 3



BLANK_PROLOG_WARNING = "not well-formed XML: blank lines before the XML declaration, skipped"

ParserChoice = Literal["auto", "feedparser"]
"""``auto``: the fast path, feedparser for what it declines; ``feedparser``: always feedparser."""
PARSER_CHOICES: tuple[ParserChoice, ...] = ("auto", "feedparser")


def parse_feed(body: bytes, *, url: str | None = None, parser: ParserChoice = "auto") -> ParsedFeed:
    """Parse one feed document. ``url`` (where it was fetched) resolves relative URLs.

    ``parser="auto"`` reads well-formed RSS 2.0 with the fast path
    (``earshot.ingest.fastparse``) and everything it declines with feedparser, which
    ``parser="feedparser"`` forces. Both give the same episodes.

    Raises :class:`NotAFeed`, :class:`MalformedFeed` or :class:`UnsafeXml`, nothing else.

    >>> parsed = parse_feed(
    ...     b"<rss version='2.0'><channel><title>Show</title><item><guid>ep-1</guid>"
    ...     b"<enclosure url='ep1.mp3' type='audio/mpeg'/></item></channel></rss>",
    ...     url="https://example.com/feed.xml",
    ... )
    >>> parsed.feed.title, [(e.id, e.audio_url) for e in parsed.episodes]
    ('Show', [('ep-1', 'https://example.com/ep1.mp3')])
    >>> parse_feed(b"<!doctype html><html><body>Hello</body></html>")
    Traceback (most recent call last):
    earshot.errors.NotAFeed: an HTML page, not a feed
    """
    if not body or body.isspace():  # not body.strip(): that copies the whole body
        raise NotAFeed("empty body")
    if parser == "auto":
        try:
            return parse_fast(body, url=url)
        except Declined:
            pass  # feedparser settles it (and the expat pass refuses entity declarations)
    return _parse_with_feedparser(body, url)


def parse_fast(body: bytes, *, url: str | None = None) -> ParsedFeed:
    """The fast path alone (for benchmarks and tests): raises :class:`Declined` where
    :func:`parse_feed` would run feedparser."""
    builder = _EpisodeBuilder(url)
    return _from_fast(read_feed(body, builder.add), builder, url)


EPISODE_BATCH = 500
"""Episodes per batch of :func:`parse_in_batches` (about 2 MB of them on a talk show)."""
# Set-aside episodes stay in memory up to this size, then move to a temporary file: a
# typical feed never touches the disk, a 50 MB one never holds its episodes in memory.
_SPOOL_MEMORY_BYTES = 8 * 1024 * 1024


def parse_in_batches(
    body: bytes, *, url: str | None = None, parser: ParserChoice = "auto", batch_size: int = EPISODE_BATCH
) -> BatchedFeed:
    """:func:`parse_feed` for the refresh: the same feed, warnings, id choices and
    episodes, in the same order, with the episodes handed out ``batch_size`` at a time.

    Ids can only be given once every item has been read (a guid shared by a later item
    changes an earlier item's id), so the fast path maps each item as it is read, keeps
    in memory only what the identity rule needs (each item's natural id and content
    key), and sets the episode aside in a temporary file; ids are given at the end, and
    :meth:`BatchedFeed.batches` reads the episodes back a batch at a time. The fallback
    (feedparser) builds every episode at once, as :func:`parse_feed` does, and only
    hands them out in batches. Raises what :func:`parse_feed` raises.

    >>> with parse_in_batches(
    ...     b"<rss version='2.0'><channel><title>Show</title><item><guid>a</guid></item>"
    ...     b"<item><guid>b</guid></item><item><guid>c</guid></item></channel></rss>", batch_size=2,
    ... ) as parsed:
    ...     parsed.feed.title, parsed.episode_count, [[e.id for e in b] for b in parsed.batches()]
    ('Show', 3, [['a', 'b'], ['c']])
    """
    if not body or body.isspace():  # not body.strip(): that copies the whole body
        raise NotAFeed("empty body")
    if parser == "auto":
        spool = _DraftSpool(batch_size)
        try:
            builder = _SpooledBuilder(url, spool)
            fast = _from_fast(read_feed(body, builder.add), builder, url)
        except Declined:
            spool.close()  # feedparser settles it, as in parse_feed
        except BaseException:
            spool.close()
            raise
        else:
            return BatchedFeed(fast.feed, fast.warnings, fast.id_choices, spool, batch_size)
    parsed = _parse_with_feedparser(body, url)
    return BatchedFeed(parsed.feed, parsed.warnings, parsed.id_choices, parsed.episodes, batch_size)


class BatchedFeed:
    """A parsed feed whose episodes come a batch at a time (:func:`parse_in_batches`).

    ``feed``, ``warnings`` and ``id_choices`` are :class:`ParsedFeed`'s. Close it, or use
    it as a context manager, to let go of the episodes set aside.
    """

    def __init__(self, feed: FeedInfo, warnings: list[str], id_choices: dict[str, IdChoice],
                 episodes: _DraftSpool | list[Episode], batch_size: int) -> None:
        self.feed = feed
        self.warnings = warnings
        self.id_choices = id_choices
        self._episodes = episodes
        self._batch_size = batch_size

    @property
    def episode_count(self) -> int:
        """How many episodes the batches hold (repeats of an item are not episodes)."""
        return len(self._episodes) if isinstance(self._episodes, list) else self._episodes.kept

    def batches(self) -> Iterator[list[Episode]]:
        """The episodes in document order, at most ``batch_size`` a list; read them once."""
        if isinstance(self._episodes, _DraftSpool):
            yield from self._episodes.batches()
            return
        for start in range(0, len(self._episodes), self._batch_size):
            yield self._episodes[start:start + self._batch_size]

    def close(self) -> None:
        if isinstance(self._episodes, _DraftSpool):
            self._episodes.close()

    def __enter__(self) -> BatchedFeed:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def _from_fast(fast: FastFeed, builder: _EpisodeBuilder, url: str | None) -> ParsedFeed:
    scan = _Scan(root="rss", podcast_guid=fast.podcast_guid, items=[], has_channel=True)
    info = _feed_info(_fast_channel(fast.channel, fast.version), fast.version, scan, url)
    warnings = [BLANK_PROLOG_WARNING] if fast.blank_prolog else []
    if not info.title:
        warnings.append("the channel has no title")
    episodes, choices, episode_warnings = builder.finish()
    return ParsedFeed(feed=info, episodes=episodes, warnings=warnings + episode_warnings, id_choices=choices)


def _fast_channel(channel: ChannelParts, version: str) -> Any:
    """The feed-level values of a channel the fast path read, feedparser-shaped: from its
    elements by feedparser's rules (``earshot.ingest.channel``), or, for a channel that
    reader declines, by feedparser itself from the elements alone as a small document."""
    if sets_another_version(channel):
        raise Declined("feedparser names the format by a namespace on <rss>")
    try:
        return read_channel(channel, feedparser_date)
    except DeclinedDocument:
        raise
    except Declined:
        if any(channel.items_before):
            # Items change how feedparser reads what follows them (a title after an
            # item's title...): the elements alone would not be read as in the document.
            raise Declined("the channel reader declined a channel with elements after items") from None
    result = _run_feedparser(channel.channel_xml())
    if result.get("bozo") or result.get("version") != version:
        raise Declined("feedparser did not read the channel alone as the whole document")
    return result.get("feed") or {}


def _parse_with_feedparser(body: bytes, url: str | None) -> ParsedFeed:
    scan = _scan(body)
    # Blank lines before "<?xml" would send feedparser to its loose parser for the
    # whole document; they are skipped, and noted, as the fast path does.
    blank_prolog = BLANK_BEFORE_DECLARATION.match(body) is not None
    result = _run_feedparser(body.lstrip(BLANKS) if blank_prolog else body)
    version = result.get("version") or ""
    if not version:
        raise NotAFeed(_not_a_feed_reason(body, scan.root))

    entries = result.get("entries") or []
    warnings: list[str] = [BLANK_PROLOG_WARNING] if blank_prolog else []
    problem = result.get("bozo_exception") if result.get("bozo") else None
    if isinstance(problem, feedparser.ThingsNobodyCaresAboutButMe):
        # Encoding or content-type notes: the XML itself parsed strictly.
        warnings.append(f"encoding: {problem}")
    elif problem is not None:
        # Prefer expat's own reason: its line numbers refer to the original bytes, while
        # feedparser's count the XML declaration it may have inserted.
        reason = scan.error or _message(problem)
        # No items and broken XML is a cut-off download -- unless expat (which does not
        # resolve namespaces) read the whole document and found the channel: then the
        # only fault is namespaces, e.g. an undeclared itunes: or podcast: prefix, on a
        # show that has published no episode yet.
        if not entries and not (scan.items is not None and scan.has_channel):
            raise MalformedFeed(f"not well-formed XML: {reason}; no items recovered")
        warnings.append(f"not well-formed XML: {reason}; recovered {len(entries)} items")

    info = _feed_info(result.get("feed") or {}, version, scan, url)
    described = bool(info.title or info.link or info.description)
    if not entries and not (scan.has_channel or described):
        raise NotAFeed("no channel or items")
    if not info.title:
        warnings.append("the channel has no title")  # RSS 2.0 and Atom both require one

    # The expat pass and feedparser must agree on the items before their tags are paired
    # by position; otherwise fall back to what feedparser kept.
    item_tags = scan.items if scan.items is not None and len(scan.items) == len(entries) else None
    episodes, choices, episode_warnings = _episodes(entries, item_tags, url)
    return ParsedFeed(feed=info, episodes=episodes, warnings=warnings + episode_warnings, id_choices=choices)


# ------------------------------------------------------------------ the expat pass


# One item's Podcasting 2.0 and Media RSS tags; the fast path reads the same.
_ItemTags = ItemTags


@dataclass
class _Scan:
    root: str | None = None
    podcast_guid: str | None = None
    items: list[_ItemTags] | None = None  # None: expat could not read the whole document
    error: str | None = None  # expat's reason when the XML is not well-formed
    has_channel: bool = False  # an RSS <channel> under the root, or an Atom <feed> root


class _TagReader:
    """Expat handlers that collect what feedparser cannot give (it keeps one value per
    unknown tag, so only the last ``podcast:transcript`` of an item would survive), and
    each item's ``media:content`` in document order, so that every parser path reads
    Media RSS from the same attribute maps.

    Namespaces are resolved here rather than by expat, so that an undeclared prefix -- a
    common defect -- is not an error; an undeclared ``podcast:`` or ``media:`` prefix is
    read as Podcasting 2.0 or Media RSS, as feedparser does.
    """

    def __init__(self) -> None:
        self.parser = expat.ParserCreate()
        self.parser.buffer_text = True
        self.parser.EntityDeclHandler = self._refuse_entity
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._text
        self.scopes: list[dict[str, str]] = [{}]
        self.root: str | None = None
        self.items: list[_ItemTags] = []
        self.item_depth: int | None = None
        self.guid_depth: int | None = None
        self.guid_text: list[str] = []
        self.podcast_guid: str | None = None
        self.media_group_depth: int | None = None
        self.has_channel = False

    @staticmethod
    def _refuse_entity(name: str, is_parameter_entity: bool, *_: object) -> None:
        kind = "parameter entity" if is_parameter_entity else "entity"
        raise UnsafeXml(f"the DTD declares {kind} {name!r} (XXE / entity expansion refused)")

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        scope = self.scopes[-1]
        declared = {
            key.partition(":")[2]: value
            for key, value in attrs.items()
            if key == "xmlns" or key.startswith("xmlns:")
        }
        if declared:
            scope = {**scope, **declared}
        self.scopes.append(scope)
        depth = len(self.scopes) - 1
        prefix, _, local = name.rpartition(":")
        uri = scope.get(prefix, None if prefix else "")
        is_podcast = uri in PODCAST_NAMESPACES or (uri is None and prefix == "podcast")
        is_media = uri in MEDIA_RSS_NAMESPACES or (uri is None and prefix == "media")
        if self.root is None:
            self.root = local
            self.has_channel = local == "feed" and uri in _ATOM_NAMESPACES
        elif depth == 2 and local == "channel" and uri in _ITEM_NAMESPACES:
            self.has_channel = True  # RSS 0.9x/2.0 <rss><channel>, RSS 1.0 <rdf:RDF><channel>
        if self.item_depth is None:
            if local in ("item", "entry") and uri in _ITEM_NAMESPACES:
                self.item_depth = depth
                self.items.append(_ItemTags())
            elif is_podcast and local == "guid" and self.podcast_guid is None:
                self.guid_depth = depth
        elif depth == self.item_depth + 1 and is_podcast:
            if local == "transcript":
                self.items[-1].transcripts.append(dict(attrs))
            elif local == "chapters":
                self.items[-1].chapters.append(dict(attrs))
        elif is_media and local == "content" and (
            depth == self.item_depth + 1 or (self.media_group_depth is not None and depth == self.media_group_depth + 1)
        ):
            self.items[-1].media.append({key.lower(): value for key, value in attrs.items()})
        elif is_media and local == "group" and depth == self.item_depth + 1:
            self.media_group_depth = depth

    def _end(self, name: str) -> None:
        depth = len(self.scopes) - 1
        if depth == self.guid_depth:
            self.podcast_guid = "".join(self.guid_text).strip() or None
            self.guid_depth = None
        if depth == self.media_group_depth:
            self.media_group_depth = None
        if depth == self.item_depth:
            self.item_depth = None
        self.scopes.pop()

    def _text(self, data: str) -> None:
        if self.guid_depth is not None:
            self.guid_text.append(data)


def _scan(body: bytes) -> _Scan:
    """Run the expat pass; raise :class:`UnsafeXml` on any entity declaration."""
    # Blank lines before "<?xml" are a common defect that expat refuses outright; skip
    # them (feedparser still reports the defect) and count them back into line numbers.
    data = body.lstrip(b" \t\r\n")
    skipped_lines = body[: len(body) - len(data)].count(b"\n")
    reader = _TagReader()
    try:
        reader.parser.Parse(data, True)
    # pyexpat raises ValueError for a multi-byte encoding it cannot decode (Shift_JIS)
    # and LookupError for an encoding name Python does not know.
    except (expat.ExpatError, ValueError, LookupError) as exc:
        if reader.root is None and _mentions_entity_declaration(data):
            raise UnsafeXml("the document declares entities (XXE / expansion refused)") from exc
        error = None
        if isinstance(exc, expat.ExpatError):
            line = exc.lineno + skipped_lines
            error = f"{expat.ErrorString(exc.code)}: line {line}, column {exc.offset}"
        return _Scan(root=reader.root, podcast_guid=reader.podcast_guid, error=error,
                     has_channel=reader.has_channel)
    return _Scan(root=reader.root, podcast_guid=reader.podcast_guid, items=reader.items,
                 has_channel=reader.has_channel)


def _mentions_entity_declaration(data: bytes) -> bool:
    """Fallback when expat stopped before the root element (an encoding it cannot read,
    a broken prolog) and so could not report declarations: refuse any ``<!ENTITY``."""
    # Dropping NULs turns UTF-16/UTF-32 ASCII characters into plain bytes.
    return re.search(rb"<!ENTITY", data.replace(b"\x00", b""), re.IGNORECASE) is not None


# ---------------------------------------------------------------------- feedparser


def _run_feedparser(body: bytes) -> Any:
    try:
        # BytesIO, never bare bytes (feedparser would try them as a file name). No base
        # URL, so guids stay as written. Its sanitizer and URI resolution are off: HTML
        # is cleaned and its links resolved by earshot.ingest.sanitize, on every path.
        return feedparser.parse(io.BytesIO(body), resolve_relative_uris=False, sanitize_html=False)
    except Exception as exc:  # a crash in feedparser's loose parser is this feed's problem
        raise MalformedFeed(f"feedparser failed: {type(exc).__name__}: {exc}") from exc


def _message(exc: BaseException) -> str:
    get_message = getattr(exc, "getMessage", None)  # SAXParseException: reason without position
    return str(get_message() if callable(get_message) else exc)


def _not_a_feed_reason(body: bytes, root: str | None) -> str:
    if (root or "").lower() == "html" or re.search(rb"<html[\s>]", body[:4096], re.IGNORECASE):
        return "an HTML page, not a feed"
    if body.lstrip()[:1] in (b"{", b"["):
        return "a JSON document, not an RSS or Atom feed"
    if root:
        return f"root element <{root}> is not RSS, RDF or Atom"
    return "no RSS, RDF or Atom document found"


# ------------------------------------------------------------------------ mapping


def _feed_info(channel: Any, version: str, scan: _Scan, base: str | None) -> FeedInfo:
    # feedparser files RSS <description> and itunes:subtitle under "subtitle", Atom
    # <subtitle> too, and itunes:summary under "summary"; the summary is the long form.
    # feedparser stores an element it has no handler for under the element's name, and an
    # element whose handler fails as if it had none: a value of another shape is absent.
    description = _shaped(channel, "summary_detail", dict) or _shaped(channel, "subtitle_detail", dict)
    return FeedInfo(
        title=clip(clean_text(_plain_detail(_shaped(channel, "title_detail", dict))), MAX_TITLE_CHARS),
        link=_absolute_url(_shaped(channel, "link", str), base),
        description=clip(_plain_detail(description), MAX_SUMMARY_CHARS),
        image=_absolute_url(_shaped(_shaped(channel, "image", dict) or {}, "href", str), base),
        language=_stripped(channel.get("language")),
        author=clip(clean_text(_shaped(channel, "author", str)), MAX_TITLE_CHARS) or None,
        podcast_guid=scan.podcast_guid or _stripped(channel.get("podcast_guid")),
        ttl_minutes=_positive_int(channel.get("ttl")),
        generator=clean_text(_shaped(channel, "generator", str)) or None,
        format=version,
    )


def _shaped(values: Any, key: str, shape: type) -> Any:
    value = values.get(key)
    return value if isinstance(value, shape) else None


@dataclass(frozen=True)
class _Draft:
    """One mapped item before ids are given: its episode (id still the natural id)."""

    episode: Episode
    candidate: Candidate
    title_source: str | None  # where a fallback title came from; None when the item had one


def _episodes(
    entries: list[Any], item_tags: list[_ItemTags] | None, base: str | None
) -> tuple[list[Episode], dict[str, IdChoice], list[str]]:
    builder = _EpisodeBuilder(base)
    for index, entry in enumerate(entries):
        builder.add(_raw_item(entry), item_tags[index] if item_tags is not None else _feedparser_tags(entry))
    return builder.finish()


class _EpisodeBuilder:
    """Maps items to drafts one at a time (the fast path hands each over as soon as it is
    read, so no list of raw items is ever held), then gives ids to them all at once."""

    def __init__(self, base: str | None) -> None:
        self.base = base
        self.now = datetime.now(UTC)
        self.sanitizer = Sanitizer(base)
        self.drafts: list[_Draft] = []
        self.bad_dates: list[str] = []
        self.empty = 0

    def add(self, raw: RawItem, tags: _ItemTags) -> None:
        raw_date = _stripped(raw.date)
        # The fast path leaves dates as written: they are read here, so both paths read
        # every date alike.
        parsed_date = _feedparser_date(raw.date) if raw.date_parsed is UNPARSED else raw.date_parsed
        published = to_utc(parsed_date or raw_date, now=self.now)
        if raw_date and published is None:
            self.bad_dates.append(raw_date)
        draft = _draft(raw, tags, self.base, published, raw_date, self.sanitizer)
        if draft is None:
            self.empty += 1  # nothing to identify, show or play
        else:
            self._keep(draft)

    def _keep(self, draft: _Draft) -> None:
        self.drafts.append(draft)

    def finish(self) -> tuple[list[Episode], dict[str, IdChoice], list[str]]:
        return _identified(self.drafts, self.bad_dates, self.empty)


class _DraftSpool:
    """Drafts set aside in document order: what the identity rule reads (and where each
    fallback title came from) in memory, the episodes pickled to a temporary file a
    batch at a time. The file is this process's own and never read by anything else."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = max(1, batch_size)
        self.candidates: list[Candidate] = []
        self.title_sources: list[str | None] = []
        self.ids: list[str | None] = []  # each draft's episode id, None for a repeat: set by the builder's finish
        self._unwritten: list[Episode] = []
        self._file = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY_BYTES)

    def append(self, draft: _Draft) -> None:
        self.candidates.append(draft.candidate)
        self.title_sources.append(draft.title_source)
        self._unwritten.append(draft.episode)
        if len(self._unwritten) >= self.batch_size:
            self._write()

    @property
    def kept(self) -> int:
        return sum(episode_id is not None for episode_id in self.ids)

    def _write(self) -> None:
        if self._unwritten:
            pickle.dump(self._unwritten, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._unwritten = []

    def batches(self) -> Iterator[list[Episode]]:
        """The episodes under their ids, repeats left out, in document order."""
        self._write()
        self._file.seek(0)
        position = 0
        while position < len(self.ids):
            written: list[Episode] = pickle.load(self._file)  # this process's own file, written above
            batch = [episode if episode_id == episode.id else episode.model_copy(update={"id": episode_id})
                     for episode, episode_id in zip(written, self.ids[position:position + len(written)], strict=True)
                     if episode_id is not None]
            position += len(written)
            if batch:
                yield batch

    def close(self) -> None:
        self._file.close()


class _SpooledBuilder(_EpisodeBuilder):
    """The builder whose drafts go to a :class:`_DraftSpool`; ``finish`` gives ids to them
    by the same rule and returns no episodes: the spool hands them out."""

    def __init__(self, base: str | None, spool: _DraftSpool) -> None:
        super().__init__(base)
        self.spool = spool

    def _keep(self, draft: _Draft) -> None:
        self.spool.append(draft)

    def finish(self) -> tuple[list[Episode], dict[str, IdChoice], list[str]]:
        spool = self.spool
        assignment = assign_ids(spool.candidates)
        spool.ids = assignment.ids
        repeated = [c.natural_id for c, episode_id in zip(spool.candidates, spool.ids, strict=True)
                    if episode_id is None]
        titled_from = Counter(source for source, episode_id in zip(spool.title_sources, spool.ids, strict=True)
                              if episode_id is not None and source)
        spool.candidates, spool.title_sources = [], []  # given ids: no longer needed
        return [], assignment.choices, _identity_warnings(assignment, repeated, titled_from, self.bad_dates,
                                                          self.empty)


def _identified(
    drafts: list[_Draft], bad_dates: list[str], empty: int
) -> tuple[list[Episode], dict[str, IdChoice], list[str]]:
    # One identity rule for every parser path: earshot.identity.
    assignment = assign_ids([d.candidate for d in drafts])
    episodes: list[Episode] = []
    repeated: list[str] = []
    titled_from: Counter[str] = Counter()
    for index, episode_id in enumerate(assignment.ids):
        draft = drafts[index]
        drafts[index] = None  # type: ignore[call-overload]  # each draft is let go once its episode exists
        if episode_id is None:
            repeated.append(draft.candidate.natural_id)
            continue
        episodes.append(draft.episode if episode_id == draft.episode.id
                        else draft.episode.model_copy(update={"id": episode_id}))
        if draft.title_source:
            titled_from[draft.title_source] += 1

    return episodes, assignment.choices, _identity_warnings(assignment, repeated, titled_from, bad_dates, empty)


def _identity_warnings(
    assignment: Assignment, repeated: list[str], titled_from: Counter[str], bad_dates: list[str], empty: int
) -> list[str]:
    """What the mapping and the identity rule left out or made up, as the feed's warnings."""
    warnings = []
    if empty:
        warnings.append(
            f"{empty} items have no guid, title, enclosure, link or description and were skipped"
        )
    if assignment.shared_ids:
        kept = assignment.shared_items - len(repeated)
        warnings.append(
            f"{_count(assignment.shared_items, 'item')} share {_count(assignment.shared_ids, 'guid')} "
            f"(or enclosure or link where there is no guid): kept as {_count(kept, 'episode')}, "
            "told apart by enclosure, else title and date"
        )
    if repeated:
        warnings.append(
            f"{_count(len(repeated), 'repeated item')} skipped (same id, and same enclosure or title "
            f"and date, as an earlier item): {_examples(repeated)}"
        )
    if titled_from:
        sources = ", ".join(f"{source} {n}" for source, n in titled_from.most_common())
        warnings.append(f"{_count(titled_from.total(), 'item')} had no title; titled from {sources}")
    if bad_dates:
        warnings.append(
            f"{len(bad_dates)} items have an unparseable or implausible date, left empty: "
            f"{_examples(bad_dates)}"
        )
    return warnings


def _draft(
    raw: RawItem, tags: _ItemTags, base: str | None, published: datetime | None, raw_date: str | None,
    sanitizer: Sanitizer,
) -> _Draft | None:
    """The item as an Episode whose id is still its natural id; None for an empty item."""
    guid = _stripped(raw.guid)
    enclosure = _media_enclosure(raw.enclosures, base)
    # Media RSS supplements <enclosure> (Media RSS 1.5.1, "Description"): its audio is
    # used only when no enclosure is audio or video.
    media = media_rss_audio(tags.media, base) if enclosure is None else None
    audio_url, audio_type, audio_length = enclosure or (media[:3] if media else (None, None, None))
    link = raw.link
    # RSS 2.0: a guid with isPermaLink (the default) "is a url that can be opened in a
    # Web browser", and feedparser copies it into `link`. Many guids are not URLs at
    # all, so a link that came from the guid is kept only if it is already absolute.
    from_guid = raw.guid_is_link and link == raw.guid
    link = _absolute_url(link, None if from_guid else base)
    title = clip(clean_text(_plain(raw.title, raw.title_type)), MAX_TITLE_CHARS)
    summary_html, summary = _show_notes(raw, sanitizer)
    summary = clip(summary, MAX_SUMMARY_CHARS)
    if not (guid or title or audio_url or link or summary):
        return None
    if len(summary_html) > MAX_SUMMARY_HTML_CHARS:
        # Cutting markup could leave it unbalanced; the (capped) plain text is safe HTML.
        summary_html = f"<p>{html.escape(summary, quote=False)}</p>"
    transcripts = tuple(
        Transcript(url=href, type=_stripped(t.get("type")), language=_stripped(t.get("language")),
                   rel=_stripped(t.get("rel")))
        for t in tags.transcripts
        if (href := _absolute_url(t.get("url"), base))
    )
    chapters = next(
        (Chapters(url=href, type=_stripped(c.get("type")))
         for c in tags.chapters if (href := _absolute_url(c.get("url"), base))),
        None,
    )
    shown_title, title_source = title, None
    if not title:
        shown_title, title_source = fallback_title(
            clean_text(raw.itunes_title), audio_url, published, summary
        )
    # The natural id is computed from what ids were always computed from (the guid, the
    # <enclosure> URL, the link, the title and date as written), so that no stored
    # episode changes its id; the content key sees the audio actually used.
    natural_id = stable_episode_id(guid, enclosure[0] if enclosure else None, link, title, raw_date, summary)
    candidate = Candidate(natural_id=natural_id, key=content_key(audio_url, title, raw_date, summary))
    duration = parse_duration(raw.itunes_duration)
    if duration is None and media is not None:
        duration = media[3]
    episode = _episode({
        "id": natural_id,
        "feed_id": None,  # (Episode's default: the store sets it)
        "guid": guid,
        "title": clip(shown_title, MAX_TITLE_CHARS),
        "published": published,
        "duration_seconds": duration,
        "audio_url": audio_url,
        "audio_type": audio_type,
        "audio_length": audio_length,
        "link": link,
        "summary": summary,
        "summary_html": summary_html,
        "image": _absolute_url(raw.image, base),
        # iTunes: itunes:episode and itunes:season are non-zero integers.
        "episode": _positive_int(raw.itunes_episode),
        "season": _positive_int(raw.itunes_season),
        "transcripts": transcripts,
        "chapters": chapters,
    })
    return _Draft(episode=episode, candidate=candidate, title_source=title_source)


def _episode(fields: dict[str, Any]) -> Episode:
    """The episode of ``fields`` (every field of Episode, in order, ``feed_id`` at its
    default), without validating them again when validation could not change them:
    every value already has its field's type (str, int, a UTC datetime, validated
    Transcript and Chapters), so only a bound (a long value clipped, digested or
    dropped, and recorded) or a reference without a URL could, and those go through
    pydantic as before."""
    audio_type, guid = fields["audio_type"], fields["guid"]
    if (
        len(fields["id"]) <= MAX_ID_CHARS
        and len(fields["title"]) <= MAX_TITLE_CHARS
        and len(fields["summary"]) <= MAX_SUMMARY_CHARS
        and len(fields["summary_html"]) <= MAX_SUMMARY_HTML_CHARS
        and (guid is None or len(guid) <= MAX_GUID_CHARS)
        and (audio_type is None or len(audio_type) <= MAX_LABEL_CHARS)
        # a URL of at most a quarter of the byte bound fits whatever its characters
        and _fits_url(fields["audio_url"]) and _fits_url(fields["link"]) and _fits_url(fields["image"])
        and not fields["transcripts"] and fields["chapters"] is None
    ):
        # What Episode.model_construct(**values) makes (no extra, no private attributes),
        # without its general-purpose loop over the fields: a third of the time.
        episode = Episode.__new__(Episode)
        _set_attribute(episode, "__dict__", fields)
        _set_attribute(episode, "__pydantic_fields_set__", set(_FIELDS_GIVEN))
        _set_attribute(episode, "__pydantic_extra__", None)
        _set_attribute(episode, "__pydantic_private__", None)
        return episode
    return Episode(**{name: value for name, value in fields.items() if name in _FIELDS_GIVEN})


def _fits_url(url: str | None) -> bool:
    return url is None or len(url) <= MAX_URL_BYTES // 4


# The fields the mapping gives (the store sets feed_id): the episode's fields set.
_FIELDS_GIVEN = frozenset(Episode.model_fields) - {"feed_id"}
_set_attribute = object.__setattr__


def fallback_title(
    itunes_title: str, audio_url: str | None, published: datetime | None, summary: str
) -> tuple[str, str]:
    """A title for an item without one, and where it came from.

    RSS 2.0 makes every item element optional ("at least one of title or description
    must be present"); a page or a digest must still name the episode. In order:
    ``itunes:title`` (Apple's tag for the episode title), the enclosure's file name
    (without extension, as podcast apps show it), the date, the first line of the
    description, and last "Untitled episode".

    >>> fallback_title("Ep 1", "https://cdn/x.mp3", None, "")
    ('Ep 1', 'itunes:title')
    >>> fallback_title("", "https://cdn.example/shows/Episode%2012.final.mp3?x=1", None, "")
    ('Episode 12.final', 'enclosure file name')
    >>> fallback_title("", None, datetime(2024, 5, 3, 10, tzinfo=UTC), "notes")
    ('Episode of 3 May 2024', 'date')
    >>> fallback_title("", "https://cdn.example/", None, "First line\\nsecond line")
    ('First line', 'description')
    >>> fallback_title("", None, None, "")
    ('Untitled episode', 'nothing')
    """
    if itunes_title:
        return itunes_title, "itunes:title"
    if audio_url and (name := _file_name(audio_url)):
        return name, "enclosure file name"
    if published is not None:
        return f"Episode of {published.day} {_MONTHS[published.month - 1]} {published.year}", "date"
    if first_line := clip(summary.strip().split("\n", 1)[0], 100):
        return first_line, "description"
    return UNTITLED_EPISODE, "nothing"


def _file_name(url: str) -> str:
    """The last path segment of ``url``, percent-decoded, without its extension."""
    try:
        segment = urlsplit(url).path.rstrip("/").rpartition("/")[2]
    except ValueError:
        return ""
    stem, dot, _extension = unquote(segment).rpartition(".")
    return clean_text(stem if dot and stem else unquote(segment))


def _raw_item(entry: Any) -> RawItem:
    """What the mapping reads of a feedparser entry (the fast path reads the same).

    RSS has ``pubDate`` (feedparser's "published"); Atom requires ``<updated>`` and makes
    ``<published>`` optional. The ``in`` test reads the real keys: feedparser's getters
    for "updated" fall back to "published" with a DeprecationWarning.
    """
    title = entry.get("title_detail") or {}
    content = next((c for c in entry.get("content") or () if c.get("value")), None) or {}
    summary = entry.get("summary_detail") or {}
    date, parsed = None, None
    for key in ("published", "updated"):
        if key in entry:
            date = entry[key]
            parsed = entry.get(f"{key}_parsed") if f"{key}_parsed" in entry else _feedparser_date(date)
            break
    return RawItem(
        guid=entry.get("id"),
        guid_is_link=bool(entry.get("guidislink")),
        link=entry.get("link"),
        title=title.get("value") or "",
        title_type=title.get("type") or "",
        content=content.get("value") or "",
        content_type=content.get("type") or "",
        content_base=content.get("base") or None,
        summary=summary.get("value") or "",
        summary_type=summary.get("type") or "",
        summary_base=summary.get("base") or None,
        enclosures=[(e.get("href"), e.get("type"), e.get("length")) for e in entry.get("enclosures") or ()],
        image=(entry.get("image") or {}).get("href"),
        itunes_title=entry.get("itunes_title"),
        itunes_duration=entry.get("itunes_duration"),
        itunes_episode=entry.get("itunes_episode"),
        itunes_season=entry.get("itunes_season"),
        date=date,
        date_parsed=parsed,
    )


def _feedparser_date(value: object) -> Any:
    try:
        if not (isinstance(value, str) and value):
            return None
        if (match := _RFC822_COMMON.fullmatch(value)) is not None and _RFC822_FIRST:
            parsed = _rfc822_common(match)
            if parsed is not None:
                return parsed
        if value[0].isascii() and value[0].isalpha() and _DATE_HANDLERS[:1] == [_parse_date_w3dtf]:
            # feedparser tries W3C-DTF first, which finds no 4-digit year at the start
            # of text that starts with a letter (every RFC 822 date): skip it.
            return _first_date(value, _DATE_HANDLERS[1:])
        return feedparser_date(value)
    except Exception:  # a crash in one of its date handlers is one unreadable date  # noqa: BLE001
        return None


# The common shape of an RSS 2.0 date, "Wed, 15 Jan 2020 10:00:00 +0100": read here the
# way feedparser's RFC 822 handler reads it (the one it tries first on such text), for
# a ninth of the time. Anything else -- two-digit years, other zones, extra words, a
# field out of range -- goes to feedparser's own handlers, as before.
_RFC822_COMMON = re.compile(
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?[ \t]+)?([0-9]{1,2})[ \t]+"
    r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*[ \t]+([0-9]{4})[ \t]+"
    r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?[ \t]+([+-][0-9]{4}|[a-z]+)",
    re.ASCII | re.IGNORECASE,
)
_RFC822_MONTHS = {m: n for n, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
# Only while feedparser tries W3C-DTF and then RFC 822 first (its order since 6.0).
_RFC822_FIRST = _DATE_HANDLERS[:2] == [_parse_date_w3dtf, _parse_date_rfc822]


def _rfc822_common(match: re.Match[str]) -> datetime | None:
    """The date as feedparser's RFC 822 handler gives it, as a UTC datetime; None when
    this shape is not enough to be sure (then feedparser reads it)."""
    day, month, year, hour, minute, second, zone = match.groups()
    offset = _RFC822_OFFSETS.get(zone)
    if offset is None:
        offset = _rfc822_offset(zone.lower())
        if offset is None:
            return None
        if len(_RFC822_OFFSETS) < 1024:
            _RFC822_OFFSETS[zone] = offset
    try:
        stamp = datetime(int(year), _RFC822_MONTHS[month.lower()], int(day), int(hour), int(minute),
                         int(second or 0))
        return (stamp - offset).replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _rfc822_offset(zone: str) -> timedelta | None:
    if zone[0] in "+-":
        hours, minutes = int(zone[1:3]), int(zone[3:])
        if zone[0] == "-":
            hours, minutes = -hours, -minutes
    elif zone in _RFC822_ZONES:
        hours, minutes = _RFC822_ZONES[zone], 0
    else:
        return None
    return timedelta(hours=hours, minutes=minutes)


_RFC822_OFFSETS: dict[str, timedelta] = {}  # a feed writes one zone on every item: each worked out once


def _first_date(value: str, handlers: list[Any]) -> Any:
    """feedparser's ``_parse_date`` over ``handlers``: the first 9-tuple one gives."""
    for handler in handlers:
        try:
            parsed = handler(value)
        except (KeyError, OverflowError, ValueError, AttributeError):
            continue
        if parsed and len(parsed) == 9:
            return parsed
    return None


def _feedparser_tags(entry: Any) -> _ItemTags:
    """Podcasting 2.0 tags as feedparser kept them (at most one of each kind per item)
    and Media RSS ``media:content`` (feedparser flattens ``media:group``, keeps order)."""
    return _ItemTags(
        transcripts=[t for t in [entry.get("podcast_transcript")] if isinstance(t, dict)],
        chapters=[c for c in [entry.get("podcast_chapters")] if isinstance(c, dict)],
        media=[{str(k).lower(): v for k, v in m.items()} for m in entry.get("media_content") or ()
               if isinstance(m, dict)],
    )


def _media_kind(mime: str, medium: str, href: str) -> str | None:
    """"audio", "video" or None, from the MIME type, else Media RSS ``medium``, else the
    file name."""
    if mime.startswith(("audio/", "video/")):
        return mime.partition("/")[0]
    if medium in ("audio", "video"):
        return medium
    if mime or medium:
        return None  # declared as something else: an image, a document...
    path = urlsplit(href).path.lower()
    if path.endswith(_AUDIO_EXTENSIONS):
        return "audio"
    return "video" if path.endswith(_VIDEO_EXTENSIONS) else None


def _media_enclosure(
    enclosures: list[tuple[str, str, str]], base: str | None
) -> tuple[str, str | None, int | None] | None:
    """URL, MIME type and byte length of the item's first audio or video enclosure.

    An enclosure with no media type still counts when its file name is media; its type is
    then unknown (feedparser gives an untyped Atom enclosure link "text/html").
    """
    for written_href, written_type, length in enclosures:
        href = _absolute_url(written_href, base)
        if not href:
            continue
        mime = (written_type or "").strip().lower()
        is_media_type = mime.startswith(("audio/", "video/"))
        if is_media_type or urlsplit(href).path.lower().endswith(_MEDIA_EXTENSIONS):
            # RSS 2.0 puts the size in bytes in `length`; "0" is a common "unknown".
            return href, mime if is_media_type else None, _positive_int(length)
    return None


def media_rss_audio(
    contents: list[dict[str, str]], base: str | None
) -> tuple[str, str | None, int | None, int | None] | None:
    """URL, MIME type, byte length and duration of the ``media:content`` to play.

    Media RSS 1.5.1: ``media:content`` is a child of ``<item>`` or of a ``media:group``
    of "effectively the same content, yet different representations"; ``isDefault``
    marks a group's default object; ``expression`` is sample, full (the default) or
    nonstop; ``fileSize`` is in bytes and ``duration`` in seconds. Preferred, in order:
    audio over video, not a sample, the default object, the largest file, the first.

    >>> media_rss_audio([
    ...     {"url": "https://cdn/clip.mp4", "type": "video/mp4", "filesize": "900"},
    ...     {"url": "https://cdn/lo.mp3", "medium": "audio", "filesize": "100"},
    ...     {"url": "https://cdn/hi.mp3", "type": "audio/mpeg", "filesize": "200", "duration": "61"},
    ...     {"url": "https://cdn/cover.jpg", "type": "image/jpeg", "filesize": "999"},
    ... ], None)
    ('https://cdn/hi.mp3', 'audio/mpeg', 200, 61)
    """
    ranked = []
    for order, content in enumerate(contents):
        href = _absolute_url(content.get("url"), base)
        if not href:
            continue
        mime = (content.get("type") or "").strip().lower()
        kind = _media_kind(mime, (content.get("medium") or "").strip().lower(), href)
        if kind is None:
            continue
        size = _positive_int(content.get("filesize"))
        rank = (
            kind != "audio",
            (content.get("expression") or "").strip().lower() == "sample",
            (content.get("isdefault") or "").strip().lower() != "true",
            -(size or 0),
            order,
        )
        duration = parse_duration(content.get("duration"))
        ranked.append((rank, (href, mime if mime.startswith(kind) else None, size, duration)))
    return min(ranked)[1] if ranked else None


def _show_notes(raw: RawItem, sanitizer: Sanitizer) -> tuple[str, str]:
    """Show notes as sanitized HTML and as plain text: content:encoded (or Atom
    content), else description."""
    if raw.content:
        value, mime, base = raw.content, raw.content_type, raw.content_base
    else:
        value, mime, base = raw.summary, raw.summary_type, raw.summary_base
    value = str(value).strip() if value else ""
    if not value:
        return "", ""
    if mime not in _HTML_TYPES:
        # Plain text: what strip_serialized_html would give back from the escaped text
        # (one line, spaces collapsed), without escaping it only to unescape it.
        if value.isprintable() and "  " not in value:
            # no whitespace but single spaces (the value is stripped), no control and
            # no invisible character: already one tidy line
            return html.escape(value, quote=False), value
        return html.escape(value, quote=False), " ".join(neutralize(value).split())
    cleaned = sanitizer.clean(value, xml_base=base)
    return cleaned, strip_serialized_html(cleaned)


# -------------------------------------------------------------------------- values


def _plain_detail(detail: Any) -> str:
    """The text of a feedparser ``*_detail``, with HTML stripped when it is HTML."""
    return _plain(detail.get("value") or "", detail.get("type") or "") if detail else ""


def _plain(value: str, mime: str) -> str:
    """A text value and its MIME type as plain text: HTML stripped when it is HTML."""
    if not value:
        return ""
    return strip_html(value) if mime in _HTML_TYPES else value.strip()


def _absolute_url(href: str | None, base: str | None) -> str | None:
    """``href`` as an absolute http(s) URL, relative ones joined to ``base``; else None."""
    if not href or not href.strip():
        return None
    if _PLAIN_ABSOLUTE.fullmatch(href):
        return href  # (most URLs: each item's own, so not worth keeping in the cache below)
    return _joined_url(href, base)


# An absolute http(s) URL that urljoin and urlsplit give back unchanged: a lowercase
# scheme, a plain host (and port), no whitespace, brackets or path parameters, no empty
# query or fragment. Most enclosure and link URLs are such; they skip both calls.
_PLAIN_ABSOLUTE = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]*)?(?:/[^\s;?#\[\]]*)?(?:\?[^\s#\[\]]+)?(?:#[^\s\[\]]+)?"
)


# Feeds repeat URLs (one show image on every item, one base): join each pair once.
@functools.lru_cache(maxsize=4096)
def _joined_url(href: str, base: str | None) -> str | None:
    try:
        joined = urljoin(base, href.strip()) if base else href.strip()
        parts = urlsplit(joined)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    return joined if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def _positive_int(value: object) -> int | None:
    """A positive integer written in at most 18 ASCII digits (an int64, as DynamoDB and
    sane feeds need); anything else, including a 5,000-digit "length", is None."""
    text = value.strip() if isinstance(value, str) else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        return None
    return int(text) or None


def _stripped(value: object) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _examples(values: list[str]) -> str:
    shown = ", ".join(repr(v) for v in values[:_EXAMPLES_SHOWN])
    return shown + (", ..." if len(values) > _EXAMPLES_SHOWN else "")
