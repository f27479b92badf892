"""Small pure helpers the feed parser uses to normalize what feeds say.

Each function takes the messy value a feed carries and returns a clean one, or ``None``
when the value cannot be trusted. The doctests are the spec; pytest collects them.
"""

from __future__ import annotations

import re
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser

# --------------------------------------------------------------------------- durations

# Apple Podcasts tag reference: <itunes:duration> is "the duration of an episode.
# Different duration formats are accepted however it is recommended to convert the
# length of the episode into seconds" -- in practice seconds, MM:SS and H:MM:SS. Real
# feeds add fractions ("1234.0", "1:02:03.5"), padding and units ("1h 2m"); those are
# read too. re.ASCII: only 0-9 are digits here, not every Unicode Nd character; at most
# nine of them per part (31 years of seconds), so junk never becomes a huge int.
_CLOCK = re.compile(r"(?:(?:(\d{1,9}):)?(\d{1,9}):)?(\d{1,9})(?:\.\d+)?", re.ASCII)
_UNITS = re.compile(
    r"(?=\d)(?:(\d{1,9})\s*h)?\s*(?:(\d{1,9})\s*m(?:in)?)?\s*(?:(\d{1,9})\s*s(?:ec)?)?",
    re.ASCII,
)


def parse_duration(value: str | None) -> int | None:
    """Seconds from an ``itunes:duration`` value; ``None`` for junk.

    Fractions of a second are dropped. Clock parts are weighed, not range-checked:
    "75:30" is 75 minutes, and "00:04:60" (a rounding artifact seen in real feeds) is 300.

    >>> [parse_duration(v) for v in ("45", " 45 ", "1234.0", "75:30", "1:02:03", "1:02:03.5")]
    [45, 45, 1234, 4530, 3723, 3723]
    >>> parse_duration("00:04:60")
    300
    >>> [parse_duration(v) for v in ("1h 2m", "1h2m3s", "90 min", "0")]
    [3720, 3723, 5400, 0]
    >>> [parse_duration(v) for v in ("", "-5", "1::3", "1:2:3:4", "abc", "12 minutes", None)]
    [None, None, None, None, None, None, None]
    >>> parse_duration("9" * 5000) is None
    True
    """
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    match = _CLOCK.fullmatch(text) or _UNITS.fullmatch(text)
    if match is None:
        return None
    hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


# ------------------------------------------------------------------------------- dates

# Podcasts (and RSS) date from ~2000; a year before 1990 is a zeroed or garbled field.
EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
# Publishers schedule a little ahead and clocks drift; anything further out is a typo.
FUTURE_SLACK = timedelta(days=2)


def to_utc(
    value: time.struct_time | datetime | str | None, *, now: datetime | None = None
) -> datetime | None:
    """A tz-aware UTC datetime, or ``None`` when unparseable or implausible.

    ``struct_time`` values are feedparser's ``*_parsed`` fields, which are already UTC.
    Strings may be RFC 822 (RSS 2.0 ``pubDate``) or ISO 8601 (Atom). Naive datetimes are
    taken as UTC. Dates before 1990 or more than two days after ``now`` are refused.

    >>> to_utc("Wed, 15 Jan 2020 10:00:00 +0100")
    datetime.datetime(2020, 1, 15, 9, 0, tzinfo=datetime.timezone.utc)
    >>> to_utc("2020-01-15T10:00:00Z")
    datetime.datetime(2020, 1, 15, 10, 0, tzinfo=datetime.timezone.utc)
    >>> to_utc(time.struct_time((2021, 3, 4, 5, 6, 7, 3, 63, 0)))
    datetime.datetime(2021, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc)
    >>> [to_utc(v) for v in ("Thu, 01 Jan 1970 00:00:00 GMT", "2999-01-01", "soon", "", None)]
    [None, None, None, None, None]
    >>> now = datetime(2024, 5, 1, tzinfo=UTC)
    >>> to_utc("2024-05-02T23:00:00Z", now=now) is not None, to_utc("2024-05-04", now=now)
    (True, None)
    """
    parsed = _as_datetime(value)
    if parsed is None:
        return None
    try:
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
        return None
    latest = (now or datetime.now(UTC)) + FUTURE_SLACK
    return parsed if EARLIEST_PLAUSIBLE <= parsed <= latest else None


def _as_datetime(value: time.struct_time | datetime | str | None) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, time.struct_time):
        try:
            return datetime(*value[:6], tzinfo=UTC)
        except ValueError:
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


# -------------------------------------------------------------------------------- HTML

# Elements whose start or end is a line break in rendered text.
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
    "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
})
# Table cells sit side by side: a space keeps their words apart.
_CELL_TAGS = frozenset({"td", "th"})
# Elements whose text is never shown to a reader.
_HIDDEN_TAGS = frozenset({"script", "style", "template", "noscript", "head", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._boundary(tag, opening=True)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <hr/>: a void element is a break but never opens a hidden region.
        if tag in _BLOCK_TAGS or tag in _CELL_TAGS:
            self._boundary(tag, opening=False)

    def handle_endtag(self, tag: str) -> None:
        self._boundary(tag, opening=False)

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            # Newlines in HTML source are just whitespace; only tags make line breaks.
            self.parts.append(data.replace("\n", " "))

    def _boundary(self, tag: str, *, opening: bool) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden_depth = max(0, self.hidden_depth + (1 if opening else -1))
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag in _CELL_TAGS:
            self.parts.append(" ")


def strip_html(html: str | None) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded, whitespace tidied.

    Block elements (``p``, ``br``, ``li``, ...) become line breaks, table cells spaces;
    ``script`` and ``style`` contents vanish; ``&nbsp;`` is an ordinary space; runs of
    spaces collapse and blank lines go.

    >>> strip_html("<p>Tom &amp; Jerry&nbsp;&nbsp;are <b>back</b></p><p>Part&#160;2</p>")
    'Tom & Jerry are back\\nPart 2'
    >>> strip_html("Line one<br>line  two<script>alert('x')</script><ul><li>a</li><li>b</li></ul>")
    'Line one\\nline two\\na\\nb'
    >>> strip_html("<table><tr><td>1</td><td>2</td></tr></table>  5 < 6 &copy; 2024")
    '1 2\\n5 < 6 © 2024'
    >>> strip_html(None), strip_html("   ")
    ('', '')
    """
    if not html or not html.strip():
        return ""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return _tidy("".join(extractor.parts))


# A start or end tag as an HTML serializer writes it: a name, then attributes whose
# values are in double quotes (so a ">" inside one does not end the tag).
_SERIALIZED_TAG = re.compile(r'<(/?)([A-Za-z][^\s/>]*)((?:\s+[^\s"\'=/>]+(?:\s*=\s*"[^"]*")?)*)\s*(/?)>')


def strip_serialized_html(html: str | None) -> str:
    """:func:`strip_html` for HTML as a serializer writes it (every ``<`` in text
    escaped, attribute values double-quoted, no comments): what the sanitizer gives.
    Tags are found by one regular expression instead of a general HTML parser, about
    ten times faster on show notes; any other input goes to :func:`strip_html`.

    >>> strip_serialized_html('<p title="a>b">Tom &amp; Jerry<br>are <b>back</b></p><td>1</td><td>2</td>')
    'Tom & Jerry\\nare back\\n1 2'
    >>> strip_serialized_html("5 < 6 <!-- not serialized -->")  # a raw "<": the parser decides
    '5 < 6'
    """
    if not html or not html.strip():
        return ""
    # One split instead of a match object per tag: the text before the first tag, then
    # for each tag its four groups (closing slash, name, attributes, self-closing
    # slash) and the text after it.
    pieces = _SERIALIZED_TAG.split(html)
    if any("<" in text for text in pieces[::5]):
        return strip_html(html)
    first = pieces[0]
    parts: list[str] = [unescape(first).replace("\n", " ")] if first else []
    hidden_depth = 0
    for index in range(1, len(pieces), 5):
        closing, tag = pieces[index], pieces[index + 1].lower()
        self_closing, text = pieces[index + 3], pieces[index + 4]
        # <x/>: only a void break counts (as handle_startendtag does)
        if not self_closing or closing or tag in _BLOCK_TAGS or tag in _CELL_TAGS:
            opening = not closing and not self_closing
            if tag in _HIDDEN_TAGS:
                hidden_depth = max(0, hidden_depth + (1 if opening else -1))
            elif tag in _BLOCK_TAGS:
                parts.append("\n")
            elif tag in _CELL_TAGS:
                parts.append(" ")
        if text and not hidden_depth:
            parts.append(unescape(text).replace("\n", " "))
    return _tidy("".join(parts))


def _tidy(text: str) -> str:
    # str.split() splits on exactly the characters regex \s matches: joining its parts
    # collapses each line's space runs to one space and strips it, in C.
    lines = (" ".join(line.split()) for line in neutralize(text).split("\n"))
    return "\n".join(line for line in lines if line)


# ------------------------------------------------------------------------------- text

# What an episode is called when its feed gives nothing to name it by (see the parser's
# fallback_title); pages, digests and the topic feed never show an empty title.
UNTITLED_EPISODE = "Untitled episode"


# Characters that change how the text around them is displayed without being seen: the
# bidirectional embeddings, overrides and isolates (Unicode TR #9: U+202E turns
# "invoice fdp.exe" into "invoice exe.pdf" on screen), marks, zero-width spaces and the
# BOM. ZWJ and ZWNJ stay: emoji sequences and several scripts need them.
_DECEPTIVE = dict.fromkeys(map(ord, "\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060"
                                    "\u2066\u2067\u2068\u2069\ufeff"))


_DECEPTIVE_FOUND = re.compile("[" + "".join(map(chr, _DECEPTIVE)) + "]")
# Unicode category Cc: exactly the C0 and C1 controls and DEL.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def neutralize(text: str) -> str:
    """Drop the invisible characters that could make displayed text lie.

    >>> neutralize("invoice \u202efdp.exe\u202c"), neutralize("\u200b\ufeff")
    ('invoice fdp.exe', '')
    """
    # The search first: translating a long text through a dict is slow.
    return text.translate(_DECEPTIVE) if not text.isascii() and _DECEPTIVE_FOUND.search(text) else text


def clean_text(value: str | None) -> str:
    """One tidy line: NFC, control characters gone, any whitespace run (CR/LF too) one space.

    >>> clean_text("  Episode\\r\\n 12:\\tThe\\x00 Cafe\\u0301\\x85 ")
    'Episode 12: The Café'
    >>> clean_text(None)
    ''
    """
    if not value:
        return ""
    if value.isascii() and value.isprintable():
        # Printable ASCII has no control, no invisible character and no whitespace but
        # the space, and is its own NFC: only runs of spaces can change (most titles).
        text = value.strip(" ")
        return text if "  " not in text else " ".join(text.split())
    # " ".join(s.split()) is re.sub(r"\s+", " ", s).strip(), faster: str.split() splits
    # on the characters regex \s matches. Whitespace controls become spaces before the
    # other controls go, so "a\tb" stays two words.
    text = " ".join(unicodedata.normalize("NFC", value).split())
    text = _CONTROLS.sub("", text)
    return " ".join(neutralize(text).split())


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, at a word break, with an ellipsis.

    >>> clip("a few short words", 12), clip("short", 12)
    ('a few short…', 'short')
    """
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_chars // 2 else cut).rstrip() + "…"
