"""Prototype (bench only, not Earshot code): a fast parse path for ``earshot.ingest.parser``.

``parse_feed_fast`` keeps everything of ``parse_feed`` except the feedparser call:

1. the same refusal of empty bodies and the same expat pass (``parser._scan``: entity
   declarations refused, Podcasting 2.0 tags collected);
2. ``feedparser_rs.parse`` (Rust, feedparser-compatible dict API) instead of feedparser;
3. the same mapping to Episodes (``parser._feed_info`` / ``parser._episodes``), with the
   HTML fields passed through feedparser's own sanitizer so summaries match;
4. fallback to ``parse_feed`` (feedparser) for anything the fast path does not accept
   cleanly: XML that expat could not read, a bozo result, an unknown version, or a
   different item count than expat saw.

It reaches into ``earshot.ingest.parser``'s private helpers on purpose: the proposal is to move
exactly this into ``parser.py`` (see docs/benchmarks.md), not to keep a copy.
"""

from __future__ import annotations

import re
from html.entities import name2codepoint
from typing import Any

import feedparser_rs
from feedparser.sanitizer import _sanitize_html as sanitize_html

from earshot.ingest import parser as ep
from earshot.errors import NotAFeed
from earshot.models import ParsedFeed

_HTML = frozenset({"text/html", "application/xhtml+xml"})
# feedparser's sanitizer turns named HTML entities into characters, except the five XML
# ones; feedparser-rs leaves them as written.
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]{1,31});")
_KEEP = frozenset({"lt", "gt", "amp", "quot", "apos"})


def _decode_entities(value: str) -> str:
    if "&" not in value:
        return value
    return _ENTITY.sub(lambda m: m.group(0) if m.group(1) in _KEEP or m.group(1) not in name2codepoint
                       else chr(name2codepoint[m.group(1)]), value)
FALLBACKS = {"count": 0, "reasons": {}}


def _fallback(body: bytes, url: str | None, reason: str) -> ParsedFeed:
    FALLBACKS["count"] += 1
    FALLBACKS["reasons"][reason] = FALLBACKS["reasons"].get(reason, 0) + 1
    return ep.parse_feed(body, url=url)


class _Detail(dict):
    """A feedparser ``*_detail`` dict built from feedparser-rs's TextConstruct/Content."""


def _detail(obj: Any, *, sanitize: bool) -> dict | None:
    if obj is None:
        return None
    value, mime = obj.get("value") or "", obj.get("type") or "text/plain"
    if sanitize and mime in _HTML and value:
        value = _decode_entities(sanitize_html(value, "utf-8", mime))
    return _Detail(value=value, type=mime)


class _Entry(dict):
    """The keys ``parser._draft`` reads, as feedparser would have them."""


def _entry(e: Any) -> _Entry:
    out = _Entry()
    for key in ("id", "link", "guidislink", "published", "updated", "published_parsed", "updated_parsed",
                "itunes_duration", "itunes_episode", "itunes_season"):
        value = e.get(key)
        if value is not None:
            out[key] = value
    out["title_detail"] = _detail(e.get("title_detail"), sanitize=True)
    out["summary_detail"] = _detail(e.get("summary_detail"), sanitize=True)
    out["content"] = [d for c in (e.get("content") or ()) if (d := _detail(c, sanitize=True))]
    out["enclosures"] = [{"href": x.get("href"), "type": x.get("type"), "length": _s(x.get("length"))}
                         for x in (e.get("enclosures") or ())]
    image = e.get("image") or (e.get("itunes") or {}).get("image")
    if image is not None:
        out["image"] = {"href": image.get("href") if hasattr(image, "get") else image}
    return out


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_feed_fast(body: bytes, *, url: str | None = None) -> ParsedFeed:
    if not body.strip():
        raise NotAFeed("empty body")
    scan = ep._scan(body)  # raises UnsafeXml exactly as parse_feed does
    if scan.error is not None or scan.items is None:
        return _fallback(body, url, "expat could not read it")
    result = feedparser_rs.parse(body)
    version = result.version or ""
    if result.bozo or not version:
        return _fallback(body, url, "bozo or unknown format")
    entries = [_entry(e) for e in result.entries]
    if len(entries) != len(scan.items):
        return _fallback(body, url, "item count differs from expat")
    channel = result.feed
    info_src = {k: channel.get(k) for k in ("link", "language", "author", "generator", "ttl")}
    info_src["title_detail"] = _detail(channel.get("title_detail"), sanitize=True)
    info_src["summary_detail"] = _detail(channel.get("summary_detail"), sanitize=True)
    info_src["subtitle_detail"] = _detail(channel.get("subtitle_detail"), sanitize=True)
    image = channel.get("image")
    info_src["image"] = {"href": image.get("href")} if image is not None else None
    info_src["ttl"] = _s(info_src["ttl"])
    info = ep._feed_info(info_src, version, scan, url)
    if not entries:
        return _fallback(body, url, "no items")
    episodes, choices, warnings = ep._episodes(entries, scan.items, url)
    return ParsedFeed(feed=info, episodes=episodes, warnings=warnings, id_choices=choices)
