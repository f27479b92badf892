"""Feed URLs: the one door every feed URL passes before Earshot stores it.

A feed URL reaches the store four ways, and each goes through :func:`checked_feed_url`:
``earshot feeds add`` and ``feeds import`` (OPML and text lists, through
:func:`earshot.ingest.refresh.new_feed`), a permanent redirect (301/308) that would
move the stored URL (``earshot.ingest.refresh``), and any later way of discovering feeds
(which must build its feeds with ``new_feed`` too). What it refuses, as
:class:`~earshot.errors.InvalidUrl` with the reason in words:

- anything but ``http`` and ``https`` (``file:``, ``javascript:``, ``data:``, ``gopher:``),
  except ``file:`` URLs of the local CLI's own feed files where the caller allows them;
- whitespace or control characters anywhere (a CR/LF taken from an OPML attribute would
  be printed by ``feeds list`` and could split a log line);
- credentials (``user:pw@``): they would be stored, logged and sent to every hop;
- no host, an unparseable authority (an unbalanced ``[``, a port that is not a number);
- more than :data:`~earshot.bounds.MAX_FEED_URL_BYTES` (1,000) bytes of UTF-8: the URL
  is a key attribute of the ``type`` index, whose sort key holds at most 1,024 bytes,
  and one URL past that made every later write of the feed fail.

Fetching has its own checks on every hop (``earshot.ingest.fetcher``: scheme,
credentials, the SSRF guard at the socket); a hop may be longer than a stored URL, since
it is only requested, never stored.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from earshot.bounds import MAX_FEED_URL_BYTES
from earshot.errors import InvalidUrl

FEED_SCHEMES = ("http", "https")


def checked_feed_url(url: str, *, allow_files: bool = False) -> str:
    """``url`` if Earshot may store it as a feed's URL, else :class:`InvalidUrl` saying why.

    Surrounding whitespace is removed; nothing else is changed (the feed id is a hash of
    the URL as given).

    >>> checked_feed_url(" https://feeds.example.com/show.xml ")
    'https://feeds.example.com/show.xml'
    >>> checked_feed_url("javascript:alert(1)")
    Traceback (most recent call last):
    earshot.errors.InvalidUrl: not an http(s) URL (javascript:)
    >>> checked_feed_url("https://feeds.example.com/a\\r\\nb.xml")
    Traceback (most recent call last):
    earshot.errors.InvalidUrl: not a URL (a line break at position 27)
    >>> checked_feed_url("https://feeds.example.com/" + "a" * 1100)
    Traceback (most recent call last):
    earshot.errors.InvalidUrl: the URL is 1,126 bytes long; feed URLs are kept to 1,000 bytes
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidUrl("no URL given")
    url = url.strip()
    for position, character in enumerate(url):
        if character.isspace() or unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp"):
            what = ("a line break" if character in "\r\n\x85\u2028\u2029"
                    else "a space" if character.isspace() else f"a control character U+{ord(character):04X}")
            raise InvalidUrl(f"not a URL ({what} at position {position})")
    size_bytes = len(url.encode())
    if size_bytes > MAX_FEED_URL_BYTES:
        raise InvalidUrl(f"the URL is {size_bytes:,} bytes long; feed URLs are kept to {MAX_FEED_URL_BYTES:,} bytes")
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number (or is past 65535) raises here
    except ValueError as exc:
        raise InvalidUrl(f"not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme == "file" and allow_files:
        return url
    if scheme not in FEED_SCHEMES:
        shown = f"{scheme}:" if scheme else "no scheme"
        raise InvalidUrl(f"not an http(s) URL ({shown})")
    if parts.username is not None or parts.password is not None:
        raise InvalidUrl("URLs with credentials (user:password@) are refused: they would be stored and sent on")
    if not parts.hostname:
        raise InvalidUrl("an http(s) URL with no host")
    return url
