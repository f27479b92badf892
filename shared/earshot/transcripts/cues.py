"""Transcript parsing: bytes in, cues out, nothing else (pure; no I/O).

Formats, as the Podcasting 2.0 transcript spec lists them (``podcast:transcript`` and
its ``transcripts.md``):

- **json** (``application/json``): ``{"version": "1.0.0", "segments": [{"speaker",
  "startTime", "endTime", "body"}]}``; ``endTime`` and ``speaker`` are optional and a
  segment is often a single word, so a phrase spans many cues (matching joins them).
- **vtt** (``text/vtt``, W3C WebVTT) and **srt** (``application/x-subrip``,
  ``application/srt``): cue blocks with ``start --> end`` timings. Timestamps in every
  legal form (``mm:ss.ttt``, ``hh:mm:ss.ttt``, hours past 99, SRT's comma), and the
  forms publishers write anyway (no fraction, one or two fraction digits). Styling is
  stripped: ``<v Speaker>`` gives the speaker, ``<i>``, ``<c.class>``, inline
  timestamps, ``<font>`` and ASS ``{\\an8}`` tags go; entities are decoded.
- **html** (``text/html``): the spec's ``<cite>`` (speaker), ``<time>`` (start) and
  ``<p>`` (what was said); any other HTML is read as paragraphs without times. Scripts,
  styles and other non-text elements are dropped with their content.
- **text** (``text/plain``): paragraphs, no times.

What a hostile transcript can do is bounded: the body is capped before it gets here (the
fetcher's transcript cap), cues are capped at :data:`MAX_CUES` and each cue's text at
:data:`MAX_CUE_CHARS`; a cue without a usable timing is skipped with a warning; bytes
that are not text raise :class:`~earshot.errors.TranscriptUnreadable` and a transcript
with no readable cue raises :class:`~earshot.errors.TranscriptMalformed`.

>>> [c.text for c in parse_transcript(b"WEBVTT\\n\\n00:01.000 --> 00:02.500\\n<v Ann>MLPs <i>rally</i>").cues]
['MLPs rally']
"""

from __future__ import annotations

import codecs
import html
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal

from earshot.errors import TranscriptMalformed, TranscriptUnreadable
from earshot.models import Cue

TranscriptFormat = Literal["json", "vtt", "srt", "html", "text"]
FORMATS: tuple[TranscriptFormat, ...] = ("json", "vtt", "srt", "html", "text")

MAX_CUES = 100_000  # a three-hour episode transcribed word by word is ~30,000 segments
MAX_CUE_CHARS = 2_000
MAX_SPEAKER_CHARS = 100
MAX_WARNINGS = 10
# Of the decoded characters, more control characters than this share means binary data
# (an MP3 served where the transcript should be), not text.
MAX_CONTROL_SHARE = 0.01

# The MIME types of the spec (and the variants seen in feeds), by format.
MEDIA_TYPES: dict[str, TranscriptFormat] = {
    "application/json": "json", "application/x-json": "json", "text/json": "json",
    "text/vtt": "vtt", "text/webvtt": "vtt",
    "application/x-subrip": "srt", "application/srt": "srt", "text/srt": "srt", "text/x-srt": "srt",
    "application/x-srt": "srt",
    "text/html": "html", "application/xhtml+xml": "html",
    "text/plain": "text",
}


def format_of_type(media_type: str | None) -> TranscriptFormat | None:
    """The format a ``type`` attribute or Content-Type names, or None.

    >>> format_of_type("text/vtt; charset=utf-8"), format_of_type("application/x-subrip"), format_of_type("audio/mpeg")
    ('vtt', 'srt', None)
    """
    if not media_type:
        return None
    return MEDIA_TYPES.get(media_type.split(";")[0].strip().lower())


@dataclass(frozen=True)
class ParsedTranscript:
    format: TranscriptFormat
    cues: tuple[Cue, ...]
    warnings: tuple[str, ...] = ()

    @property
    def has_times(self) -> bool:
        return any(c.start_s is not None for c in self.cues)


# ----------------------------------------------------------------------- timestamps
_TIMESTAMP_RE = re.compile(r"^(?:(\d+):)?([0-5]?\d):([0-5]\d)(?:[.,](\d{1,3}))?$")


def parse_timestamp(text: str) -> float | None:
    """Seconds in a WebVTT or SRT timestamp, or None when it is not one.

    >>> parse_timestamp("01:02:03.500"), parse_timestamp("02:03,5"), parse_timestamp("123:00:00.000")
    (3723.5, 123.5, 442800.0)
    >>> parse_timestamp("1:2:3"), parse_timestamp("12:34"), parse_timestamp("ab:cd")
    (None, 754.0, None)
    """
    m = _TIMESTAMP_RE.match(text.strip())
    if m is None:
        return None
    hours, minutes, seconds, fraction = m.groups()
    value = float(int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds))
    if fraction:
        value += int(fraction.ljust(3, "0")) / 1000
    return value


# ----------------------------------------------------------------------- decoding
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)


def decode_text(body: bytes, content_type: str | None = None) -> tuple[str, list[str]]:
    """The body as text, and a warning when its encoding had to be guessed.

    A byte-order mark decides; then the Content-Type's charset; then UTF-16 without a
    BOM (NULs between ASCII letters); then UTF-8; then Windows-1252 (what a
    mislabelled "UTF-8" transcript usually is). Binary data raises TranscriptUnreadable.

    >>> decode_text("café".encode("cp1252"))
    ('café', ['not UTF-8: read as Windows-1252'])
    """
    warnings: list[str] = []
    text: str | None = None
    for bom, codec in _BOMS:
        if body.startswith(bom):
            try:
                text = body.decode(codec)
            except UnicodeDecodeError as exc:
                raise TranscriptUnreadable(f"broken {codec} text after its byte-order mark: {exc.reason}") from None
            break
    if text is None and content_type and (m := _CHARSET_RE.search(content_type)):
        try:
            text = body.decode(m.group(1))
        except (LookupError, UnicodeDecodeError):
            warnings.append(f"not {m.group(1)} as its Content-Type says")
    # UTF-16 without a BOM before UTF-8: its NULs are valid UTF-8 too.
    if text is None and body and body[:200].count(b"\x00") * 3 >= min(len(body), 200):
        for codec in ("utf-16-le", "utf-16-be"):
            try:
                candidate = body.decode(codec)
            except UnicodeDecodeError:
                continue
            if not _looks_binary(candidate):
                text = candidate
                warnings.append(f"no byte-order mark: read as {codec.upper()}")
                break
    if text is None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if text is None:
        text = body.decode("cp1252", errors="replace")
        warnings.append("not UTF-8: read as Windows-1252")
    if _looks_binary(text):
        raise TranscriptUnreadable("the transcript is binary data, not text")
    return text, warnings


def _looks_binary(text: str) -> bool:
    sample = text[:65536]
    if not sample:
        return False
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f") + sample.count("\ufffd")
    return controls > MAX_CONTROL_SHARE * len(sample)


# ----------------------------------------------------------------------- sniffing
_SRT_START_RE = re.compile(r"\A\s*\d+\s*\r?\n\s*[\d:.,]+\s*-->")
_TIMING_RE = re.compile(r"^\s*([\d:.,]+)\s*-->\s*([\d:.,]+)?", re.M)
_HTML_RE = re.compile(r"<(?:!doctype|html|body|p|div|cite|time|span|br|h[1-6])\b", re.I)


def sniff_format(text: str, declared: TranscriptFormat | None = None) -> TranscriptFormat:
    """The format to read ``text`` as. The content's strong signals win over a stated
    type (publishers serve SRT as text/plain and VTT as application/octet-stream), then
    the stated type, then weaker signals.

    >>> sniff_format("WEBVTT\\n\\n00:01.000 --> 00:02.000\\nhi", "text")
    'vtt'
    >>> sniff_format("1\\n00:00:01,000 --> 00:00:02,000\\nhi"), sniff_format("<p>hi</p>"), sniff_format("hi")
    ('srt', 'html', 'text')
    """
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("WEBVTT"):
        return "vtt"
    if head[:1] in "{[" and head[:1]:
        return "json"
    if _SRT_START_RE.match(head):
        return "srt"
    if declared is not None:
        return declared
    if _TIMING_RE.search(head[:4096]):
        return "srt"
    if _HTML_RE.search(head[:4096]):
        return "html"
    return "text"


# ----------------------------------------------------------------------- parsing
def parse_transcript(
    body: bytes, *, media_type: str | None = None, content_type: str | None = None
) -> ParsedTranscript:
    """Cues of a transcript. ``media_type`` is the feed's ``type`` attribute,
    ``content_type`` the server's header (its charset is used for decoding)."""
    text, warnings = decode_text(body, content_type)
    declared = format_of_type(media_type) or format_of_type(content_type)
    fmt = sniff_format(text, declared)
    collector = _Cues(warnings)
    try:
        {"json": _parse_json, "vtt": _parse_timed, "srt": _parse_timed, "html": _parse_html,
         "text": _parse_text}[fmt](text, collector)
    except _Full:
        collector.warn(f"more than {MAX_CUES} cues: the rest is ignored")
    if not collector.cues:
        detail = "; ".join(collector.warnings[:3])
        raise TranscriptMalformed(f"no cue could be read as {fmt}" + (f" ({detail})" if detail else ""))
    return ParsedTranscript(fmt, tuple(collector.cues), tuple(collector.warnings[:MAX_WARNINGS]))


def _count(n: int, noun: str) -> str:
    """>>> _count(1, "cue"), _count(3, "cue")
    ('1 cue', '3 cues')
    """
    return f"{n} {noun}{'' if n == 1 else 's'}"


class _Full(Exception):
    """MAX_CUES reached."""


@dataclass
class _Cues:
    warnings: list[str]
    cues: list[Cue] = field(default_factory=list)

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)

    def add(self, start_s: float | None, end_s: float | None, speaker: str | None, text: str) -> None:
        text = " ".join(text.split())
        if not text:
            return
        if len(self.cues) >= MAX_CUES:
            raise _Full
        if len(text) > MAX_CUE_CHARS:
            text = text[:MAX_CUE_CHARS].rsplit(" ", 1)[0]
            self.warn(f"a cue longer than {MAX_CUE_CHARS} characters was cut")
        speaker = " ".join(speaker.split())[:MAX_SPEAKER_CHARS] or None if speaker else None
        if end_s is not None and start_s is not None and end_s < start_s:
            end_s = None
        self.cues.append(Cue(start_s, end_s, speaker, text))


def _seconds(value: Any) -> float | None:
    """A JSON time: seconds as a number, a numeric string, or a timestamp string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            parsed = parse_timestamp(value)
            if parsed is None:
                return None
            seconds = parsed
    else:
        return None
    return seconds if 0 <= seconds < 10**7 else None  # finite, and under four months


def _parse_json(text: str, out: _Cues) -> None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise TranscriptMalformed(f"not JSON: {exc}") from None
    segments = data.get("segments") if isinstance(data, dict) else data
    if not isinstance(segments, list):
        raise TranscriptMalformed("a JSON transcript needs a \"segments\" list")
    skipped = 0
    for segment in segments:
        if not isinstance(segment, dict):
            skipped += 1
            continue
        body = segment.get("body", segment.get("text"))
        start = _seconds(segment.get("startTime", segment.get("start")))
        if not isinstance(body, str) or start is None:
            skipped += 1
            continue
        speaker = segment.get("speaker")
        out.add(start, _seconds(segment.get("endTime", segment.get("end"))),
                speaker if isinstance(speaker, str) else None, body)
    if skipped:
        out.warn(f"{_count(skipped, 'segment')} without a body or a startTime skipped")


_TAG_RE = re.compile(r"<[^>]*>")
_VOICE_RE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>")
_ASS_RE = re.compile(r"\{\\[^}]*\}")
_SPEAKER_PREFIX_RE = re.compile(r"^\s*(?:-\s*)?\[?([A-Z][\w .'-]{0,40}?)\]?:\s+(?=\S)")


def _cue_text(lines: list[str]) -> tuple[str | None, str]:
    """A VTT/SRT cue's payload as (speaker, plain text)."""
    raw = "\n".join(lines)
    voice = _VOICE_RE.search(raw)
    speaker = voice.group(1).strip() if voice else None
    plain = html.unescape(_TAG_RE.sub("", _ASS_RE.sub("", raw)))
    return speaker, plain


def _parse_timed(text: str, out: _Cues) -> None:
    """WebVTT and SRT share a shape: blocks separated by blank lines, each with one
    ``start --> end`` line followed by the cue's text."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    unusable = 0
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if "-->" not in line:
            stripped = line.strip()
            if stripped.startswith(("NOTE", "STYLE", "REGION")) and (stripped[4:5] in ("", " ", "\t")
                                                                      or stripped in ("STYLE", "REGION")):
                while i < n and lines[i].strip():  # a comment or style block: skip it whole
                    i += 1
            i += 1
            continue
        start_text, _, rest = line.partition("-->")
        end_text = rest.split()[0] if rest.split() else ""
        start, end = parse_timestamp(start_text), parse_timestamp(end_text)
        i += 1
        payload: list[str] = []
        while i < n and lines[i].strip() and "-->" not in lines[i]:
            payload.append(lines[i])
            i += 1
        if start is None:
            unusable += 1
            continue
        speaker, plain = _cue_text(payload)
        out.add(start, end, speaker, plain)
    if unusable:
        out.warn(f"{_count(unusable, 'cue')} without a readable start time skipped")


# Elements whose content is never transcript text.
_SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript", "iframe", "object", "svg",
                      "math", "button", "select", "textarea", "nav"})
_BLOCKS = frozenset({"p", "div", "li", "br", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote", "section",
                     "article", "dd", "dt", "pre", "hr", "table", "ul", "ol", "body"})


class _HtmlCues(HTMLParser):
    """The spec's ``<cite>``/``<time>``/``<p>`` structure, and plain paragraphs otherwise."""

    def __init__(self, out: _Cues) -> None:
        super().__init__(convert_charrefs=True)
        self.out = out
        self.skip_depth = 0
        self.in_cite = self.in_time = False
        self.cite: list[str] = []
        self.time: list[str] = []
        self.text: list[str] = []
        self.speaker: str | None = None
        self.start: float | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skip_depth += 1
        elif tag == "cite":
            self.flush()
            self.in_cite, self.cite = True, []
        elif tag == "time":
            self.flush()
            self.in_time, self.time = True, []
            stamp = dict(attrs).get("datetime")
            if stamp and (seconds := _html_time(stamp)) is not None:
                self.start = seconds
        elif tag in _BLOCKS:
            self.flush()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag == "cite" and self.in_cite:
            self.in_cite = False
            self.speaker = "".join(self.cite).strip().rstrip(":").strip() or None
        elif tag == "time" and self.in_time:
            self.in_time = False
            if (seconds := parse_timestamp("".join(self.time))) is not None:
                self.start = seconds
        elif tag in _BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.in_cite:
            self.cite.append(data)
        elif self.in_time:
            self.time.append(data)
        else:
            self.text.append(data)

    def flush(self) -> None:
        if self.text:
            self.out.add(self.start, None, self.speaker, "".join(self.text))
            self.text = []


def _html_time(value: str) -> float | None:
    """``<time datetime="PT12M34S">`` or a clock value."""
    m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", value.strip())
    if m and any(m.groups()):
        return int(m.group(1) or 0) * 3600 + int(m.group(2) or 0) * 60 + float(m.group(3) or 0)
    return parse_timestamp(value)


def _parse_html(text: str, out: _Cues) -> None:
    parser = _HtmlCues(out)
    parser.feed(text)
    parser.close()
    parser.flush()


def _parse_text(text: str, out: _Cues) -> None:
    """Paragraphs (blank-line separated; long single-spaced files by line)."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [b for b in re.split(r"\n\s*\n", normalized) if b.strip()]
    if len(blocks) <= 1:
        blocks = [line for line in normalized.split("\n") if line.strip()]
    for block in blocks:
        m = _SPEAKER_PREFIX_RE.match(block)
        speaker = m.group(1) if m else None
        out.add(None, None, speaker, block[m.end():] if m else block)
