"""Episode identity: which feed items are one episode, and the id each episode gets.

One rule, in this module, used by every parser path (``ingest.parser`` calls
:func:`assign_ids` on whatever items it read) and by the refresh that stores what they
parse (``ingest.refresh`` hands each batch of episodes to :class:`StoredIdKeeper`, which
is :func:`keep_stored_ids` a batch at a time). ``topics.dedup`` shares
:func:`tracking_free_url`.

1. **Natural id** (:func:`stable_episode_id`): the item's guid; else its enclosure URL;
   else its link; else a hash of title and date. RSS 2.0 calls ``<guid>`` "a string that
   uniquely identifies the item", Atom (RFC 4287 §4.2.6) says the same of ``<id>``, and
   Apple's podcast feed requirements ask publishers never to change a guid.
2. **Items sharing a natural id** in one document -- a hosting platform that stamps every
   item of a show with one guid, re-uploads under the old guid, an Atom ``<id>`` copied
   between entries -- are told apart by their **content key** (:func:`content_key`):
   the enclosure URL with tracking prefixes removed, else title and date as written,
   else the description.

   - one content key among them: the same episode listed again. It stays one episode
     under the natural id (the first item; the others are skipped as repeats);
   - several content keys: each becomes its own episode, with the id
     :func:`derived_id` = natural id + ``#`` + 12 hex digits of SHA-256(content key).
     The id depends on the item alone, not on its position, so the same feed fetched
     twice -- or reordered, or grown by another item with that guid -- gives the same
     ids.
3. **Stored episodes keep their ids** (:func:`keep_stored_ids`, at refresh; a big feed's
   episodes come in batches, through :class:`StoredIdKeeper`, with the same result). A group
   forms over time (a new item copies an old guid) or dissolves (the feed drops its
   older items). So before diffing against what is stored, an item whose derived id is
   stored keeps the derived id, and an item in a group whose natural id is stored for
   the same content (an episode stored before its guid was shared) keeps the natural id.
   Nothing stored is ever re-keyed or rewritten by this rule.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from earshot.models import Episode

MAX_ID_LENGTH = 200
DIGEST_HEX = 12  # 48 bits: a collision inside one feed's group of items is not a concern

# ------------------------------------------------------------------------- natural id


def stable_episode_id(
    guid: str | None,
    audio_url: str | None,
    link: str | None,
    title: str | None,
    published: datetime | str | None,
    summary: str = "",
) -> str:
    """The item's natural id: its guid, else enclosure URL, else link, else a hash of title+date.

    The hash is ``"h:"`` + the first 24 hex digits of SHA-256 of ``"<title>\\n<date>"``,
    where the date is a datetime in ISO 8601 UTC or, better, the date string exactly as
    the feed wrote it (the parser passes that, so the id cannot change when date parsing
    or the plausibility window does). An item with neither title nor date (RSS 0.92
    items may carry only a description) is hashed by its ``summary`` instead. Ids longer
    than 200 characters are hashed the same way so they stay small as DynamoDB sort keys.

    >>> stable_episode_id(" tag:example.com,2024:ep-1 ", "https://cdn/1.mp3", None, "One", None)
    'tag:example.com,2024:ep-1'
    >>> stable_episode_id("", "https://cdn/1.mp3", "https://example.com/1", "One", None)
    'https://cdn/1.mp3'
    >>> stable_episode_id(None, None, None, "One", datetime(2024, 1, 2, tzinfo=UTC))
    'h:ed21d3450a980aa9184fcf7a'
    >>> stable_episode_id(None, None, None, "One", " Tue, 02 Jan 2024 00:00:00 GMT")
    'h:830e80268ab47c78fdfdd218'
    >>> stable_episode_id(None, None, None, "", None, "a blog post") != stable_episode_id(
    ...     None, None, None, "", None, "another post")
    True
    >>> len(stable_episode_id("x" * 500, None, None, "", None))
    26
    """
    for candidate in (guid, audio_url, link):
        if candidate and candidate.strip():
            candidate = candidate.strip()
            return candidate if len(candidate) <= MAX_ID_LENGTH else _hashed_id(candidate)
    return _hashed_id(_title_and_date(title, published) or summary.strip())


def _title_and_date(title: str | None, published: datetime | str | None) -> str:
    if isinstance(published, datetime):
        stamp = published.astimezone(UTC).isoformat()
    else:
        stamp = (published or "").strip()
    title = (title or "").strip()
    return f"{title}\n{stamp}" if title or stamp else ""


def _hashed_id(text: str) -> str:
    return "h:" + hashlib.sha256(text.encode()).hexdigest()[:24]


# ------------------------------------------------------------------------ content key

# Measurement services put their host and a path in front of the real enclosure URL
# ("prefix" or "redirect" analytics); removing them reveals the publisher's file.
_TRACKING_PREFIXES = (
    r"^(?:www\.)?dts\.podtrac\.com/redirect\.[a-z0-9]+/",
    r"^(?:www\.)?podtrac\.com/pts/redirect\.[a-z0-9]+/",
    r"^chtbl\.com/track/[^/]+/",
    r"^chrt\.fm/track/[^/]+/",
    r"^pdst\.fm/e/",
    r"^op3\.dev/e(?:,[^/]*)?/",
    r"^pfx\.vpixl\.com/[^/]+/",
    r"^arttrk\.com/p/[^/]+/",
    r"^mgln\.ai/e/[^/]+/",
    r"^(?:verifi\.)?pscrb\.fm/rss/p/",
    r"^verifi\.podscribe\.com/rss/p/",
    r"^clrtpod\.com/m/",
    r"^prfx\.byspotify\.com/e/",
    r"^growx\.podkite\.com/[^/]+/[^/]+/",
    r"^pdcn\.co/e/",
    r"^podcorn\.com/p/[^/]+/",
    # Podtrac's older form carries the real URL as its query: redirect.mp3?http://host/x.mp3
    r"^(?:www\.)?podtrac\.com/pts/redirect\.[a-z0-9]+\?",
)
_TRACKING_PREFIX = re.compile("|".join(f"(?:{p})" for p in _TRACKING_PREFIXES), re.IGNORECASE)
_SCHEME = re.compile(r"^(?:https?:)?//", re.IGNORECASE)


def tracking_free_url(url: str | None) -> str | None:
    """The publisher's file behind an enclosure URL: the scheme and any tracking prefixes
    (Podtrac, Chartable, Podsights, OP3, ...) removed, the host lowercased, the fragment
    dropped. The query is kept: some hosts name the file in it (``download.php?id=7``).

    >>> tracking_free_url("https://dts.podtrac.com/redirect.mp3/Media.Example.com/ep1.mp3?x=1#t=5")
    'media.example.com/ep1.mp3?x=1'
    >>> tracking_free_url("https://op3.dev/e/chtbl.com/track/ABC/https://media.example.com/ep1.mp3")
    'media.example.com/ep1.mp3'
    >>> tracking_free_url("http://www.podtrac.com/pts/redirect.mp3?http://www.example.com/shows/ep-2.mp3")
    'www.example.com/shows/ep-2.mp3'
    >>> tracking_free_url("  ") is None
    True
    """
    if not url or not url.strip():
        return None
    rest = _SCHEME.sub("", url.strip())
    while (prefix := _TRACKING_PREFIX.match(rest)) is not None and prefix.end() > 0:
        rest = _SCHEME.sub("", rest[prefix.end():])
    if rest.isascii() and not _SPLIT_SENSITIVE.search(rest):
        # What urlsplit("//" + rest) gives for plain ASCII text (no brackets, no tab
        # or line break to remove), read with str methods: most enclosure URLs.
        end = len(rest)
        for delimiter in "/?#":
            found = rest.find(delimiter, 0, end)
            if found >= 0:
                end = found
        path = rest[end:].partition("#")[0]
        path, _, query = path.partition("?")
        return (rest[:end].lower() + path + (f"?{query}" if query else "")) or None
    try:
        parts = urlsplit("//" + rest)
        netloc = parts.netloc.lower()
    except ValueError:  # an unbalanced IPv6 bracket: keep the text as it is
        return rest.split("#", 1)[0] or None
    query = f"?{parts.query}" if parts.query else ""
    return (netloc + parts.path + query) or None


_SPLIT_SENSITIVE = re.compile(r"[\[\]\t\r\n]")


def churn_free_url(url: str | None) -> str | None:
    """What of a media URL stays put from fetch to fetch: :func:`tracking_free_url`
    without the query. Hosts put per-request tokens and attribution ids in the query of
    enclosure and image URLs (``?token=...&expires=...``, ``?aw_0_1st.ri=...``), so a query
    that rotates on every fetch must not count as a change of the episode.

    >>> churn_free_url("https://dts.podtrac.com/redirect.mp3/cdn.example.com/ep1.mp3?token=a1&exp=9")
    'cdn.example.com/ep1.mp3'
    >>> churn_free_url(None) is None
    True
    """
    free = tracking_free_url(url)
    return free.split("?", 1)[0] if free is not None else None


def content_key(
    audio_url: str | None, title: str | None, published: datetime | str | None, summary: str = ""
) -> str:
    """What an item is, to tell apart items that share a natural id: its enclosure once
    tracking prefixes are gone; else its title and date (as written); else its description.

    >>> content_key("https://dts.podtrac.com/redirect.mp3/cdn.example.com/781.mp4", "781", None)
    'audio cdn.example.com/781.mp4'
    >>> content_key(None, "Woodsongs 781", "30 Oct 2015 13:35:15 GMT")
    'item Woodsongs 781\\n30 Oct 2015 13:35:15 GMT'
    >>> content_key(None, "", None, " Only a description ")
    'text Only a description'
    """
    if (audio := tracking_free_url(audio_url)) is not None:
        return f"audio {audio}"
    if described := _title_and_date(title, published):
        return f"item {described}"
    return f"text {summary.strip()}"


def derived_id(natural_id: str, key: str) -> str:
    """The id of one of several distinct items that share ``natural_id``.

    >>> derived_id("DD66B42A", "audio cdn.example.com/781.mp4")
    'DD66B42A#39436b7b06bc'
    >>> derived_id("x" * 195, "audio a").startswith("h:")
    True
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:DIGEST_HEX]
    candidate = f"{natural_id}#{digest}"
    return candidate if len(candidate) <= MAX_ID_LENGTH else _hashed_id(candidate)


def is_derived_id(episode_id: str, guid: str | None) -> bool:
    """Whether ``episode_id`` is a :func:`derived_id` of ``guid``: the guid was shared.

    >>> is_derived_id(derived_id("g-1", "audio cdn/a.mp3"), "g-1"), is_derived_id("g-1", "g-1")
    (True, False)
    >>> is_derived_id(derived_id("g" * 195, "audio a"), "g" * 195), is_derived_id("https://cdn/a.mp3", None)
    (True, False)
    """
    if not guid or not guid.strip():
        return False
    natural = stable_episode_id(guid, None, None, None, None)
    if len(natural) + 1 + DIGEST_HEX > MAX_ID_LENGTH:  # derived ids of long guids are hashed
        return episode_id.startswith("h:") and episode_id != natural
    return episode_id.startswith(natural + "#")


# ------------------------------------------------------------------ within a document


@dataclass(frozen=True)
class Candidate:
    """One item of a document, as the identity rule sees it."""

    natural_id: str
    key: str


@dataclass(frozen=True)
class IdChoice:
    """The two ids an item may have: the one it got and the other the rule allows."""

    natural: str
    derived: str


@dataclass
class Assignment:
    """What :func:`assign_ids` decided for one document's items (in document order)."""

    ids: list[str | None]  # the item's episode id; None for a repeat of an earlier item
    choices: dict[str, IdChoice] = field(default_factory=dict)  # episode id -> its two ids
    shared_items: int = 0  # items whose natural id another item also has
    shared_ids: int = 0  # natural ids held by more than one item
    split_ids: int = 0  # shared natural ids whose items differ, so became several episodes

    @property
    def repeats(self) -> int:
        return sum(i is None for i in self.ids)


def assign_ids(candidates: Sequence[Candidate]) -> Assignment:
    """Episode ids for one document's items, in document order (see the module docstring).

    >>> same_guid = [Candidate("g", "audio a"), Candidate("g", "audio b"), Candidate("g", "audio a")]
    >>> assign_ids(same_guid).ids
    ['g#380caaf1cab4', 'g#9ea7d1fd47dd', None]
    >>> assign_ids([Candidate("g", "audio a"), Candidate("g", "audio a"), Candidate("h", "x")]).ids
    ['g', None, 'h']
    """
    keys_by_id: dict[str, list[str]] = {}
    for c in candidates:
        keys = keys_by_id.setdefault(c.natural_id, [])
        if c.key not in keys:
            keys.append(c.key)
    counts: dict[str, int] = {}
    for c in candidates:
        counts[c.natural_id] = counts.get(c.natural_id, 0) + 1

    result = Assignment(ids=[])
    result.shared_ids = sum(n > 1 for n in counts.values())
    result.shared_items = sum(n for n in counts.values() if n > 1)
    result.split_ids = sum(len(keys) > 1 for keys in keys_by_id.values())
    taken: set[str] = set()
    for c in candidates:
        split = len(keys_by_id[c.natural_id]) > 1
        derived = derived_id(c.natural_id, c.key)
        episode_id = derived if split else c.natural_id
        if episode_id in taken:
            result.ids.append(None)  # the same item again (or, vanishingly rarely, a clash)
            continue
        taken.add(episode_id)
        result.ids.append(episode_id)
        result.choices[episode_id] = IdChoice(natural=c.natural_id, derived=derived)
    return result


# ----------------------------------------------------------------- against the store


def same_content(a: Episode, b: Episode) -> bool:
    """Whether two parsed or stored episodes are the same content by the content key's
    order of evidence: the enclosure when both have one, else title and date."""
    audio_a, audio_b = tracking_free_url(a.audio_url), tracking_free_url(b.audio_url)
    if audio_a is not None or audio_b is not None:
        return audio_a == audio_b
    return (a.title, a.published) == (b.title, b.published)


def keep_stored_ids(
    episodes: Sequence[Episode],
    choices: Mapping[str, IdChoice],
    stored: Mapping[str, str],
    load_stored: Callable[[], Iterable[Episode]],
) -> list[Episode]:
    """``episodes`` with the ids that keep already stored episodes where they are.

    ``choices`` is the parser's :attr:`Assignment.choices`; ``stored`` maps each stored
    episode id of the feed to its content hash; ``load_stored`` reads the stored
    episodes, and is called at most once, only when an item of a shared guid may be an
    episode stored under the bare guid and the content hashes cannot tell which.
    """
    keeper = StoredIdKeeper(choices, stored, [e.id for e in episodes], lambda _ids: load_stored())
    out = keeper.keep(episodes)
    for position, episode in keeper.settle():  # ascending positions: each lands where it was
        out.insert(position, episode)
    return out


class StoredIdKeeper:
    """:func:`keep_stored_ids` for a document handed over in batches, in document order
    (the refresh of a big feed): the same ids as for the whole document at once.

    ``ids`` is every episode id of the document (the keys of the parser's choices);
    ``load_stored`` reads the stored episodes among the ids it is given. :meth:`keep`
    returns each batch's episodes under their ids, except the few that wait for the
    whole document (an item of a shared guid whose bare guid is stored with other
    content: it takes the guid only if no later item of the document already did), which
    :meth:`settle` returns at the end.
    """

    def __init__(
        self,
        choices: Mapping[str, IdChoice],
        stored: Mapping[str, str],
        ids: Iterable[str],
        load_stored: Callable[[Collection[str]], Iterable[Episode]],
    ) -> None:
        self.choices = choices
        self.stored = stored
        self.load_stored = load_stored
        self.taken = set(ids)
        self.position = 0  # document position of the next episode handed to keep()
        self.held: list[tuple[int, Episode]] = []

    def keep(self, episodes: Iterable[Episode]) -> list[Episode]:
        """The batch under the ids that keep stored episodes where they are, in order,
        without the ones held for :meth:`settle`."""
        out: list[Episode] = []
        for episode in episodes:
            position, self.position = self.position, self.position + 1
            choice = self.choices.get(episode.id)
            if choice is None or episode.id not in (choice.natural, choice.derived):
                out.append(episode)
            elif episode.id == choice.natural:
                # Unique in this document now, but stored while its natural id was shared.
                if choice.derived in self.stored and choice.derived not in self.taken:
                    episode = self._renamed(episode, choice.derived)
                out.append(episode)
            elif (choice.derived not in self.stored and choice.natural in self.stored
                  and choice.natural not in self.taken):
                as_natural = episode.model_copy(update={"id": choice.natural})
                if self.stored[choice.natural] == as_natural.content_hash:
                    out.append(self._renamed(episode, choice.natural))
                else:
                    self.held.append((position, episode))
            else:
                out.append(episode)
        return out

    def settle(self) -> list[tuple[int, Episode]]:
        """The held episodes, each with its document position, once every batch was kept:
        one takes its bare guid when the episode stored under it has the same content."""
        if not self.held:
            return []
        naturals = {self.choices[e.id].natural for _, e in self.held}
        by_id = {e.id: e for e in self.load_stored(naturals)}
        out: list[tuple[int, Episode]] = []
        for position, episode in self.held:
            natural = self.choices[episode.id].natural
            earlier = by_id.get(natural)
            if earlier is not None and natural not in self.taken and same_content(earlier, episode):
                episode = self._renamed(episode, natural)
            out.append((position, episode))
        self.held = []
        return out

    def _renamed(self, episode: Episode, new_id: str) -> Episode:
        self.taken.discard(episode.id)
        self.taken.add(new_id)
        return episode.model_copy(update={"id": new_id})
