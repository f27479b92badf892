"""A topic as a podcast feed: RSS 2.0 with the iTunes namespace, so a listener can
subscribe to a topic in any podcast app.

The latest ``FEED_LIMIT`` episodes (duplicates folded, see ``dedup``) that have an
enclosure: an item without audio is useless to a podcast app. Built with ElementTree,
which escapes text and attributes; characters XML 1.0 forbids are removed first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from email.utils import format_datetime

from earshot import __version__
from earshot.identity import is_derived_id
from earshot.models import MatchedEpisode, Topic
from earshot.templating import safe_link
from earshot.textutil import UNTITLED_EPISODE
from earshot.topics.dedup import cluster_episodes

FEED_LIMIT = 100
ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
ATOM_NS = "http://www.w3.org/2005/Atom"
ET.register_namespace("itunes", ITUNES_NS)
ET.register_namespace("atom", ATOM_NS)

# XML 1.0 section 2.2: these code points cannot appear in a document at all.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def item_guid(ep: MatchedEpisode) -> str:
    """The ``<guid>`` of a topic feed item: the publisher's guid, unless the publisher gave
    it to several episodes (``earshot.identity`` then gave each its own id), since RSS 2.0
    says a guid "uniquely identifies the item".

    >>> from earshot.models import MatchedEpisode
    >>> item_guid(MatchedEpisode(feed_id="f", episode_id="g-1", guid="g-1"))
    'g-1'
    >>> item_guid(MatchedEpisode(feed_id="f", episode_id="g-1#0f3a9c2b7d11", guid="g-1"))
    'g-1#0f3a9c2b7d11'
    >>> item_guid(MatchedEpisode(feed_id="f", episode_id="https://cdn/a.mp3", guid=None))
    'https://cdn/a.mp3'
    """
    return ep.episode_id if is_derived_id(ep.episode_id, ep.guid) else ep.guid or ep.episode_id


def _text(parent: ET.Element, tag: str, text: str | None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = _NOT_XML.sub("", text)
    return el


def last_change(topic: Topic, episodes: list[MatchedEpisode], *, now: datetime) -> datetime | None:
    """The channel's ``lastBuildDate`` (RSS 2.0: "the last time the content of the channel
    changed"): the newest of the topic's own dates and its listed episodes' dates, leaving
    out dates after ``now`` (a publisher's future-dated episode). None if there is none.

    >>> from datetime import UTC
    >>> t = Topic(slug="t", name="T", query="t", updated_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> ep = MatchedEpisode(feed_id="f", episode_id="e", published=datetime(2026, 3, 1, tzinfo=UTC))
    >>> last_change(t, [ep], now=datetime(2026, 6, 1, tzinfo=UTC)).date().isoformat()
    '2026-03-01'
    >>> last_change(t, [ep], now=datetime(2026, 2, 1, tzinfo=UTC)).date().isoformat()
    '2026-01-01'
    """
    dates = [topic.created_at, topic.updated_at, *(ep.published for ep in episodes)]
    past = [d for d in dates if d is not None and d <= now]
    return max(past, default=None)


def feed_stable_until(topic: Topic, matches: list[MatchedEpisode], *, now: datetime) -> datetime | None:
    """The first instant after ``now`` at which the feed of these matches could read
    differently with nothing stored changed: a future-dated date reaching ``now`` can move
    ``lastBuildDate`` (:func:`last_change`). None: never. The feed's validator
    (``earshot.web.topics``) holds until then.

    >>> from datetime import UTC
    >>> t = Topic(slug="t", name="T", query="t", updated_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> ahead = MatchedEpisode(feed_id="f", episode_id="e", published=datetime(2026, 7, 1, tzinfo=UTC))
    >>> feed_stable_until(t, [ahead], now=datetime(2026, 6, 1, tzinfo=UTC)).date().isoformat()
    '2026-07-01'
    >>> feed_stable_until(t, [ahead], now=datetime(2026, 8, 1, tzinfo=UTC)) is None
    True
    """
    dates = [topic.created_at, topic.updated_at, *(ep.published for ep in matches)]
    return min((d for d in dates if d is not None and d > now), default=None)


def render_topic_feed(
    topic: Topic, matches: list[MatchedEpisode], *, now: datetime, page_url: str, feed_url: str,
    limit: int = FEED_LIMIT,
) -> bytes:
    """The RSS document (UTF-8 bytes, with XML declaration).

    The same topic and matches give the same bytes whatever ``now`` is, as long as no
    episode's date passes ``now`` in between: the body is what its ETag is computed from
    (``earshot.web.topics``), so a podcast app polling an unchanged topic gets a 304."""
    # Feed-supplied URLs pass the same http(s)-only check as on the page and in the mail:
    # a podcast app may make <link> clickable, and a javascript: enclosure is no audio.
    clusters = [c for c in cluster_episodes(matches) if safe_link(c.representative.audio_url)][:limit]
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    _text(channel, "title", f"{topic.name} · Earshot")
    _text(channel, "link", page_url)
    _text(channel, "description",
          topic.description or f"Podcast episodes about {topic.name}, matched by the query: {topic.query}")
    _text(channel, "language", "en")
    _text(channel, "generator", f"Earshot {__version__}")
    if built := last_change(topic, [c.representative for c in clusters], now=now):
        _text(channel, "lastBuildDate", format_datetime(built))
    ET.SubElement(channel, f"{{{ATOM_NS}}}link", {"href": feed_url, "rel": "self", "type": "application/rss+xml"})
    _text(channel, f"{{{ITUNES_NS}}}author", "Earshot")
    _text(channel, f"{{{ITUNES_NS}}}summary", topic.description or topic.name)
    _text(channel, f"{{{ITUNES_NS}}}explicit", "false")
    _text(channel, f"{{{ITUNES_NS}}}block", "yes")  # a personal aggregate, not for directories

    for cluster in clusters:
        ep = cluster.representative
        item = ET.SubElement(channel, "item")
        _text(item, "title", ep.title.strip() or UNTITLED_EPISODE)
        _text(item, "guid", item_guid(ep), isPermaLink="false")
        if ep.published:
            _text(item, "pubDate", format_datetime(ep.published))
        if link := safe_link(ep.link):
            _text(item, "link", link)
        plural = "s" if cluster.also_in != 1 else ""
        also = f" Also in {cluster.also_in} other podcast{plural}." if cluster.also_in else ""
        _text(item, "description", f"{ep.summary}\n\nFrom {ep.podcast}. Why it matched: {ep.reason}.{also}".strip())
        # RSS 2.0: url, length (bytes) and type are all required on <enclosure>.
        _text(item, "enclosure", None, url=safe_link(ep.audio_url) or "", length=str(ep.audio_length or 0),
              type=ep.audio_type or "audio/mpeg")
        _text(item, f"{{{ITUNES_NS}}}author", ep.podcast)
        if ep.duration_seconds:
            _text(item, f"{{{ITUNES_NS}}}duration", str(ep.duration_seconds))
        if image := safe_link(ep.image):
            ET.SubElement(item, f"{{{ITUNES_NS}}}image", {"href": image})
    ET.indent(rss)
    return bytes(ET.tostring(rss, encoding="utf-8", xml_declaration=True))
