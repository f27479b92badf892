"""Loopback fakes of the two podcast directories Earshot searches, in their documented shapes.

Field names and envelopes follow the directories' own documentation:

- Apple Podcasts search (the iTunes Search API):
  https://performance-partners.apple.com/search-api (Searching; Understanding Search
  Results) and its archived copy
  https://developer.apple.com/library/archive/documentation/AudioVideo/Conceptual/iTuneSearchAPI/Searching.html
  ``GET /search?term=&media=podcast&entity=podcast|podcastEpisode&limit=`` ->
  ``{"resultCount": n, "results": [...]}``; a show is ``wrapperType`` "track", ``kind``
  "podcast" with ``collectionId``, ``trackId``, ``artistName``, ``collectionName``,
  ``trackName``, ``feedUrl``, ``trackCount``, ``releaseDate``, ``primaryGenreName``; an
  episode is ``wrapperType`` "podcastEpisode", ``kind`` "podcast-episode" with
  ``trackName`` (the episode), ``collectionName`` (the show), ``feedUrl``,
  ``episodeUrl``, ``releaseDate``, ``description``.
- The Podcast Index API: https://podcastindex-org.github.io/docs-api/ (#get-/search/byterm,
  #get-/episodes/byfeedid; the OpenAPI source in Podcastindex-org/docs-api,
  ``api_src/components/schemas/feed_search.yaml`` and ``item_podcast.yaml``):
  ``{"status": "true", "feeds": [{"id", "podcastGuid", "title", "url", "originalUrl",
  "link", "description", "author", "ownerName", "itunesId", "episodeCount",
  "newestItemPubdate", ...}], "count", "query", "description"}`` and ``{"status": "true",
  "items": [{"id", "title", "link", "description", "guid", "datePublished",
  "enclosureUrl", "feedId", ...}], "count", "query", "description"}``. Requests need
  ``User-Agent``, ``X-Auth-Key``, ``X-Auth-Date`` (unix seconds, within 5 minutes) and
  ``Authorization`` = lowercase hex sha1(key + secret + date); otherwise a 401.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from tests.support.feedserver import Exchange

JSON_TYPE = {"Content-Type": "text/javascript; charset=utf-8"}  # what Apple's search sends


@dataclass
class Show:
    """One podcast as both directories know it."""

    title: str
    feed_url: str
    author: str = "Loopback Media"
    keywords: tuple[str, ...] = ()  # words its directory metadata holds (searchable)
    episode_titles: tuple[str, ...] = ()  # episodes Apple's episode search can find
    guid: str | None = None
    pi_id: int = 0
    itunes_id: int = 0
    pi_episodes: list[dict[str, object]] = field(default_factory=list)  # episodes/byfeedid items

    def found_by(self, term: str) -> bool:
        text = " ".join((self.title, self.author, *self.keywords)).lower()
        return all(word in text for word in term.lower().split())


def _params(exchange: Exchange) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(exchange.path).query).items()}


def _send_json(exchange: Exchange, data: object, status: int = 200, headers: dict[str, str] | None = None) -> None:
    exchange.send_bytes(status, json.dumps(data).encode(), {**JSON_TYPE, **(headers or {})})


@dataclass
class FakeAppleSearch:
    """``/search`` of the iTunes Search API. ``throttle`` answers 429 (with
    ``Retry-After``) or 403; ``malformed`` answers an HTML page with a 200."""

    shows: list[Show]
    throttle: int | None = None
    retry_after_s: int = 60
    malformed: bool = False
    calls: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, exchange: Exchange) -> None:
        params = _params(exchange)
        self.calls.append(params)
        if self.throttle:
            exchange.send_bytes(self.throttle, b"", {"Retry-After": str(self.retry_after_s)})
            return
        if self.malformed:
            exchange.send_bytes(200, b"<html><body>Service Unavailable</body></html>", {"Content-Type": "text/html"})
            return
        term, entity = params.get("term", ""), params.get("entity", "podcast")
        limit = int(params.get("limit", "50"))
        results: list[dict[str, object]] = []
        for show in self.shows:
            if entity == "podcast" and show.found_by(term):
                results.append({
                    "wrapperType": "track", "kind": "podcast", "collectionId": show.itunes_id,
                    "trackId": show.itunes_id, "artistName": show.author, "collectionName": show.title,
                    "trackName": show.title, "collectionCensoredName": show.title, "trackCensoredName": show.title,
                    "collectionViewUrl": f"https://podcasts.apple.com/us/podcast/id{show.itunes_id}",
                    "feedUrl": show.feed_url, "trackViewUrl": f"https://podcasts.apple.com/us/podcast/id{show.itunes_id}",
                    "artworkUrl600": "https://is1-ssl.mzstatic.com/image/600x600bb.jpg", "trackCount": 12,
                    "releaseDate": "2026-11-20T11:00:00Z", "country": "USA", "primaryGenreName": "Business",
                    "genreIds": ["1321", "26"], "genres": ["Business", "Podcasts"],
                })
            elif entity == "podcastEpisode":
                for episode in show.episode_titles:
                    if all(w in episode.lower() for w in term.lower().split()):
                        results.append({
                            "wrapperType": "podcastEpisode", "kind": "podcast-episode", "collectionId": show.itunes_id,
                            "trackId": show.itunes_id * 1000 + len(results), "collectionName": show.title,
                            "trackName": episode, "feedUrl": show.feed_url, "artistIds": [],
                            "episodeUrl": "https://cdn.example/episode.mp3", "episodeFileExtension": "mp3",
                            "episodeContentType": "audio", "releaseDate": "2026-11-20T11:00:00Z",
                            "description": episode, "shortDescription": episode, "trackTimeMillis": 1800000,
                            "country": "USA", "genres": [{"name": "Business", "id": "1321"}],
                        })
        results = results[:limit]
        _send_json(exchange, {"resultCount": len(results), "results": results})


@dataclass
class FakePodcastIndex:
    """``/api/1.0/search/byterm`` and ``/api/1.0/episodes/byfeedid`` of the Podcast
    Index, checking the documented auth headers on every request."""

    shows: list[Show]
    key: str = "UXKCGDSYGUUEVQJSYDZH"
    secret: str = "yzJe2eE7XV-3eY576dyRZ6wXyAbndh6LUrCZ8KN|"
    throttle: int | None = None
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    auth_failures: int = 0

    def is_authorized(self, headers: dict[str, str]) -> bool:
        date = headers.get("x-auth-date", "")
        expected = hashlib.sha1(f"{self.key}{self.secret}{date}".encode()).hexdigest()
        return (headers.get("x-auth-key") == self.key and date.isdigit()
                and abs(int(date) - time.time()) <= 300 and headers.get("authorization") == expected
                and bool(headers.get("user-agent")))

    def __call__(self, exchange: Exchange) -> None:
        path, params = urlsplit(exchange.path).path, _params(exchange)
        self.calls.append((path, params))
        headers = {k.lower(): v for k, v in exchange.headers.items()}
        if not self.is_authorized(headers):
            self.auth_failures += 1
            _send_json(exchange, {"status": "false", "description": "Authorization header not valid"}, status=401)
            return
        if self.throttle:
            exchange.send_bytes(self.throttle, b"", {"Retry-After": "120"})
            return
        if path.endswith("/search/byterm"):
            term = params.get("q", "")
            feeds = [{
                "id": s.pi_id, "podcastGuid": s.guid or "", "title": s.title, "url": s.feed_url,
                "originalUrl": s.feed_url, "link": "https://example.org/", "description": " ".join(s.keywords),
                "author": s.author, "ownerName": s.author, "image": "", "artwork": "",
                "lastUpdateTime": 1764500000, "lastCrawlTime": 1764500000, "lastParseTime": 1764500000,
                "lastGoodHttpStatusTime": 1764500000, "lastHttpStatus": 200, "contentType": "application/rss+xml",
                "itunesId": s.itunes_id or None, "generator": None, "language": "en", "explicit": False, "type": 0,
                "medium": "podcast", "dead": 0, "episodeCount": 12, "crawlErrors": 0, "parseErrors": 0,
                "categories": {"9": "Business"}, "locked": 0, "imageUrlHash": 0, "newestItemPubdate": 1764500000,
            } for s in self.shows if s.found_by(term)][:int(params.get("max", "40"))]
            _send_json(exchange, {"status": "true", "feeds": feeds, "count": len(feeds), "query": term,
                                  "description": "Found matching feeds"})
        elif path.endswith("/episodes/byfeedid"):
            show = next((s for s in self.shows if str(s.pi_id) == params.get("id")), None)
            items = show.pi_episodes if show else []
            _send_json(exchange, {"status": "true", "items": items, "count": len(items),
                                  "query": params.get("id"), "description": "Found matching items"})
        else:
            exchange.send_bytes(404, b"")


def pi_episode(item_id: int, feed_id: int, title: str, description: str, published: datetime) -> dict[str, object]:
    """An ``episodes/byfeedid`` item (schemas/item_podcast.yaml)."""
    return {
        "id": item_id, "title": title, "link": "https://example.org/e", "description": description,
        "guid": f"ep-{item_id}", "datePublished": int(published.replace(tzinfo=published.tzinfo or UTC).timestamp()),
        "datePublishedPretty": f"{published:%B %d, %Y %I:%M%p}", "dateCrawled": 1764500000,
        "enclosureUrl": "https://cdn.example/e.mp3", "enclosureType": "audio/mpeg", "enclosureLength": 1000,
        "duration": 1800, "explicit": 0, "episode": None, "episodeType": "full", "season": 0, "image": "",
        "feedItunesId": None, "feedImage": "", "feedId": feed_id, "feedLanguage": "en", "chaptersUrl": None,
        "transcriptUrl": None,
    }
