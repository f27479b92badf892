"""The only module that talks HTTP: one conditional GET of one feed, done defensively.

:func:`fetch_feed` returns a :class:`~earshot.models.FetchResult` (a 200 with its body,
or a 304) and raises every failure as one of the ``FetchError`` kinds in ``errors``.
:func:`make_client` builds the pooled, guarded client the worker shares across threads.

What a fetch does, and the spec it follows:

- **Conditional GET** (RFC 9110 §13.1.1-13.1.3): the stored ``ETag`` goes out as
  ``If-None-Match`` and the stored ``Last-Modified`` as ``If-Modified-Since``; a 304
  (§15.4.5) is a success with no body. A 304 that does not restate the validators
  leaves the stored ones in force, so they are returned unchanged.
- **Redirects** are followed here, not by httpx, so every hop passes the URL checks and
  the SSRF guard: at most ``settings.max_redirects`` hops, a loop is refused at once,
  relative ``Location`` values are resolved against the hop that sent them (§10.2.2).
  ``permanent_redirect_url`` is set only when *every* hop was 301/308 (§15.4.2,
  §15.4.9): one 302/307 on the way means "keep asking the old URL".
- **Status**: 2xx -> body; 304 -> not modified; 410 -> ``FeedGone``; 429/503 ->
  ``HttpStatusError`` carrying ``Retry-After`` (§10.2.3: delta-seconds or an
  HTTP-date); any other status -> ``HttpStatusError``.
- **Freshness**: ``Cache-Control: max-age`` (RFC 9111 §5.2.2.1) becomes
  ``cache_max_age_s``; the scheduler folds it into the next check time.
- **Limits**: a connect timeout, and one total deadline (``total_timeout_s``) across all
  hops and every read, so a server dripping one byte a second still ends on time. Only
  ``gzip, deflate`` is offered and inflated here in bounded steps, so the body cap
  (``max_body_bytes``) counts *inflated* bytes and a gzip bomb stops at the cap with
  memory bounded; a ``Content-Length`` over the cap is refused before any body is read.

SSRF guard
----------
Feed URLs come from users and Earshot runs inside AWS, so a feed URL must never reach
the instance metadata service, the VPC, or localhost. The check lives where the socket
is made: :class:`GuardedBackend` is the httpcore network backend of every connection
the client opens. Its ``connect_tcp`` resolves the host once, refuses if *any* resolved
address is blocked (:func:`blocked_reason`), and connects to exactly the addresses it
checked. Checking the URL first and letting the HTTP stack resolve the name again would
let DNS rebinding through (a public answer for the check, 169.254.169.254 for the
connect). Each redirect hop opens its connection through the same backend, and a
literal-IP URL is checked the same way. TLS is unaffected: httpcore calls ``start_tls``
on the returned stream with ``server_hostname`` set to the URL's host, so SNI and
certificate checks use the name, not the IP.

``settings.allow_private_addresses`` switches the guard off (the local CLI fetching the
user's own feeds) and ``settings.allowed_hosts`` exempts exact ``host:port`` pairs
(tests serve feeds from ``127.0.0.1:<port>``). A client passed to :func:`fetch_feed`
that was not built by :func:`make_client` has no guard; that is the seam for
``httpx.MockTransport`` tests, never for production.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import re
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpcore
import httpx

from earshot.errors import (
    BlockedAddress,
    BodyTooLarge,
    ConnectFailed,
    DecodeFailed,
    FeedGone,
    FetchTimeout,
    HttpStatusError,
    InvalidUrl,
    ProtocolFailed,
    TooManyRedirects,
)
from earshot.models import FetchResult
from earshot.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

Resolver = Callable[..., list[tuple[Any, ...]]]
"""Shaped like ``socket.getaddrinfo``: called as ``resolver(host, port, type=SOCK_STREAM)``."""

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECT_STATUSES = frozenset({301, 308})
RETRY_AFTER_STATUSES = frozenset({429, 503})

ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
# Only what _inflate can undo: bodies are inflated here, not by httpx, to bound memory.
ACCEPT_ENCODING = "gzip, deflate"

# Inflate at most this much per step: one 64 KiB wire chunk of a gzip bomb would
# otherwise become ~64 MiB in a single allocation before the cap is even checked.
INFLATE_STEP_BYTES = 64 * 1024

# Servers drop idle connections after seconds to a minute (and Lambda may sit frozen
# meanwhile); expiring ours early avoids most reuse of a connection already closed.
KEEPALIVE_EXPIRY_S = 15.0

# RFC 9111 §1.2.2 takes a delta-seconds too large to represent as 2^31; Retry-After too.
MAX_DELTA_SECONDS = 2**31

_CLOUD_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
_NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the low 32 bits
# Checked in this order so the reason names the most specific class (Python counts
# loopback and link-local as private too).
_BLOCKED_CLASSES = (
    ("unspecified", "is_unspecified"),
    ("loopback", "is_loopback"),
    ("link-local", "is_link_local"),
    ("multicast", "is_multicast"),
    ("reserved", "is_reserved"),
    ("private", "is_private"),
)

# Deadline (time.monotonic() seconds) of the fetch running in this context. The sync
# httpx client does all its I/O on the calling thread, so the sockets read it here.
_fetch_deadline_s: ContextVar[float | None] = ContextVar("earshot_fetch_deadline_s", default=None)


def fetch_feed(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    settings: Settings,
    client: httpx.Client | None = None,
    resolver: Resolver | None = None,
) -> FetchResult:
    """Conditionally GET ``url``, following redirects, within the limits in ``settings``.

    ``client`` should come from :func:`make_client` (the worker shares one); without it
    a client is built for this one call, using ``resolver`` for DNS if given.
    """
    if client is None:
        with make_client(settings, resolver) as own_client:
            return fetch_feed(
                url, etag=etag, last_modified=last_modified, settings=settings, client=own_client
            )
    if resolver is not None:
        raise ValueError("resolver is only used when fetch_feed builds the client; pass it to make_client")

    started_s = time.monotonic()
    deadline_s = started_s + settings.total_timeout_s
    token = _fetch_deadline_s.set(deadline_s)
    try:
        return _fetch(url, etag, last_modified, settings, client, started_s, deadline_s)
    finally:
        _fetch_deadline_s.reset(token)


def make_client(settings: Settings, resolver: Resolver | None = None) -> httpx.Client:
    """A pooled client whose every connection passes the SSRF guard.

    httpx.Client is thread-safe: build one per process and share it across worker
    threads. The pool holds at most one connection per worker thread.
    """
    limits = httpx.Limits(
        max_connections=settings.worker_threads,
        max_keepalive_connections=settings.worker_threads,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    # trust_env=False: proxy variables would route requests around the guarded backend,
    # and the process environment is not where Earshot's settings live.
    transport = httpx.HTTPTransport(limits=limits, trust_env=False)
    # httpx.HTTPTransport takes no network_backend (httpx 0.28), so replace its pool with
    # one built the same way plus the guarded backend; the transport's request handling
    # and httpcore -> httpx exception mapping stay httpx's own.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(settings, resolver or socket.getaddrinfo),
    )
    return httpx.Client(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(settings.total_timeout_s, connect=settings.connect_timeout_s),
        # One shared cookie jar would carry one feed's cookies to the next and grow
        # without bound; feeds need no cookies, so refuse them all.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


class GuardedBackend(httpcore.SyncBackend):
    """httpcore network backend that connects only to addresses allowed by the SSRF guard."""

    def __init__(self, settings: Settings, resolver: Resolver = socket.getaddrinfo) -> None:
        self._allow_private = settings.allow_private_addresses
        self._allowed_hosts = frozenset(entry.lower() for entry in settings.allowed_hosts)
        self._resolver = resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._resolve(host, port)
        if not self._is_exempt(host, port):
            for address in addresses:
                if reason := blocked_reason(address):
                    raise BlockedAddress(f"{host} resolves to {address} ({reason}); refusing to connect")
        last_error: Exception | None = None
        for address in addresses:
            try:
                # A literal IP, so SyncBackend's own getaddrinfo makes no DNS query and
                # the socket connects to exactly the address checked above.
                stream = super().connect_tcp(
                    str(address),
                    port,
                    timeout=_clamp_to_deadline(timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
            else:
                return _DeadlineStream(stream)
        assert last_error is not None  # _resolve never returns an empty list
        raise last_error

    def _resolve(self, host: str, port: int) -> list[IPAddress]:
        with contextlib.suppress(ValueError):
            return [ipaddress.ip_address(host)]
        try:
            infos = self._resolver(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:  # socket.gaierror
            raise httpcore.ConnectError(f"DNS lookup failed for {host}: {exc}") from exc
        # dict.fromkeys: drop duplicates (one per protocol/socktype) but keep the order.
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        if not addresses:
            raise httpcore.ConnectError(f"DNS lookup for {host} returned no addresses")
        return addresses

    def _is_exempt(self, host: str, port: int) -> bool:
        if self._allow_private:
            return True
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return authority.lower() in self._allowed_hosts


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every wait also ends by the running fetch's total deadline.

    httpcore gives every read of a response the read timeout fixed when the request
    started, so a server that drips bytes and then stalls could hold a fetch up to that
    long past the deadline: the clock check between body chunks cannot cut short a read
    that is already waiting. Only connections from GuardedBackend have this.
    """

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp_to_deadline(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp_to_deadline(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _clamp_to_deadline(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _clamp_to_deadline(timeout_s: float | None, timeout_error: type[Exception]) -> float | None:
    deadline_s = _fetch_deadline_s.get()
    if deadline_s is None:
        return timeout_s
    remaining_s = deadline_s - time.monotonic()
    if remaining_s <= 0:
        raise timeout_error("the fetch's total deadline passed")
    return remaining_s if timeout_s is None else min(timeout_s, remaining_s)


def blocked_reason(address: IPAddress) -> str | None:
    """Why the SSRF guard refuses ``address``, or None when it may be connected to.

    >>> blocked_reason(ipaddress.ip_address("93.184.215.14")) is None
    True
    >>> blocked_reason(ipaddress.ip_address("::ffff:10.0.0.1"))
    'private'
    >>> blocked_reason(ipaddress.ip_address("169.254.169.254"))
    'cloud metadata'
    """
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:a.b.c.d reaches a.b.c.d on a dual-stack socket, and a NAT64 gateway
        # forwards 64:ff9b::a.b.c.d there too: judge the IPv4 address they carry.
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in _NAT64_PREFIX:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _CLOUD_METADATA:
        return "cloud metadata"
    if address in _SHARED_ADDRESS_SPACE:
        return "shared address space"
    for reason, attribute in _BLOCKED_CLASSES:
        if getattr(address, attribute):
            return reason
    if not address.is_global:
        return "not globally routable"
    return None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (RFC 9110 §10.2.3), or None if unusable.

    The value is delta-seconds or an HTTP-date (any of the three formats of §5.6.7); a
    date in the past means "now".

    >>> parse_retry_after("120"), parse_retry_after("9" * 5000)
    (120.0, 2147483648.0)
    >>> parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now=datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC))
    60.0
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # More digits than 2^31 has is 2^31 (and never an int conversion of any length).
        return float(MAX_DELTA_SECONDS if len(value) > 10 else min(int(value), MAX_DELTA_SECONDS))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # the asctime format carries no zone; HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_cache_max_age(value: str | None) -> int | None:
    """The ``max-age`` of a ``Cache-Control`` value (RFC 9111 §5.2.2.1), or None.

    Directive names are case-insensitive and the argument may be quoted (§5.2); with
    several ``max-age`` directives the first wins (§4.2.1).

    >>> parse_cache_max_age('public, max-age=3600')
    3600
    >>> parse_cache_max_age('s-maxage=60') is None
    True
    """
    if not value:
        return None
    for directive in value.split(","):
        name, _, argument = directive.partition("=")
        if name.strip().lower() == "max-age":
            argument = argument.strip().strip('"')
            if argument.isascii() and argument.isdigit():
                return MAX_DELTA_SECONDS if len(argument) > 10 else min(int(argument), MAX_DELTA_SECONDS)
            return None
    return None


def _fetch(
    url: str,
    etag: str | None,
    last_modified: str | None,
    settings: Settings,
    client: httpx.Client,
    started_s: float,
    deadline_s: float,
) -> FetchResult:
    headers = {"User-Agent": settings.user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified

    current = _checked_url(url)
    visited = {current}
    hop_statuses: list[int] = []
    while True:
        timeout = _hop_timeout(settings, deadline_s)
        request = client.build_request("GET", current, headers=headers, timeout=timeout)
        with _transport_errors(current):
            response = client.send(request, stream=True, follow_redirects=False)
        try:
            if response.status_code not in REDIRECT_STATUSES:
                body = _read_answer(response, settings.max_body_bytes, deadline_s, current)
                break
            target = _redirect_target(response, current)
        finally:
            response.close()
        if target in visited:
            raise TooManyRedirects(f"redirect loop: {current} -> {target}")
        if len(hop_statuses) >= settings.max_redirects:
            raise TooManyRedirects(f"more than {settings.max_redirects} redirects from {url}")
        hop_statuses.append(response.status_code)
        visited.add(target)
        current = target

    is_not_modified = response.status_code == 304
    is_moved_permanently = bool(hop_statuses) and set(hop_statuses) <= PERMANENT_REDIRECT_STATUSES
    return FetchResult(
        status=response.status_code,
        url=str(current),
        body=body,
        # A 304 need not restate the validators; the stored ones then stay in force.
        etag=response.headers.get("etag") or (etag if is_not_modified else None),
        last_modified=response.headers.get("last-modified") or (last_modified if is_not_modified else None),
        content_type=response.headers.get("content-type"),
        cache_max_age_s=parse_cache_max_age(response.headers.get("cache-control")),
        permanent_redirect_url=str(current) if is_moved_permanently else None,
        elapsed_s=time.monotonic() - started_s,
    )


def _checked_url(raw: str | httpx.URL) -> httpx.URL:
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL as exc:
        raise InvalidUrl(f"not a URL: {raw!r} ({exc})") from exc
    if url.scheme not in ("http", "https"):
        raise InvalidUrl(f"only http and https URLs are fetched: {raw!r}")
    if url.userinfo:
        # httpx would send them as Basic auth to every hop, and they would be stored
        # and logged with the URL; "https://trusted.example@evil.example/" misleads too.
        raise InvalidUrl(f"URLs with credentials are refused: {url.copy_with(username=None, password=None)}")
    if not url.host:
        raise InvalidUrl(f"URL has no host: {raw!r}")
    return url.copy_with(fragment=None)


def _redirect_target(response: httpx.Response, current: httpx.URL) -> httpx.URL:
    location = response.headers.get("location")
    if not location:
        raise HttpStatusError(response.status_code,
                              f"{status_text(response.status_code, current)} is a redirect without a Location")
    try:
        return _checked_url(current.join(location))
    except httpx.InvalidURL as exc:
        raise InvalidUrl(f"bad redirect Location {location!r}: {exc}") from exc


def _hop_timeout(settings: Settings, deadline_s: float) -> httpx.Timeout:
    """This hop's timeouts: each wait is capped by the time left of the total deadline."""
    remaining_s = deadline_s - time.monotonic()
    if remaining_s <= 0:
        raise FetchTimeout(f"total deadline of {settings.total_timeout_s} s passed while redirecting")
    return httpx.Timeout(remaining_s, connect=min(settings.connect_timeout_s, remaining_s))


def _read_answer(
    response: httpx.Response, max_body_bytes: int, deadline_s: float, url: httpx.URL
) -> bytes | None:
    """The body of a success or 304 (None); every other status raises its FetchError."""
    status = response.status_code
    if status == 304:
        return None
    if status == 410:
        raise FeedGone(f"{status_text(status, url)}: the publisher retired this feed")
    if status in RETRY_AFTER_STATUSES:
        retry_after_s = parse_retry_after(response.headers.get("retry-after"))
        later = f" (retry after {retry_after_s:.0f} s)" if retry_after_s is not None else ""
        raise HttpStatusError(status, status_text(status, url) + later, retry_after_s=retry_after_s)
    if not 200 <= status < 300:
        raise HttpStatusError(status, status_text(status, url))

    declared_bytes = _content_length(response)
    if declared_bytes is not None and declared_bytes > max_body_bytes:
        raise BodyTooLarge(f"Content-Length {declared_bytes} is over the {max_body_bytes}-byte cap")
    # A BytesIO hands its buffer over as the bytes (getvalue() shrinks it in place): a
    # bytearray would be copied once more at the end, doubling the peak for a big feed.
    body = io.BytesIO()
    with _transport_errors(url):
        for chunk in _decoded_chunks(response):
            if body.write(chunk) and body.tell() > max_body_bytes:
                raise BodyTooLarge(f"body passed the {max_body_bytes}-byte cap (after decoding)")
            # A drip feed never trips a read timeout; the deadline must be checked here.
            if time.monotonic() > deadline_s:
                raise FetchTimeout(f"total deadline passed while reading the body of {url}")
    return body.getvalue()


def _content_length(response: httpx.Response) -> int | None:
    # h11 has already rejected malformed or conflicting Content-Length values.
    value = response.headers.get("content-length")
    if value is None:
        return None
    return int(value) if len(value) <= 18 else 10**18  # a length too long to parse is too long to read


def _decoded_chunks(response: httpx.Response) -> Iterator[bytes]:
    """The body as it arrives, with each Content-Encoding undone (RFC 9110 §8.4)."""
    header = response.headers.get("content-encoding", "")
    encodings = [coding.strip().lower() for coding in header.split(",") if coding.strip()]
    chunks: Iterator[bytes] = response.iter_raw()
    # Codings are listed in the order they were applied, so undo them last to first.
    for coding in reversed(encodings):
        if coding in ("gzip", "x-gzip", "deflate"):
            chunks = _inflate(chunks)
        elif coding != "identity":
            raise DecodeFailed(f"unsupported Content-Encoding {coding!r} (only {ACCEPT_ENCODING} offered)")
    return chunks


def _inflate(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Inflate a gzip or zlib stream, yielding at most INFLATE_STEP_BYTES at a time.

    HTTP "deflate" is the zlib format (RFC 9110 §8.4.1.2); wbits 32 + 15 accepts a gzip
    or a zlib header, since servers mix the two up.
    """
    decompressor = zlib.decompressobj(32 + zlib.MAX_WBITS)
    received_any = False
    try:
        for chunk in chunks:
            received_any = received_any or bool(chunk)
            pending = chunk
            while pending:
                yield decompressor.decompress(pending, INFLATE_STEP_BYTES)
                pending = decompressor.unconsumed_tail
        # What is left is at most one back-reference (258 bytes): the step limit held above.
        yield decompressor.flush()
    except zlib.error as exc:
        raise DecodeFailed(f"broken compressed body: {exc}") from exc
    if received_any and not decompressor.eof:
        raise DecodeFailed("compressed body ends before its compressed stream does")


def in_words(exc: BaseException) -> str:
    """An OS or library error as a short phrase for a person.

    >>> in_words(ConnectionRefusedError(111, "Connection refused"))
    'connection refused'
    >>> in_words(OSError("DNS lookup failed for feeds.invalid: [Errno -2] Name or service not known"))
    'DNS lookup failed for feeds.invalid: Name or service not known'
    """
    text = re.sub(r"\[Errno -?\d+\]\s*", "", str(exc)).strip() or type(exc).__name__
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


_TIMEOUT_WHILE = {
    httpx.ConnectTimeout: "connecting to",
    httpx.ReadTimeout: "waiting for an answer from",
    httpx.WriteTimeout: "sending the request to",
    httpx.PoolTimeout: "waiting for a free connection to",
}


def status_text(status: int, url: httpx.URL | str) -> str:
    """``HTTP 404 Not Found from https://...``: the status, in words, and whose it is.

    >>> status_text(404, "https://feeds.example/a.xml")
    'HTTP 404 Not Found from https://feeds.example/a.xml'
    """
    try:
        phrase = f" {HTTPStatus(status).phrase}"
    except ValueError:
        phrase = ""
    return f"HTTP {status}{phrase} from {url}"


@contextlib.contextmanager
def _transport_errors(url: httpx.URL) -> Iterator[None]:
    """Re-raise httpx's transport errors as Earshot's FetchError kinds, said in words with
    the URL (``could not connect to http://...: connection refused``)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        doing = next((words for kind, words in _TIMEOUT_WHILE.items() if isinstance(exc, kind)), "fetching")
        reason = in_words(exc)
        detail = f" ({reason})" if reason and "timed out" not in reason.lower() else ""
        raise FetchTimeout(f"timed out {doing} {url}{detail}") from exc
    except httpx.UnsupportedProtocol as exc:
        raise InvalidUrl(f"cannot fetch {url}: {in_words(exc)}") from exc
    except httpx.ConnectError as exc:
        raise ConnectFailed(f"could not connect to {url}: {in_words(exc)}") from exc
    except httpx.TransportError as exc:
        # Connected, then the exchange broke: reset, bad framing, truncated body.
        raise ProtocolFailed(f"the connection to {url} broke off: {in_words(exc)}") from exc


JSON_ACCEPT = "application/json"


def fetch_json_body(
    url: str,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    settings: Settings,
    client: httpx.Client | None = None,
    max_body_bytes: int | None = None,
) -> bytes:
    """GET one answer of a JSON API (a podcast directory's search) and return its body.

    The same door as :func:`fetch_feed`: the URL checks, the SSRF guard of the client
    (:func:`make_client`), the connect timeout and one total deadline, inflation in
    bounded steps and a body cap (``max_body_bytes``, else ``settings.max_body_bytes``).
    Redirects are not followed: a directory API answers where it is asked, and a
    redirect there is an error worth seeing. Every status but 2xx raises its
    ``FetchError`` (429/503 with ``retry_after_s``, 403 as ``HttpStatusError(403)``).
    """
    if client is None:
        with make_client(settings) as own_client:
            return fetch_json_body(url, params=params, headers=headers, settings=settings, client=own_client,
                                   max_body_bytes=max_body_bytes)
    started_s = time.monotonic()
    deadline_s = started_s + settings.total_timeout_s
    token = _fetch_deadline_s.set(deadline_s)
    try:
        target = _checked_url(url)
        if params:
            target = target.copy_merge_params(params)
        sent = {"User-Agent": settings.user_agent, "Accept": JSON_ACCEPT, "Accept-Encoding": ACCEPT_ENCODING,
                **(headers or {})}
        request = client.build_request("GET", target, headers=sent, timeout=_hop_timeout(settings, deadline_s))
        with _transport_errors(target):
            response = client.send(request, stream=True, follow_redirects=False)
        try:
            if response.status_code in REDIRECT_STATUSES:
                raise HttpStatusError(response.status_code,
                                      f"{status_text(response.status_code, target)}: a redirect, not an answer")
            body = _read_answer(response, max_body_bytes or settings.max_body_bytes, deadline_s, target)
        finally:
            response.close()
    finally:
        _fetch_deadline_s.reset(token)
    return body or b""
