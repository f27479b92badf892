"""The only HTML sanitizer: show notes from any parser path become the same safe HTML.

Earshot's own allow-list, applied by Ammonia (through nh3) to the HTML of every item,
whichever parser read the XML: feedparser runs with its sanitizer and relative-URI
resolution off, and the fast path has neither, so what a page or a digest shows no
longer depends on which parser read the feed.

What is kept: text structure and inline markup (paragraphs, lists, headings, quotes,
tables, emphasis, code), links and images. Links keep ``href`` and ``title`` and get
``rel="nofollow noopener noreferrer"``; images keep ``src``, ``alt``, ``title``,
``width`` and ``height``. Only ``http``, ``https`` and ``mailto`` URLs survive; relative
URLs are resolved against the feed's URL (``xml:base`` first, where a document sets
it). Everything else goes: scripts and styles with their content, event handlers,
``style`` attributes, forms, frames, comments.

>>> sanitizer = Sanitizer("https://example.com/show/feed.xml")
>>> sanitizer.clean('<p onclick="x()">Hi <a href="ep1.html">one</a><script>bad()</script></p>')
'<p>Hi <a href="https://example.com/show/ep1.html" rel="nofollow noopener noreferrer">one</a></p>'
>>> sanitizer.clean('<img src="javascript:alert(1)" alt="x"><iframe src="https://e.com/"></iframe>')
'<img alt="x">'
"""

from __future__ import annotations

from urllib.parse import urljoin

import nh3

ALLOWED_TAGS = frozenset({
    "a", "abbr", "acronym", "address", "b", "big", "blockquote", "br", "caption", "center", "cite", "code",
    "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q",
    "s", "samp", "small", "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var",
})
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "acronym": {"title"},
    "blockquote": {"cite"},
    "del": {"cite", "datetime"},
    "img": {"src", "alt", "title", "width", "height"},
    "ins": {"cite", "datetime"},
    "ol": {"start"},
    "q": {"cite"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Contents dropped with the element (Ammonia's default pair plus what only scripts or
# layout use); every other disallowed element is dropped and its text kept.
DROPPED_WITH_CONTENT = frozenset({"script", "style", "template", "noscript", "head", "title", "svg", "math"})
LINK_REL = "nofollow noopener noreferrer"


class Sanitizer:
    """Cleans HTML fragments of one feed, resolving relative URLs against ``base_url``."""

    def __init__(self, base_url: str | None) -> None:
        self.base_url = base_url or None
        self._cleaners: dict[str | None, nh3.Cleaner] = {}

    def clean(self, fragment: str, *, xml_base: str | None = None) -> str:
        """``fragment`` as safe HTML; ``xml_base`` is an ``xml:base`` in effect there."""
        base = urljoin(self.base_url, xml_base) if self.base_url and xml_base else (xml_base or self.base_url)
        cleaner = self._cleaners.get(base)
        if cleaner is None:
            cleaner = self._cleaners[base] = _cleaner(base)
        return str(cleaner.clean(fragment))


def _cleaner(base: str | None) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
        # A relative URL with no feed URL to resolve it against is dropped: it would
        # point into Earshot's own site wherever the HTML is shown.
        url_relative=("rewrite_with_base", base) if base and _is_http(base) else "deny",
    )


def _is_http(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))
