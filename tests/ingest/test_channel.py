"""The fast path's channel reader against feedparser, channel by channel.

Each case is a channel (its own elements, and where the items are) written into a whole
RSS document. The fast path reads the document; the channel reader
(``earshot.ingest.channel``) either reads the channel's elements or declines them, as
the case says; when it reads them, its ``FeedInfo`` must be the one the fallback
(feedparser on the whole document) gives. Whatever the reader did, ``parse_feed``'s feed
and warnings must be the fallback's (a declined channel goes to feedparser alone).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from earshot.ingest import parser as parser_module
from earshot.ingest.channel import FEEDPARSER_HANDLED, FEEDPARSER_NAMESPACES, read_channel
from earshot.ingest.fastparse import Declined, read_feed
from earshot.ingest.parser import parse_feed

FEED_URL = "https://feeds.example.com/show/feed.xml"
NAMESPACES = (
    'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:media="http://search.yahoo.com/mrss/" xmlns:podcast="https://podcastindex.org/namespace/1.0" '
    'xmlns:atom="http://www.w3.org/2005/Atom" xmlns:googleplay="http://www.google.com/schemas/play-podcasts/1.0"'
)
ITEM = "<item><title>Episode</title><guid>ep-{n}</guid><enclosure url='https://cdn.example/{n}.mp3' type='audio/mpeg'/></item>"


def document(channel: str, *, root: str = "", encoding: str = "utf-8") -> bytes:
    """A whole RSS document: ``{item}`` in ``channel`` marks where an item goes (one
    at the end when there is none)."""
    if "{item}" not in channel:
        channel += "{item}"
    parts = channel.split("{item}")
    body = parts[0] + "".join(ITEM.format(n=n) + part for n, part in enumerate(parts[1:]))
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\n'
            f'<rss version="2.0" {NAMESPACES} {root}><channel>{body}</channel></rss>')
    return text.encode(encoding)


def check(body: bytes) -> str:
    """Run the channel reader and feedparser on ``body``; return "read" or "declined"."""
    fast = read_feed(body, lambda entry, tags: None)  # the fast path reads every document here
    reference = parse_feed(body, url=FEED_URL, parser="feedparser")
    try:
        values: Any = read_channel(fast.channel, parser_module.feedparser_date)
    except Declined:
        status = "declined"
    else:
        status = "read"
        scan = parser_module._Scan(root="rss", podcast_guid=fast.podcast_guid, items=[], has_channel=True)
        assert parser_module._feed_info(values, fast.version, scan, FEED_URL) == reference.feed
    parsed = parse_feed(body, url=FEED_URL)
    assert (parsed.feed, parsed.warnings) == (reference.feed, reference.warnings)
    return status


READ, DECLINED = "read", "declined"
CASES: list[tuple[str, str, str, str]] = [
    # (id, channel, attributes of <rss>, expected)
    # ---- titles
    ("title", "<title>Show</title>", "", READ),
    ("no-title", "<link>https://example.com/</link>", "", READ),
    ("empty-title-then-title", "<title></title><title>Second</title>", "", READ),
    ("blank-title-then-title", "<title>  \n </title><title>Second</title>", "", READ),
    ("two-titles-first-wins", "<title>First</title><title>Second</title>", "", READ),
    ("image-title-before-title", "<image><url>https://example.com/a.jpg</url><title>Image</title></image><title>Show</title>", "", READ),
    ("title-image-title", "<title>First</title><image><title>Image</title><url>u.jpg</url></image><title>Second</title>", "", READ),
    ("title-image-without-title-title", "<title>First</title><image><url>u.jpg</url></image><title>Second</title>", "", READ),
    ("title-empty-image-title-title", "<title>First</title><image><title></title></image><title>Second</title>", "", READ),
    ("text-only-image-unlocks", "<title>First</title><image>https://example.com/a.jpg</image><title>Second</title>", "", READ),
    ("textinput-unlocks", "<title>First</title><textInput><title>Search</title><link>https://s/</link><name>q</name><description>d</description></textInput><title>Second</title>", "", READ),
    ("title-after-an-item", "<title>First</title>{item}<title>Second</title>", "", READ),
    ("empty-title-after-an-item", "<title>First</title>{item}<title></title>", "", READ),
    ("dc-title", "<dc:title>Dublin</dc:title>", "", READ),
    ("dc-title-after-title", "<title>Show</title><dc:title>Dublin</dc:title>", "", READ),
    ("media-title-only", "<media:title>Media</media:title>", "", READ),
    ("media-title-then-title", "<media:title>Media</media:title><title>Show</title>", "", READ),
    ("title-then-media-title", "<title>Show</title><media:title>Media</media:title>", "", READ),
    ("media-title-does-not-lock", "<media:title>Media</media:title><title></title>", "", READ),
    ("media-title-in-media-content", "<media:content url='https://cdn/x.mp3'><media:title>Inner</media:title></media:content>", "", READ),
    ("title-entities", "<title>Tom &amp; Jerry</title>", "", READ),
    ("title-escaped-entity-is-html", "<title>A &amp;amp; B &amp;eacute;</title>", "", READ),
    ("title-unknown-entity-is-text", "<title>A &amp;bogus; B</title>", "", READ),
    ("title-escaped-html", "<title>&lt;b&gt;Bold&lt;/b&gt; show</title>", "", READ),
    ("title-cdata-html", "<title><![CDATA[<i>Italic</i> show]]></title>", "", READ),
    ("title-unknown-tag-is-text", "<title>&lt;foo&gt;x&lt;/foo&gt;</title>", "", READ),
    ("title-type-html", "<title type='html'>&lt;b&gt;B&lt;/b&gt;</title>", "", READ),
    ("title-type-text", "<title type='text'>Plain &amp;amp; simple</title>", "", READ),
    ("title-type-xhtml", "<title type='xhtml'>X</title>", "", DECLINED),
    ("title-base64", "<title mode='base64'>U2hvdw==</title>", "", DECLINED),
    ("title-markup-inside", "<title>A <b>bold</b> title</title>", "", DECLINED),
    ("title-whitespace", "<title>\n   Spaced \t  show \n</title>", "", READ),
    ("title-mis-decoded-utf8", "<title>Caf\u00c3\u00a9 \u00e2\u0080\u0094 Show</title>", "", READ),
    ("title-c1-controls", "<title>It&#146;s &#150; on</title>", "", READ),
    ("title-namespaced-attribute", "<title itunes:type='x'>Show</title>", "", DECLINED),
    # ---- links
    ("link-text", "<title>S</title><link>https://example.com/</link>", "", READ),
    ("link-atom-self-then-link", "<atom:link rel='self' href='https://example.com/feed' type='application/rss+xml'/><link>https://example.com/</link>", "", READ),
    ("link-atom-alternate", "<atom:link rel='alternate' href='https://example.com/alt'/>", "", READ),
    ("link-atom-alternate-after-link", "<link>https://example.com/</link><atom:link href='https://example.com/alt'/>", "", READ),
    ("link-atom-alternate-rss-type", "<atom:link rel='alternate' type='application/rss+xml' href='https://example.com/rss'/>", "", READ),
    ("link-atom-url-attribute", "<atom:link url='https://example.com/u'/>", "", READ),
    ("link-query-entity", "<link>https://example.com/?a=1&amp;amp;b=2</link>", "", READ),
    ("link-extra-slashes", "<link>https:////example.com/x</link>", "", READ),
    ("link-relative", "<link>/show</link>", "", READ),
    ("link-empty", "<link></link>", "", READ),
    ("link-last-wins", "<link>https://a.example/</link><link>https://b.example/</link>", "", READ),
    ("link-in-image-is-not-the-link", "<image><url>u.jpg</url><link>https://image.example/</link></image>", "", READ),
    ("guid-is-the-link-when-none", "<guid>https://example.com/guid</guid><link>https://example.com/later</link>", "", READ),
    ("guid-alone", "<guid>https://example.com/guid</guid>", "", READ),
    ("guid-not-permalink", "<guid isPermaLink='false'>abc</guid>", "", READ),
    ("link-then-guid", "<link>https://example.com/</link><guid>https://example.com/guid</guid>", "", READ),
    ("channel-href-attribute", "<title>S</title>", "", READ),
    # ---- descriptions
    ("description", "<description>About the show</description>", "", READ),
    ("description-html", "<description>&lt;p&gt;About &lt;b&gt;it&lt;/b&gt;&lt;/p&gt;</description>", "", READ),
    ("itunes-summary", "<itunes:summary>Summary</itunes:summary>", "", READ),
    ("summary-then-description", "<itunes:summary>Summary</itunes:summary><description>Description</description>", "", READ),
    ("description-then-summary", "<description>Description</description><itunes:summary>Summary</itunes:summary>", "", READ),
    ("empty-summary-then-description", "<itunes:summary></itunes:summary><description>Description</description>", "", READ),
    ("summary-description-description", "<itunes:summary>S</itunes:summary><description>D1</description><description>D2</description>", "", READ),
    ("summary-twice", "<itunes:summary>S1</itunes:summary><itunes:summary>S2</itunes:summary><itunes:summary>S3</itunes:summary>", "", READ),
    ("subtitle-and-description", "<itunes:subtitle>Sub</itunes:subtitle><description>Desc</description>", "", READ),
    ("description-and-subtitle", "<description>Desc</description><itunes:subtitle>Sub</itunes:subtitle>", "", READ),
    ("subtitle-looks-like-html", "<itunes:subtitle>a &amp;amp; b</itunes:subtitle>", "", READ),
    ("summary-after-an-item", "<itunes:summary>S</itunes:summary>{item}<description>D</description>", "", READ),
    ("summary-content-item-description", "<itunes:summary>S</itunes:summary><description>D1</description>{item}<itunes:summary>S2</itunes:summary>", "", READ),
    ("dc-description", "<dc:description>DC</dc:description>", "", READ),
    ("media-description-plain", "<media:description type='plain'>Media &amp;amp; more</media:description>", "", READ),
    ("abstract", "<abstract>Abstract</abstract>", "", READ),
    ("description-markup-inside", "<description>a<br/>b</description>", "", DECLINED),
    # ---- images
    ("itunes-image", "<itunes:image href='https://example.com/i.jpg'/>", "", READ),
    ("itunes-image-url-attribute", "<itunes:image url='https://example.com/u.jpg'/>", "", READ),
    ("itunes-image-empty-href", "<itunes:image href='' url='https://example.com/u.jpg'/>", "", READ),
    ("image-url", "<image><url>https://example.com/rss.jpg</url><title>T</title><link>https://example.com/</link><width>144</width><height>x</height></image>", "", READ),
    ("itunes-image-then-image-url", "<itunes:image href='https://example.com/i.jpg'/><image><url>https://example.com/rss.jpg</url></image>", "", READ),
    ("image-url-then-itunes-image", "<image><url>https://example.com/rss.jpg</url></image><itunes:image href='https://example.com/i.jpg'/>", "", READ),
    ("itunes-image-then-image-without-url", "<itunes:image href='https://example.com/i.jpg'/><image><title>T</title></image>", "", READ),
    ("image-relative-url", "<image><url>/cover.jpg</url></image>", "", READ),
    ("image-empty-url", "<itunes:image href='https://example.com/i.jpg'/><image><url></url></image>", "", READ),
    ("itunes-link-image", "<itunes:link rel='image' type='image/jpeg' href='https://example.com/l.jpg'>x</itunes:link>", "", READ),
    ("image-with-other-child", "<image><url>u.jpg</url><itunes:image href='x.jpg'/></image>", "", DECLINED),
    ("image-with-unprefixed-other-child", "<image><url>u.jpg</url><foo>bar</foo><title>T</title></image>", "", DECLINED),
    ("googleplay-image-is-not-the-image", "<googleplay:image href='https://example.com/g.jpg'/>", "", READ),
    # ---- authors
    ("managing-editor-email-name", "<managingEditor>jane@example.com (Jane Doe)</managingEditor>", "", READ),
    ("only-itunes-author", "<itunes:author>Jane Doe</itunes:author>", "", READ),
    ("itunes-author-angle-email", "<itunes:author>Jane &lt;jane@example.com&gt;</itunes:author>", "", READ),
    ("managing-editor-then-itunes-author", "<managingEditor>ed@example.com</managingEditor><itunes:author>Jane</itunes:author>", "", READ),
    ("itunes-author-then-owner", "<itunes:author>Jane</itunes:author><itunes:owner><itunes:name>Owner</itunes:name><itunes:email>o@example.com</itunes:email></itunes:owner>", "", READ),
    ("email-author-then-owner", "<itunes:author>jane@example.com (Jane)</itunes:author><itunes:owner><itunes:name>Owner</itunes:name><itunes:email>o@example.com</itunes:email></itunes:owner>", "", READ),
    ("owner-then-itunes-author", "<itunes:owner><itunes:name>Owner</itunes:name><itunes:email>o@example.com</itunes:email></itunes:owner><itunes:author>Jane</itunes:author>", "", READ),
    ("only-owner-name-then-email", "<itunes:owner><itunes:name>Owner</itunes:name><itunes:email>o@example.com</itunes:email></itunes:owner>", "", READ),
    ("only-owner-email-then-name", "<itunes:owner><itunes:email>o@example.com</itunes:email><itunes:name>Owner</itunes:name></itunes:owner>", "", READ),
    ("only-owner-name", "<itunes:owner><itunes:name>Owner</itunes:name></itunes:owner>", "", READ),
    ("owner-empty-name", "<itunes:author>Jane</itunes:author><itunes:owner><itunes:name></itunes:name><itunes:email>o@example.com</itunes:email></itunes:owner>", "", READ),
    ("empty-author-then-owner", "<itunes:author></itunes:author><itunes:owner><itunes:name>Owner</itunes:name><itunes:email>o@example.com</itunes:email></itunes:owner>", "", READ),
    ("author-owner-creator", "<itunes:author>Jane</itunes:author><itunes:owner><itunes:name>Owner</itunes:name></itunes:owner><dc:creator>Creator</dc:creator>", "", READ),
    ("two-owners", "<itunes:owner><itunes:name>A</itunes:name></itunes:owner><itunes:owner><itunes:email>b@example.com</itunes:email></itunes:owner>", "", READ),
    ("owner-mis-decoded-name", "<itunes:owner><itunes:name>Jos\u00c3\u00a9</itunes:name><itunes:email>j@example.com</itunes:email></itunes:owner>", "", READ),
    ("author-mis-decoded", "<itunes:author>Jos\u00c3\u00a9</itunes:author>", "", READ),
    ("webmaster-is-not-the-author", "<webMaster>web@example.com (Web)</webMaster><dc:publisher>Pub</dc:publisher>", "", READ),
    ("googleplay-author-is-not-the-author", "<googleplay:author>G</googleplay:author><googleplay:email>g@example.com</googleplay:email>", "", READ),
    ("author-with-children", "<author><name>Jane</name><email>j@example.com</email></author>", "", DECLINED),
    ("owner-with-other-child", "<itunes:owner><itunes:name>O</itunes:name><itunes:image href='x'/></itunes:owner>", "", DECLINED),
    ("contributor", "<itunes:author>Jane</itunes:author><contributor><name>C</name><uri>https://c.example/</uri></contributor>", "", READ),
    # ---- language
    ("language", "<language>en-us</language>", "", READ),
    ("root-xml-lang", "<title>S</title>", 'xml:lang="en_GB"', READ),
    ("root-xml-lang-and-language", "<language>fr</language>", 'xml:lang="en"', READ),
    ("root-xml-lang-empty-language", "<language></language>", 'xml:lang="en"', READ),
    ("root-lang-attribute", "<title>S</title>", 'lang="de"', READ),
    ("root-empty-xml-lang", "<title>S</title>", 'xml:lang=""', READ),
    ("dc-language", "<dc:language>nl</dc:language>", "", READ),
    ("language-after-an-item", "<language>en</language>{item}<language>es</language>", "", READ),
    # ---- ttl, generator, podcast:guid
    ("ttl", "<ttl>60</ttl>", "", READ),
    ("ttl-with-attribute", "<ttl unit='m'>60</ttl>", "", READ),
    ("ttl-not-a-number", "<ttl>soon</ttl>", "", READ),
    ("ttl-twice", "<ttl>60</ttl><ttl>30</ttl>", "", READ),
    ("generator", "<generator>Earshot Studio 1.0</generator>", "", READ),
    ("generator-with-attributes", "<generator uri='https://gen.example/' version='2'>Gen</generator>", "", READ),
    ("podcast-guid", "<podcast:guid>917393e3-1b1e-5cef-ace4-edaa54e1f810</podcast:guid>", "", READ),
    ("podcast-guid-empty-then-guid", "<podcast:guid></podcast:guid><podcast:guid>abc</podcast:guid>", "", READ),
    ("podcast-prefix-other-namespace", "<pc:guid xmlns:pc='https://podcastindex.org/namespace/1.0'>x</pc:guid><podcast:guid xmlns:podcast='urn:other'>y</podcast:guid>", "", READ),
    # ---- other channel elements
    ("common-podcast-channel", "<title>Show</title><link>https://example.com/</link><language>en</language><copyright>&#169; 2024</copyright><itunes:category text='Arts'><itunes:category text='Books'/></itunes:category><itunes:explicit>no</itunes:explicit><itunes:type>episodic</itunes:type><itunes:keywords>a,b</itunes:keywords><lastBuildDate>Wed, 15 Jan 2020 10:00:00 +0000</lastBuildDate><pubDate>Wed, 15 Jan 2020 10:00:00 GMT</pubDate><category>Tech</category><docs>https://cyber.harvard.edu/rss/rss.html</docs><sy:updatePeriod xmlns:sy='http://purl.org/rss/1.0/modules/syndication/'>hourly</sy:updatePeriod><skipDays><day>Monday</day></skipDays>", "", READ),
    ("podcasting20-tags", "<podcast:locked owner='a@example.com'>yes</podcast:locked><podcast:funding url='https://f/'>Fund</podcast:funding><podcast:value type='lightning' method='keysend'><podcast:valueRecipient name='A' address='x' split='100'/></podcast:value><podcast:person role='host'>P</podcast:person><podcast:podroll><podcast:remoteItem feedGuid='g'/></podcast:podroll>", "", READ),
    ("media-tags", "<media:thumbnail url='https://t/'/><media:rating scheme='urn:simple'>nonadult</media:rating><media:credit role='author'>C</media:credit><media:category scheme='s'>x</media:category><media:keywords>a, b</media:keywords><media:copyright>c</media:copyright>", "", READ),
    ("cloud", "<cloud domain='rpc.example' port='80' path='/RPC2' registerProcedure='p' protocol='xml-rpc'/>", "", READ),
    ("live-item-after-title-and-link", "<title>Show</title><link>https://example.com/</link><podcast:liveItem status='live' start='2024-01-01T00:00:00Z'><title>Live</title><link>https://live.example/</link><guid>live-1</guid><description>Live now</description><itunes:image href='https://live.example/i.jpg'/><enclosure url='https://live.example/s' type='audio/mpeg'/></podcast:liveItem>", "", READ),
    ("live-item-before-title", "<podcast:liveItem status='live'><title>Live</title><link>https://live.example/</link></podcast:liveItem><title>Show</title>", "", READ),
    ("live-item-title-unlocks-later-title", "<title>Show</title><podcast:liveItem status='live'><title>Live</title></podcast:liveItem><title>Later</title>", "", READ),
    ("live-item-after-an-item", "<title>Show</title>{item}<podcast:liveItem status='live'><title>Live</title></podcast:liveItem>", "", DECLINED),
    ("live-item-summary-description", "<itunes:summary>S</itunes:summary><podcast:liveItem status='live'><description>D</description></podcast:liveItem><description>Channel</description>", "", READ),
    ("unknown-element-named-links", "<links>x</links><link>https://example.com/</link>", "", DECLINED),
    ("unknown-element-named-like-a-detail", "<x:title_detail xmlns:x='urn:x'>v</x:title_detail>", "", DECLINED),
    # feedparser 6 has the admin module but does not mix it in: no handler
    ("admin-generator-agent", "<generator>G</generator><admin:generatorAgent xmlns:admin='http://webns.net/mvcb/' xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#' rdf:resource='https://gen.example/'/>", "", READ),
    ("unknown-element-named-like-a-detail", "<title_detail>v</title_detail>", "", DECLINED),
    ("channel-date-feedparser-reads", "<pubDate>9999-12-31T23:59:59-01:00</pubDate><lastBuildDate>not a date</lastBuildDate>", "", READ),
    ("atom-namespaced-title", "<atom:title>Atom title</atom:title>", "", READ),
    ("rss-namespace-title", "<r:title xmlns:r='http://backend.userland.com/rss2'>R</r:title>", "", READ),
    ("unknown-default-namespace-title", "<title xmlns='urn:unknown'>U</title>", "", READ),
]


@pytest.mark.parametrize(("channel", "root", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_the_channel_reader_gives_feedparsers_feed(channel: str, root: str, expected: str) -> None:
    assert check(document(channel, root=root)) == expected


def test_a_prefix_bound_to_another_known_namespace_is_declined() -> None:
    # feedparser maps the prefix "itunes" to Dublin Core here, so the element it names
    # itunes:image is dc:image to it (no handler: no image), and itunes:author dc:author
    body = (b'<rss version="2.0" xmlns:itunes="http://purl.org/dc/elements/1.1/" '
            b'xmlns:i="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel><title>S</title>'
            b"<i:image href='https://example.com/i.jpg'/><i:author>A</i:author>"
            b"<item><guid>a</guid></item></channel></rss>")
    assert check(body) == DECLINED


def test_a_declined_channel_with_elements_after_items_goes_to_feedparser_whole() -> None:
    # after an item's title, feedparser does not store a title inside another channel
    # element; the channel's elements read alone would store it
    body = document("<link>https://example.com/</link>{item}<media:content url='https://m/'>"
                    "<media:title>MT</media:title></media:content>")
    assert check(body) == DECLINED
    with pytest.raises(Declined):
        parser_module.parse_fast(body, url=FEED_URL)


@pytest.mark.parametrize("declaration", [b'xmlns:r="http://purl.org/rss/1.0/"',
                                         b'xmlns="http://my.netscape.com/rdf/simple/0.9/"'])
def test_a_format_named_by_a_namespace_on_the_root_goes_to_feedparser(declaration: bytes) -> None:
    body = document("<title>S</title>").replace(b"<rss ", b"<rss " + declaration + b" ")
    with pytest.raises(Declined):
        parser_module.parse_fast(body, url=FEED_URL)
    assert parse_feed(body, url=FEED_URL).feed == parse_feed(body, url=FEED_URL, parser="feedparser").feed


@pytest.mark.parametrize("base", ["base", "BASE", "x:base"])
def test_a_base_attribute_sends_the_whole_document_to_feedparser(base: str) -> None:
    # feedparser resolves every later relative URL against it, the items' guids too
    body = document(f"<title {base}='https://other.example/dir/' xmlns:x='urn:x'>S</title><link>/home</link>",
                    root="").replace(b"<guid>ep-0</guid>", b"<guid>ep-0</guid><link>/ep</link>")
    with pytest.raises(Declined):
        parser_module.parse_fast(body, url=FEED_URL)
    auto, fallback = parse_feed(body, url=FEED_URL), parse_feed(body, url=FEED_URL, parser="feedparser")
    assert (auto.feed, auto.episodes) == (fallback.feed, fallback.episodes)


def test_an_element_outside_the_channel_sends_the_whole_document_to_feedparser() -> None:
    # feedparser files an itunes:image after </channel> with the feed
    body = document("<title>S</title>").replace(
        b"</channel>", b"</channel><itunes:image href='https://example.com/i.jpg'/>")
    with pytest.raises(Declined):
        parser_module.parse_fast(body, url=FEED_URL)
    assert parse_feed(body, url=FEED_URL).feed.image == "https://example.com/i.jpg"


def test_a_channel_of_many_empty_elements_is_bounded() -> None:
    # kept whole until the end, the channel's own elements are counted as written out
    body = document("<title>S</title>" + "<x/>" * 30_000)
    with pytest.raises(Declined, match="more than 1 MB"):
        read_feed(body, lambda entry, tags: None)


def test_channel_href_is_a_link() -> None:
    body = document("<title>S</title>").replace(b"<channel>", b"<channel href='https://example.com/h'>")
    assert check(body) == READ
    assert parse_feed(body, url=FEED_URL).feed.link == "https://example.com/h"


@pytest.mark.parametrize("encoding", ["windows-1252", "iso-8859-1"])
def test_a_single_byte_document_is_repaired_as_feedparser_repairs_it(encoding: str) -> None:
    # feedparser's parser works in UTF-8 whatever the document's encoding, so it repairs
    # mis-decoded UTF-8 in any of them
    body = document("<title>Caf\u00c3\u00a9</title><itunes:author>Jos\u00e9</itunes:author>", encoding=encoding)
    assert check(body) == READ
    assert parse_feed(body, url=FEED_URL).feed.title == "Café"


# Snippets for random channels: every rule above, in any order and with items between.
SNIPPETS = [
    "<title>T1</title>", "<title></title>", "<title>T2 &amp;amp; co</title>", "<dc:title>DC</dc:title>",
    "<media:title>M</media:title>", "<image><url>https://i.example/1.jpg</url><title>I</title></image>",
    "<image><url>/2.jpg</url></image>", "<image>text</image>", "<image><title></title></image>",
    "<itunes:image href='https://i.example/3.jpg'/>", "<itunes:image url='https://i.example/4.jpg'/>",
    "<textInput><title>Q</title></textInput>", "<link>https://l.example/1</link>", "<link></link>",
    "<atom:link rel='self' href='https://l.example/feed'/>", "<atom:link href='https://l.example/2'/>",
    "<guid>https://l.example/g</guid>", "<description>D &lt;b&gt;x&lt;/b&gt;</description>",
    "<description></description>", "<itunes:summary>S</itunes:summary>", "<itunes:summary></itunes:summary>",
    "<itunes:subtitle>Sub</itunes:subtitle>", "<managingEditor>m@example.com (M)</managingEditor>",
    "<itunes:author>A</itunes:author>", "<itunes:author></itunes:author>", "<dc:creator>c@example.com</dc:creator>",
    "<itunes:owner><itunes:name>O</itunes:name><itunes:email>o@example.com</itunes:email></itunes:owner>",
    "<itunes:owner><itunes:email>p@example.com</itunes:email></itunes:owner>", "<language>en</language>",
    "<language></language>", "<ttl>15</ttl>", "<generator>G</generator>", "<podcast:guid>pg</podcast:guid>",
    "<itunes:category text='A'><itunes:category text='B'/></itunes:category>", "<copyright>C</copyright>",
    "<podcast:liveItem status='live'><title>L</title><link>https://live.example/</link>"
    "<description>LD</description></podcast:liveItem>",
    "<media:content url='https://m/'><media:title>MT</media:title></media:content>", "{item}", "{item}",
    "<title>  </title>", "<title>Caf\u00c3\u00a9</title>", "<title type='html'>H &amp;amp;</title>",
    "<textInput><title></title><link>x</link></textInput>", "<guid isPermaLink='false'>g</guid>", "<guid>/rel</guid>",
    "<atom:link rel='alternate' type='text/html' href='/alt'/>", "<link>https:///x.example/a?b=1&amp;amp;c=2</link>",
    "<itunes:author>x@example.com (X)</itunes:author>", "<managingEditor>Ed &lt;ed@example.com&gt;</managingEditor>",
    "<itunes:owner><itunes:name></itunes:name></itunes:owner>", "<dc:creator></dc:creator>",
    "<podcast:liveItem status='live'><itunes:summary>LS</itunes:summary><itunes:image href='https://live/i.jpg'/>"
    "<guid>https://live/g</guid></podcast:liveItem>",
    "<podcast:liveItem status='live'><image><url>https://live/u.jpg</url><title>LT</title></image></podcast:liveItem>",
    "<podcast:liveItem status='live'><itunes:author>LA</itunes:author><itunes:owner>"
    "<itunes:email>lo@example.com</itunes:email></itunes:owner></podcast:liveItem>",
    "<media:group><media:description>MGD</media:description></media:group>", "<abstract>ABS</abstract>",
    "<itunes:subtitle></itunes:subtitle>", "<language>en_US</language>", "<ttl> 45 </ttl>",
    "<pubDate>Wed, 15 Jan 2020 10:00:00 +0000</pubDate>", "<generator></generator>", "<podcast:guid> pg2 </podcast:guid>",
    "<itunes:link rel='image' href='https://l/i.jpg'/>", "<skipHours><hour>1</hour></skipHours>",
]


@pytest.mark.parametrize("seed", range(300))
def test_random_channels_read_as_feedparser_reads_them(seed: int) -> None:
    rng = random.Random(seed)
    channel = "".join(rng.choice(SNIPPETS) for _ in range(rng.randint(1, 10)))
    root = rng.choice(["", 'xml:lang="en_US"', 'lang="fr"', 'xml:lang=""'])
    check(document(channel, root=root))


def test_the_tables_copied_from_feedparser_are_feedparsers() -> None:
    # feedparser is imported here only to read its own tables: the channel reader copies them
    import feedparser.api
    import feedparser.mixin

    namespaces = {uri.lower(): prefix for uri, prefix in feedparser.mixin._FeedParserMixin.namespaces.items()}
    assert namespaces == FEEDPARSER_NAMESPACES
    parser_class = feedparser.api.StrictFeedParser
    handled = {name.split("_", 2)[2] for name in dir(parser_class) if name.startswith(("_start_", "_end_"))}
    assert handled == FEEDPARSER_HANDLED
