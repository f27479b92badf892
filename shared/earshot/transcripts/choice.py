"""Which of an episode's transcripts to fetch: the richest format first.

An item may list several ``<podcast:transcript>`` tags (the same words as JSON, VTT, SRT
and HTML). Earshot fetches one: the Podcasting 2.0 JSON (times and speakers), then WebVTT,
SRT, HTML and plain text, by the ``type`` attribute; a tag without a known type comes
last and is read by content sniffing once fetched (``cues.sniff_format``). Only http(s)
URLs are candidates, on hosts that can exist (not a reserved test domain).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from earshot.models import Transcript
from earshot.transcripts.cues import format_of_type

PREFERENCE = ("json", "vtt", "srt", "html", "text")
MAX_CANDIDATES = 3  # a failing first choice may fall back to the next two, no further
# Top-level domains reserved never to resolve (RFC 2606, RFC 6761): sample and test feeds
# use them, and asking DNS about them would only send a query that must fail.
RESERVED_TLDS = frozenset({"example", "invalid", "test", "localhost"})


def rank(transcript: Transcript) -> int:
    """Lower is better; an unknown or missing type ranks after every known one.

    >>> rank(Transcript(url="https://a/t.json", type="application/json")), rank(Transcript(url="https://a/t"))
    (0, 5)
    """
    fmt = format_of_type(transcript.type)
    return PREFERENCE.index(fmt) if fmt else len(PREFERENCE)


def is_fetchable(url: str) -> bool:
    """An http(s) URL with a host that can exist.

    >>> is_fetchable("https://a.example.org/t.vtt"), is_fetchable("https://pod.example/t.vtt"), is_fetchable("ftp://a/t")
    (True, False, False)
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").rstrip(".").lower()
    return parts.scheme.lower() in ("http", "https") and bool(host) and host.rsplit(".", 1)[-1] not in RESERVED_TLDS


def choose(transcripts: tuple[Transcript, ...] | list[Transcript]) -> list[Transcript]:
    """The transcripts to try, best first (at most :data:`MAX_CANDIDATES`; ties keep
    feed order, and a URL listed twice is tried once)."""
    seen: set[str] = set()
    candidates = []
    for t in sorted(transcripts, key=rank):
        if is_fetchable(t.url) and t.url not in seen:
            seen.add(t.url)
            candidates.append(t)
    return candidates[:MAX_CANDIDATES]
