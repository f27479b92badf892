"""Where feed bytes come from, for commands that accept "a file path or a URL".

http(s) URLs go through :mod:`earshot.ingest.fetcher` (the only HTTP code); ``file://`` URLs and
plain paths are read from disk. Reading files is for the local CLI only: the deployed
worker gets http(s) URLs and never reads local files (see ``is_local_source``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from earshot.errors import BodyTooLarge, InvalidUrl
from earshot.ingest.fetcher import fetch_feed
from earshot.models import FetchResult
from earshot.settings import Settings

if TYPE_CHECKING:
    import httpx


def is_local_source(source: str) -> bool:
    """True for ``file://`` URLs and anything without an http(s) scheme.

    >>> is_local_source("feeds/a.xml"), is_local_source("file:///tmp/a.xml"), is_local_source("https://x/y")
    (True, True, False)
    """
    scheme = urlsplit(source).scheme.lower()
    return scheme not in ("http", "https") and (scheme in ("", "file") or len(scheme) == 1)


def local_path(source: str) -> Path:
    """Path for a local source (``file://`` URL or plain path)."""
    parts = urlsplit(source)
    return Path(unquote(parts.path)) if parts.scheme.lower() == "file" else Path(source)


def source_url(source: str) -> str:
    """Canonical URL for a source: http(s) unchanged, paths as absolute ``file://`` URLs."""
    return local_path(source).resolve().as_uri() if is_local_source(source) else source


def read_source(
    source: str,
    *,
    settings: Settings,
    etag: str | None = None,
    last_modified: str | None = None,
    client: httpx.Client | None = None,
) -> FetchResult:
    """Fetch a feed from a URL or read it from a file, as a :class:`FetchResult`.

    Files are read only where ``settings.allow_local_files``, and capped at
    ``settings.max_body_bytes`` like HTTP bodies are.
    """
    if is_local_source(source):
        if not settings.allow_local_files:
            raise InvalidUrl(f"not an http(s) URL: {source}")
        path = local_path(source)
        try:
            size = path.stat().st_size
            if size > settings.max_body_bytes:
                raise BodyTooLarge(f"{path} is {size} bytes, over the {settings.max_body_bytes}-byte cap")
            body = path.read_bytes()
        except OSError as exc:
            raise InvalidUrl(f"cannot read {path}: {exc.strerror or exc}") from exc
        return FetchResult(status=200, url=path.resolve().as_uri(), body=body)
    return fetch_feed(source, etag=etag, last_modified=last_modified, settings=settings, client=client)
