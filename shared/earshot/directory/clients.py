"""The only code that talks to podcast directories: Apple Podcasts search and the Podcast Index.

Both clients send every request through :func:`earshot.ingest.fetcher.fetch_json_body`
(the SSRF guard, timeouts and caps of a feed fetch); their endpoints are settings, so
tests point them at loopback fakes. What they do, and the documentation they follow:

- **Apple Podcasts** (iTunes Search API, no key;
  https://performance-partners.apple.com/search-api): ``GET /search?term=..&media=podcast
  &entity=podcast|podcastEpisode&limit=..`` answers ``{"resultCount": n, "results": [...]}``;
  a show (``wrapperType`` "track", ``kind`` "podcast") and an episode (``wrapperType``
  "podcastEpisode", ``kind`` "podcast-episode") both carry ``feedUrl``, ``collectionName``
  (the show), ``trackName`` (the show, or the episode's title) and ``artistName``. The API
  is "limited to approximately 20 calls per minute": calls are spaced by
  ``60 / apple_calls_per_minute`` seconds.
- **Podcast Index** (key and secret; https://podcastindex-org.github.io/docs-api/):
  ``GET search/byterm?q=..&max=..`` answers ``{"status": "true", "feeds": [{"id",
  "podcastGuid", "title", "url", "author", ...}], "count", "query", "description"}`` and
  ``GET episodes/byfeedid?id=..&max=..`` answers ``{"status": "true", "items": [{"id",
  "title", "description", "datePublished", ...}], ...}``. Every request carries
  ``User-Agent``, ``X-Auth-Key``, ``X-Auth-Date`` (unix seconds) and ``Authorization`` =
  lowercase hex SHA-1 of key + secret + that date (:func:`podcastindex_auth_headers`).

Answers are cached through the store (``put_directory_answer``: a SQLite table locally,
DynamoDB items with a TTL deployed) for ``directory_cache_ttl_s``. A 403 or 429 raises
:class:`~earshot.errors.DirectoryThrottled` and records a cool-down in the same cache (its
``Retry-After``, else :data:`DEFAULT_COOLDOWN_S`): until it passes, that directory is not
called at all. An answer that is not the documented JSON raises
:class:`~earshot.errors.DirectoryAnswerInvalid`; nothing of it is cached.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict

from earshot.errors import (
    DirectoryAnswerInvalid,
    DirectoryError,
    DirectoryNotConfigured,
    DirectoryThrottled,
    FetchError,
    HttpStatusError,
    InvalidUrl,
)
from earshot.ingest.fetcher import fetch_json_body
from earshot.settings import Settings
from earshot.urls import checked_feed_url

if TYPE_CHECKING:
    import httpx

    from earshot.store import Store

Source = Literal["apple", "podcastindex"]
SOURCES: tuple[Source, ...] = ("apple", "podcastindex")
SOURCE_NAMES = {"apple": "Apple Podcasts search", "podcastindex": "the Podcast Index"}
# Neither API says how long its refusal lasts without a Retry-After; back off this long.
DEFAULT_COOLDOWN_S = 300.0
THROTTLE_STATUSES = frozenset({403, 429})


class DirectoryHit(BaseModel):
    """One feed a directory listed for one search term (a show, or a show through one of
    its episodes)."""

    model_config = ConfigDict(frozen=True)

    source: Source
    term: str
    feed_url: str
    title: str = ""
    author: str = ""
    podcast_guid: str | None = None
    directory_id: str | None = None
    episode_title: str | None = None


def podcastindex_auth_headers(key: str, secret: str, epoch_s: int) -> dict[str, str]:
    """The Podcast Index's documented request headers for one moment (its docs' example
    key and secret here).

    >>> podcastindex_auth_headers("UXKCGDSYGUUEVQJSYDZH", "yzJe2eE7XV-3eY576dyRZ6wXyAbndh6LUrCZ8KN|",
    ...                           1700000000)["Authorization"]
    'c75e70335187b65588b2c46e98691f5e9d5850af'
    """
    digest = hashlib.sha1(f"{key}{secret}{epoch_s}".encode()).hexdigest()  # noqa: S324 - the API's own scheme
    return {"X-Auth-Key": key, "X-Auth-Date": str(epoch_s), "Authorization": digest}


class CallPacer:
    """Spaces calls at least ``60 / calls_per_minute`` seconds apart (thread-safe)."""

    def __init__(self, calls_per_minute: float, *, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval_s = 60.0 / calls_per_minute
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_s: float | None = None

    def wait(self) -> float:
        """Sleep until the next call may go; returns the seconds slept."""
        with self._lock:
            now_s = self._monotonic()
            slept_s = 0.0
            if self._next_s is not None and now_s < self._next_s:
                slept_s = self._next_s - now_s
                self._sleep(slept_s)
                now_s = self._next_s
            self._next_s = now_s + self.interval_s
            return slept_s


_PACERS: dict[tuple[str, float], CallPacer] = {}
_PACERS_LOCK = threading.Lock()


def shared_pacer(source: str, calls_per_minute: float) -> CallPacer:
    """One pacer per directory per process: runs for several topics in one invocation
    (the weekly function) share the directory's rate instead of each starting afresh."""
    with _PACERS_LOCK:
        return _PACERS.setdefault((source, calls_per_minute), CallPacer(calls_per_minute))


class DirectoryClient:
    """What both clients share: the cache, the cool-down, pacing and call counts."""

    source: Source

    def __init__(self, settings: Settings, *, client: httpx.Client | None = None, cache: Store | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), pacer: CallPacer | None = None) -> None:
        self.settings = settings
        self.client = client
        self.cache = cache
        self.clock = clock
        self.pacer = pacer or shared_pacer(self.source, self._calls_per_minute())
        self.calls = 0
        self.cache_hits = 0

    def _calls_per_minute(self) -> float:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return SOURCE_NAMES[self.source]

    def _cooldown_key(self) -> str:
        return f"{self.source} cooldown"

    def _check_cooldown(self) -> None:
        if self.cache is None:
            return
        noted = self.cache.get_directory_answer(self._cooldown_key(), now=self.clock())
        if noted:
            raise DirectoryThrottled(f"{self.name} is not asked again yet: {json.loads(noted)['message']}")

    def _get(self, url: str, params: dict[str, str], headers: dict[str, str] | None = None) -> Any:
        """One answer as JSON, from the cache when it holds one; throttling and bad JSON raise."""
        self._check_cooldown()
        self.pacer.wait()
        self.calls += 1
        try:
            body = fetch_json_body(url, params=params, headers=headers, settings=self.settings, client=self.client,
                                   max_body_bytes=self.settings.directory_max_body_bytes)
        except HttpStatusError as exc:
            if exc.status in THROTTLE_STATUSES:
                raise self._throttled(exc) from exc
            raise DirectoryError(f"{self.name}: {exc}") from exc
        except FetchError as exc:
            raise DirectoryError(f"{self.name}: {exc}") from exc
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DirectoryAnswerInvalid(f"{self.name} answered something that is not JSON ({exc})") from exc

    def _throttled(self, exc: HttpStatusError) -> DirectoryThrottled:
        """Record the cool-down a 403/429 asks for; the error to raise."""
        wait_s = exc.retry_after_s if exc.retry_after_s is not None else DEFAULT_COOLDOWN_S
        until = self.clock() + timedelta(seconds=wait_s)
        message = f"HTTP {exc.status} at {self.clock():%H:%M:%S} UTC; backing off until {until:%H:%M:%S} UTC"
        if self.cache is not None:
            self.cache.put_directory_answer(self._cooldown_key(), json.dumps({"message": message}),
                                            expires_at=int(until.timestamp()) + 1)
        return DirectoryThrottled(f"{self.name} refused: {message}", retry_after_s=wait_s)

    def _cached(self, key: str, fetch: Callable[[], list[DirectoryHit]]) -> list[DirectoryHit]:
        """Hits for ``key`` from the cache, else fetched and cached (only valid answers)."""
        if self.cache is not None:
            stored = self.cache.get_directory_answer(key, now=self.clock())
            if stored is not None:
                self.cache_hits += 1
                return [DirectoryHit.model_validate(h) for h in json.loads(stored)]
        hits = fetch()
        if self.cache is not None and self.settings.directory_cache_ttl_s > 0:
            payload = json.dumps([h.model_dump(mode="json") for h in hits], separators=(",", ":"))
            expires = int(self.clock().timestamp()) + self.settings.directory_cache_ttl_s
            self.cache.put_directory_answer(key, payload, expires_at=expires)
        return hits

    def search(self, term: str) -> list[DirectoryHit]:
        raise NotImplementedError


def _feed_url(value: Any) -> str:
    """A directory's feed URL if Earshot may store it (the one door, :mod:`earshot.urls`), else ""."""
    try:
        return checked_feed_url(_text(value))
    except InvalidUrl:
        return ""


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _results(answer: Any, field: str, name: str) -> list[Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get(field), list):
        raise DirectoryAnswerInvalid(f"{name} answered JSON without a {field!r} list")
    return list(answer[field])


class AppleSearch(DirectoryClient):
    """Apple Podcasts search: shows and episodes by term (no key)."""

    source: Source = "apple"

    def _calls_per_minute(self) -> float:
        return self.settings.apple_calls_per_minute

    def search(self, term: str) -> list[DirectoryHit]:
        """Shows whose metadata matches ``term``, then shows with an episode that does."""
        return [*self._search(term, "podcast"), *self._search(term, "podcastEpisode")]

    def _search(self, term: str, entity: str) -> list[DirectoryHit]:
        params = {"term": term, "media": "podcast", "entity": entity,
                  "limit": str(min(self.settings.discovery_results_per_call, 200))}
        key = f"apple search {urlencode(sorted(params.items()))}"
        return self._cached(key, lambda: self._hits(self._get(self.settings.apple_search_url, params), term))

    def _hits(self, answer: Any, term: str) -> list[DirectoryHit]:
        hits = []
        for result in _results(answer, "results", self.name):
            if not isinstance(result, dict) or not _feed_url(result.get("feedUrl")):
                continue  # Apple lists some shows without a public feed; a URL the door refuses is no candidate
            is_episode = result.get("wrapperType") == "podcastEpisode" or result.get("kind") == "podcast-episode"
            hits.append(DirectoryHit(
                source="apple", term=term, feed_url=_feed_url(result["feedUrl"]),
                title=_text(result.get("collectionName")) or _text(result.get("trackName")),
                author=_text(result.get("artistName")),
                directory_id=str(result["collectionId"]) if result.get("collectionId") is not None else None,
                episode_title=_text(result.get("trackName")) if is_episode else None,
            ))
        return hits


class PodcastIndex(DirectoryClient):
    """The Podcast Index: feeds by term, a feed's episodes (key and secret needed)."""

    source: Source = "podcastindex"

    def _calls_per_minute(self) -> float:
        return self.settings.podcastindex_calls_per_minute

    @property
    def is_configured(self) -> bool:
        return bool(self.settings.podcastindex_key and self.settings.podcastindex_secret)

    def _api(self, path: str, params: dict[str, str]) -> Any:
        if not self.is_configured:
            raise DirectoryNotConfigured(
                "the Podcast Index needs a key and secret (EARSHOT_PODCASTINDEX_KEY and EARSHOT_PODCASTINDEX_SECRET; "
                "deployed: the SSM parameter EARSHOT_PODCASTINDEX_PARAMETER names)")
        headers = podcastindex_auth_headers(self.settings.podcastindex_key, self.settings.podcastindex_secret,
                                            int(time.time()))
        answer = self._get(f"{self.settings.podcastindex_url.rstrip('/')}/{path}", params, headers)
        if isinstance(answer, dict) and str(answer.get("status", "true")).lower() == "false":
            raise DirectoryError(f"{self.name} refused {path}: {_text(answer.get('description')) or 'no reason given'}")
        return answer

    def search(self, term: str) -> list[DirectoryHit]:
        params = {"q": term, "max": str(self.settings.discovery_results_per_call)}
        key = f"podcastindex search/byterm {urlencode(sorted(params.items()))}"
        return self._cached(key, lambda: self._feed_hits(self._api("search/byterm", params), term))

    def _feed_hits(self, answer: Any, term: str) -> list[DirectoryHit]:
        hits = []
        for feed in _results(answer, "feeds", self.name):
            if not isinstance(feed, dict) or not _feed_url(feed.get("url")):
                continue  # no URL, or one the door refuses (earshot.urls): no candidate
            hits.append(DirectoryHit(
                source="podcastindex", term=term, feed_url=_feed_url(feed["url"]), title=_text(feed.get("title")),
                author=_text(feed.get("author")) or _text(feed.get("ownerName")),
                podcast_guid=_text(feed.get("podcastGuid")) or None,
                directory_id=str(feed["id"]) if feed.get("id") is not None else None,
            ))
        return hits

    def episodes_by_feed_id(self, feed_id: str, *, limit: int) -> list[dict[str, Any]]:
        """A feed's recent episodes as the Podcast Index holds them (newest first):
        ``title``, ``description`` and ``datePublished`` (unix seconds) of each."""
        answer = self._api("episodes/byfeedid", {"id": feed_id, "max": str(limit)})
        return [item for item in _results(answer, "items", self.name) if isinstance(item, dict)]


def directory_clients(sources: list[Source], settings: Settings, *, client: httpx.Client | None = None,
                      cache: Store | None = None,
                      clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> list[DirectoryClient]:
    """One client per source asked for, in that order."""
    kinds: dict[Source, type[DirectoryClient]] = {"apple": AppleSearch, "podcastindex": PodcastIndex}
    return [kinds[source](settings, client=client, cache=cache, clock=clock) for source in sources]
