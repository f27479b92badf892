"""Bounds: how long every stored string may be, and what happens to one that is longer.

Everything Earshot stores is a pydantic model in :mod:`earshot.models` (or a queue
message built from one), and every string field of those models carries one
:class:`Bound` from this module, so the limits live here and nowhere else; both parser
paths, the API and the CLI get them by building the models. ``tests/test_bounds.py``
walks every stored model and fails on a string or collection field without a bound, and
adds up the worst case of each stored item against DynamoDB's 400 KB item limit.

Why: an episode is one DynamoDB item (400 KB at most) and a key attribute holds at most
1,024 bytes (a sort key; 2,048 a partition key). One 500 KB ``<guid>`` used to make a
feed unstorable: its write failed, the queue retried it forever and its healthy items
were never stored.

What a bound does with a value past it (``over``), chosen per field so the rest of the
item, and of the feed, is always stored:

    clip     text (titles, descriptions, messages): cut at a word break, with "…"
    plain    sanitized HTML show notes: replaced by their plain text, escaped, then
             clipped (cutting markup would leave it unbalanced)
    digest   an identifier (``guid``): replaced by ``h:`` + 24 hex digits of its SHA-256,
             the same digest :func:`earshot.identity.stable_episode_id` makes of a long
             guid, so the episode keeps one stable identity
    drop     a URL or a short label (enclosure URL and type, link, image, language): the
             value is left out (None); a URL cut short would point somewhere else
    refuse   keys and hashes Earshot makes itself (ids, feed URLs once checked): a
             longer one is a bug upstream, so validation fails

Collections carry ``max_items``: the first ones are kept.

Every value a bound changed is recorded while :func:`recording` is active (the refresh
wraps each parse in it) and becomes one warning on the feed, of the typed kind
``oversized_field`` (:func:`warnings_for`), e.g. ``1 item's guid was over 1,000
characters: stored as its digest``.
"""

from __future__ import annotations

import hashlib
import html
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

from earshot.textutil import clip, strip_html

# ------------------------------------------------------------------------- limits
# Text, in characters (UTF-8 takes up to 4 bytes a character; tests/test_bounds.py sums
# the worst case of each item in bytes).
MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 20_000
MAX_SUMMARY_HTML_CHARS = 60_000
MAX_MESSAGE_CHARS = 500  # an error message, a match reason, a status change's detail
MAX_WARNING_CHARS = 300  # one parse warning kept on the feed
MAX_WARNINGS = 10  # parse warnings kept on the feed
MAX_LABEL_CHARS = 255  # a MIME type (RFC 6838: 127 + "/" + 127), a language tag, a rel
MAX_USER_AGENT_CHARS = 500
# Identifiers.
MAX_GUID_CHARS = 1_000
MAX_ID_CHARS = 200  # episode ids (earshot.identity keeps them at most this long)
MAX_KEY_CHARS = 64  # feed ids, slugs, hashes, tokens' hashes
# URLs, in UTF-8 bytes. A feed's URL is a key attribute (the ``type`` index's sort key,
# 1,024 bytes at most), so it stays well under that; other URLs are only attributes.
MAX_FEED_URL_BYTES = 1_000
MAX_URL_BYTES = 2_048
MAX_TRANSCRIPTS = 8
# What people type: refused past these (with a clear message), never cut.
MAX_QUERY_CHARS = 4_000  # a topic's query (earshot.topics.query says where it stops)
MAX_EMAIL_CHARS = 254  # RFC 5321 §4.5.3.1.3: a path is 256 octets with its angle brackets
MAX_EMAIL_LOCAL_PART_CHARS = 64  # RFC 5321 §4.5.3.1.1
MAX_HISTORY = 20  # status changes kept per subscription (the latest ones)
MAX_SENSES = 20  # other senses of a topic's main term kept on the topic (earshot.topics.senses)
MAX_BACKFILL_SEGMENTS = 64  # segments of one backfill run (one item holds their progress)
MAX_CURSOR_BYTES = 3_000  # a segment's resume point (a Scan's last key: two key attributes)
# Discovery: what a directory candidate keeps as evidence.
MAX_CANDIDATE_EXAMPLES = 5  # matching episodes shown for a candidate feed
MAX_SEARCH_TERMS = 20  # search terms derived from one query (the setting's ceiling)
MAX_DIRECTORIES = 4  # directories that may list one candidate

Over = Literal["clip", "plain", "digest", "drop", "refuse"]


@dataclass(frozen=True)
class Cut:
    """One value a bound changed: which field of which model, and how."""

    model: str
    field: str
    over: Over
    limit: str


_cuts: ContextVar[list[Cut] | None] = ContextVar("earshot_bound_cuts", default=None)


@dataclass(frozen=True)
class Bound:
    """The bound of one string field (``max_chars`` or ``max_bytes``) or of one collection
    (``max_items``), and what happens past it. Used as ``Annotated`` metadata."""

    max_chars: int | None = None
    max_bytes: int | None = None
    max_items: int | None = None
    over: Over = "clip"
    dropped: str | None = None  # what "drop" leaves: None, or "" for a required field
    keep_last: bool = False  # a collection past max_items keeps its last items, not its first

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_after_validator_function(self._validator(), handler(source))

    def _validator(self) -> core_schema.WithInfoValidatorFunction:
        # Every stored string passes here (tens of thousands per feed): the check that a
        # value fits is inlined, one call per value, and only a value past it goes on to
        # ``_fit``. The same test as ``fits``.
        fit = self._fit
        if self.max_items is not None:
            max_items = self.max_items

            def check_items(value: Any, info: core_schema.ValidationInfo) -> Any:
                return value if value is None or len(value) <= max_items else fit(value, info)

            return check_items
        if self.max_bytes is not None:
            max_chars = self.max_bytes // 4  # a character is at most 4 bytes

            def check_bytes(value: Any, info: core_schema.ValidationInfo) -> Any:
                if value is None or len(value) <= max_chars:
                    return value
                return fit(value, info)

            return check_bytes
        assert self.max_chars is not None
        limit = self.max_chars

        def check_chars(value: Any, info: core_schema.ValidationInfo) -> Any:
            return value if value is None or len(value) <= limit else fit(value, info)

        return check_chars

    @property
    def limit(self) -> str:
        if self.max_items is not None:
            return f"{self.max_items:,} items"
        if self.max_bytes is not None:
            return f"{self.max_bytes:,} bytes"
        return f"{self.max_chars:,} characters"

    def fits(self, value: Any) -> bool:
        if self.max_items is not None:
            return len(value) <= self.max_items
        if self.max_bytes is not None:
            # A character is at most 4 bytes: short strings are never encoded.
            return len(value) * 4 <= self.max_bytes or len(value.encode()) <= self.max_bytes
        assert self.max_chars is not None
        return len(value) <= self.max_chars

    def _fit(self, value: Any, info: core_schema.ValidationInfo) -> Any:
        if value is None or self.fits(value):
            return value
        if self.over == "refuse":
            raise PydanticCustomError("too_long", "longer than {limit}", {"limit": self.limit})
        cuts = _cuts.get()
        if cuts is not None:
            model = str((info.config or {}).get("title") or "")
            cuts.append(Cut(model=model, field=info.field_name or "", over=self.over, limit=self.limit))
        if self.max_items is not None:
            items = list(value)
            return type(value)(items[-self.max_items:] if self.keep_last else items[: self.max_items])
        if self.over == "drop":
            return self.dropped
        if self.over == "digest":
            return digest(value)
        limit = self.max_chars or (self.max_bytes or 0) // 4
        if self.over == "plain":
            # "<p>" and "</p>" are 7 characters; escaping may lengthen the text again.
            text = html.escape(clip(strip_html(value), limit // 2), quote=False)
            return f"<p>{clip(text, limit - 7)}</p>"
        return clip(value, limit)


def digest(value: str) -> str:
    """The stable stand-in for an identifier too long to store (as identity hashes a long guid).

    >>> digest("x" * 5000)
    'h:c59d3c0480cc2d71d8f646e7'
    """
    return "h:" + hashlib.sha256(value.strip().encode()).hexdigest()[:24]


# --------------------------------------------------------------------- field types
# Named types, one per kind of field: models.py annotates with these (mypy reads
# Annotated aliases, not calls).
Title = Annotated[str, Bound(max_chars=MAX_TITLE_CHARS, over="clip")]
OptionalTitle = Annotated[str | None, Bound(max_chars=MAX_TITLE_CHARS, over="clip")]
Summary = Annotated[str, Bound(max_chars=MAX_SUMMARY_CHARS, over="clip")]
SummaryHtml = Annotated[str, Bound(max_chars=MAX_SUMMARY_HTML_CHARS, over="plain")]
Message = Annotated[str, Bound(max_chars=MAX_MESSAGE_CHARS, over="clip")]
OptionalMessage = Annotated[str | None, Bound(max_chars=MAX_MESSAGE_CHARS, over="clip")]
UserAgent = Annotated[str | None, Bound(max_chars=MAX_USER_AGENT_CHARS, over="clip")]
WarningText = Annotated[str, Bound(max_chars=MAX_WARNING_CHARS, over="clip")]
Warnings = Annotated[list[WarningText] | None, Bound(max_items=MAX_WARNINGS)]
Label = Annotated[str | None, Bound(max_chars=MAX_LABEL_CHARS, over="drop")]
Guid = Annotated[str | None, Bound(max_chars=MAX_GUID_CHARS, over="digest")]
Url = Annotated[str | None, Bound(max_bytes=MAX_URL_BYTES, over="drop")]
# A URL that a stored reference cannot do without (a transcript's, a chapter file's):
# left empty when too long, and the episode then drops the reference.
RequiredUrl = Annotated[str, Bound(max_bytes=MAX_URL_BYTES, over="drop", dropped="")]
FeedUrl = Annotated[str, Bound(max_bytes=MAX_FEED_URL_BYTES, over="refuse")]
EpisodeId = Annotated[str, Bound(max_chars=MAX_ID_CHARS, over="refuse")]
Key = Annotated[str, Bound(max_chars=MAX_KEY_CHARS, over="refuse")]
OptionalKey = Annotated[str | None, Bound(max_chars=MAX_KEY_CHARS, over="refuse")]
# An HTTP validator the server sent: without it the next check is unconditional.
Validator = Annotated[str | None, Bound(max_chars=MAX_MESSAGE_CHARS, over="drop")]
Cursor = Annotated[str | None, Bound(max_bytes=MAX_CURSOR_BYTES, over="refuse")]
SearchTerm = Annotated[str, Bound(max_chars=MAX_TITLE_CHARS, over="clip")]
SearchTerms = Annotated[list[SearchTerm], Bound(max_items=MAX_SEARCH_TERMS)]
DirectoryName = Annotated[str, Bound(max_chars=MAX_KEY_CHARS, over="refuse")]
DirectoryNames = Annotated[list[DirectoryName], Bound(max_items=MAX_DIRECTORIES)]


# ------------------------------------------------------------------ what was cut
@contextmanager
def recording() -> Iterator[list[Cut]]:
    """Collect every value a bound changes in this context (this thread) meanwhile."""
    cuts: list[Cut] = []
    token = _cuts.set(cuts)
    try:
        yield cuts
    finally:
        _cuts.reset(token)


_HOW = {"clip": "clipped", "plain": "kept as plain text", "digest": "stored as its digest",
        "drop": "left out", "refuse": "refused"}
_WHOSE = {"Episode": "item", "Transcript": "item", "Chapters": "item", "FeedInfo": "channel"}


def warnings_for(cuts: list[Cut]) -> list[str]:
    """One line per field that was cut, with how many times and what was done.

    >>> warnings_for([Cut("Episode", "guid", "digest", "1,000 characters")] * 2)
    ["oversized_field: 2 items' guid was over 1,000 characters: stored as its digest"]
    """
    lines = []
    for (model, name, over, limit), n in Counter((c.model, c.field, c.over, c.limit) for c in cuts).items():
        whose = _WHOSE.get(model, model.lower() or "value")
        owner = f"1 {whose}'s" if n == 1 else f"{n} {whose}s'"
        field = f"{model.lower()} {name}" if model in ("Transcript", "Chapters") else name
        lines.append(f"{OVERSIZED_FIELD}: {owner} {field} was over {limit}: {_HOW[over]}")
    return lines


OVERSIZED_FIELD = "oversized_field"
