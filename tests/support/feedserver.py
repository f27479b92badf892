"""A loopback HTTP server whose routes misbehave on demand, for tests over real sockets.

One :class:`FeedServer` listens on two loopback addresses, ``127.0.0.1`` (``.url``) and
``127.0.0.2`` (``.url(..., alt=True)``), plus any ``extra_hosts`` (``127.0.0.3`` ...,
``.url(..., host=...)``), all serving one route table, so a test can redirect across
hosts and ports. It counts the requests in flight on each host at once
(``max_in_flight``), for the politeness tests. A route maps a path to a *behaviour*: a small callable
that writes the whole response through the :class:`Exchange` it is given::

    url = feed_server.route("/feed.xml", Serve(b"<rss/>", headers={"ETag": '"v1"'}))
    feed_server.route("/slow", Drip(b"<rss/>", interval_s=1.0))
    feed_server.route("/bomb", GzipBomb(inflated_bytes=10 * GiB))

New misbehaviour is a new behaviour class (any callable taking an ``Exchange``); nothing
else needs to change. Every request is logged (``feed_server.requests``) with its
headers and the status sent, so tests count hits and 304s and check request headers.

Streaming behaviours stop as soon as the client hangs up or the server stops, and
generate their bytes lazily: a 10 GiB gzip bomb holds about 64 KiB at a time.
(127.0.0.2 is on the loopback interface on Linux; macOS needs an alias for it.)
"""

from __future__ import annotations

import gzip
import itertools
import socket
import struct
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PRIMARY_HOST = "127.0.0.1"
ALT_HOST = "127.0.0.2"
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

FEED_TYPE = {"Content-Type": "application/rss+xml"}

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Loopback Radio</title>
<item><title>Episode 1</title><guid>ep-1</guid></item>
</channel></rss>
"""


@dataclass
class RecordedRequest:
    """One request as the server saw it (status is None until a response starts)."""

    method: str
    path: str
    listener: str  # "host:port" of the listener that accepted it
    headers: dict[str, str]  # lower-cased names
    status: int | None = None
    in_flight: int = 0  # requests on this listener's host in flight as it arrived, itself included


Behaviour = Callable[["Exchange"], None]


class FeedServer:
    """Two loopback listeners sharing one route table and one request log."""

    def __init__(self, extra_hosts: Iterable[str] = ()) -> None:
        self.routes: dict[str, Behaviour] = {}
        self.requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._listeners = [_Listener(self, host) for host in (PRIMARY_HOST, ALT_HOST, *extra_hosts)]
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.max_total_in_flight = 0  # over every host at once

    @property
    def port(self) -> int:
        return self._listeners[0].server_address[1]

    @property
    def alt_port(self) -> int:
        return self._listeners[1].server_address[1]

    @property
    def authorities(self) -> tuple[str, ...]:
        """Every listener as ``host:port`` (what ``Settings.allowed_hosts`` takes)."""
        return tuple(f"{listener.host}:{listener.server_address[1]}" for listener in self._listeners)

    def url(self, path: str, *, alt: bool = False, host: str | None = None) -> str:
        host = host or (ALT_HOST if alt else PRIMARY_HOST)
        listener = next(listener for listener in self._listeners if listener.host == host)
        return f"http://{host}:{listener.server_address[1]}{path}"

    def route(self, path: str, behaviour: Behaviour) -> str:
        """Serve ``behaviour`` at ``path`` (on both listeners); returns the primary URL."""
        self.routes[path] = behaviour
        return self.url(path)

    def redirect_chain(self, prefix: str, statuses: Iterable[int], final: Behaviour) -> str:
        """Redirects ``prefix/0`` -> ``prefix/1`` -> ... -> ``prefix/end``, served by ``final``.

        One hop per status, each with a relative Location; returns the first URL.
        """
        statuses = list(statuses)
        for hop, status in enumerate(statuses):
            target = f"{prefix}/{hop + 1}" if hop + 1 < len(statuses) else f"{prefix}/end"
            self.route(f"{prefix}/{hop}", Redirect(target, status=status))
        self.route(f"{prefix}/end", final)
        return self.url(f"{prefix}/0" if statuses else f"{prefix}/end")

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> None:
        for listener in self._listeners:
            threading.Thread(
                target=listener.serve_forever,
                kwargs={"poll_interval": 0.01},  # stop() waits up to one interval per listener
                name=f"feedserver-{listener.host}",
                daemon=True,
            ).start()

    def stop(self) -> None:
        self.stopping.set()  # streaming behaviours notice this and return
        for listener in self._listeners:
            listener.shutdown()
            listener.server_close()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _in_flight(self, host: str, change: int) -> int:
        """Count a request starting (+1) or answered (-1) on ``host``; the count after it."""
        with self._lock:
            now = self.in_flight[host] = self.in_flight.get(host, 0) + change
            self.max_in_flight[host] = max(self.max_in_flight.get(host, 0), now)
            self.max_total_in_flight = max(self.max_total_in_flight, sum(self.in_flight.values()))
            return now


@contextmanager
def running_feed_server(extra_hosts: Iterable[str] = ()) -> Iterator[FeedServer]:
    server = FeedServer(extra_hosts)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def unresponsive_port(host: str = PRIMARY_HOST) -> Iterator[int]:
    """A port on ``host`` where a TCP connect hangs (for connect-timeout tests).

    The listener never accepts and its backlog is pre-filled, so the kernel drops
    further SYNs and the client's connect waits until its own timeout.
    """
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind((host, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):  # a backlog of 0 still admits one or two connections
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((host, port))
            fillers.append(filler)
        yield port
    finally:
        for sock in (*fillers, listener):
            sock.close()


class _Listener(ThreadingHTTPServer):
    daemon_threads = True  # a drip or endless body must not hold up shutdown

    def __init__(self, feed_server: FeedServer, host: str) -> None:
        self.feed_server = feed_server
        self.host = host
        super().__init__((host, 0), Exchange)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up mid-exchange is what these tests provoke; anything else is a
        # bug in a behaviour, which socketserver should go on reporting.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Exchange(BaseHTTPRequestHandler):
    """One request/response; behaviours write their response through these helpers."""

    protocol_version = "HTTP/1.1"  # keep-alive, so the client's pool gets exercised
    timeout = 5  # seconds an idle keep-alive connection is kept open
    server: _Listener

    # --- used by behaviours -------------------------------------------------------

    @property
    def feed_server(self) -> FeedServer:
        return self.server.feed_server

    def send_head(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        """Status line and headers; a response without Content-Length closes the connection."""
        headers = headers or {}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if not any(name.lower() == "content-length" for name in headers):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def send_bytes(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        self.send_head(status, {**(headers or {}), "Content-Length": str(len(body))})
        self.write(body)

    def write(self, data: bytes) -> bool:
        """Write and flush; False (instead of an exception) once the client has gone."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return False
        return True

    def write_all(self, chunks: Iterable[bytes]) -> None:
        """Stream chunks until they run out, the client hangs up or the server stops."""
        for chunk in chunks:
            if self.feed_server.stopping.is_set() or not self.write(chunk):
                return

    def pause(self, seconds: float) -> bool:
        """Sleep, unless the server stops meanwhile (then False, and the connection closes)."""
        if self.feed_server.stopping.wait(seconds):
            self.close_connection = True
            return False
        return True

    # --- BaseHTTPRequestHandler plumbing ------------------------------------------

    _recorded: RecordedRequest | None = None  # the request do_GET is answering
    _answering = False  # counted in flight, not answered yet

    def do_GET(self) -> None:
        self._recorded = RecordedRequest(
            method=self.command,
            path=self.path,
            listener=f"{self.server.host}:{self.server.server_address[1]}",
            headers={name.lower(): value for name, value in self.headers.items()},
        )
        self._recorded.in_flight = self.feed_server._in_flight(self.server.host, +1)
        self._answering = True
        self.feed_server._record(self._recorded)
        behaviour = self.feed_server.routes.get(self.path.split("?")[0])
        try:
            if behaviour is None:
                self.send_bytes(404, b"no such route\n", {"Content-Type": "text/plain"})
            else:
                behaviour(self)
        finally:
            self._answered()
            self._recorded = None

    def send_response(self, code: int, message: str | None = None) -> None:
        if self._recorded is not None:
            self._recorded.status = code
        self._answered()
        super().send_response(code, message)

    def _answered(self) -> None:
        """A request stops counting as in flight when its answer starts: the client cannot
        have seen it yet, so a request it sends next never overlaps this one in the count."""
        if self._answering:
            self._answering = False
            self.feed_server._in_flight(self.server.host, -1)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest shows the request log on failure instead."""


# ===================================================================== behaviours


@dataclass
class Serve:
    """Fixed bytes with fixed headers, any status (404, 410, 429 + Retry-After, 500, ...)."""

    body: bytes = RSS
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=lambda: dict(FEED_TYPE))

    def __call__(self, exchange: Exchange) -> None:
        exchange.send_bytes(self.status, self.body, self.headers)


@dataclass
class Validated:
    """A feed with validators that honours conditional requests (RFC 9110 §13.1).

    If-None-Match wins over If-Modified-Since when both are sent (§13.2.2). The
    request log counts hits and 304s (``requests_to(path)``).
    """

    body: bytes = RSS
    etag: str | None = '"v1"'
    last_modified: str | None = "Tue, 01 Apr 2025 10:00:00 GMT"

    def __call__(self, exchange: Exchange) -> None:
        validators = {"ETag": self.etag, "Last-Modified": self.last_modified}
        headers = {name: value for name, value in validators.items() if value is not None}
        if self._is_not_modified(exchange):
            exchange.send_bytes(304, b"", headers)
        else:
            exchange.send_bytes(200, self.body, {**headers, **FEED_TYPE})

    def _is_not_modified(self, exchange: Exchange) -> bool:
        if_none_match = exchange.headers.get("If-None-Match")
        if if_none_match is not None:
            # Weak comparison (§8.8.3.2): W/ prefixes do not matter for If-None-Match.
            candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return self.etag is not None and ("*" in candidates or self.etag.removeprefix("W/") in candidates)
        if_modified_since = exchange.headers.get("If-Modified-Since")
        if if_modified_since is not None and self.last_modified is not None:
            return parsedate_to_datetime(self.last_modified) <= parsedate_to_datetime(if_modified_since)
        return False


@dataclass
class Ranged:
    """A file with byte ranges (RFC 9110 §14), as media players fetch it: one satisfiable
    ``Range: bytes=a-b`` (or ``a-``, or ``-n``) gets a 206, anything else the whole body."""

    body: bytes
    content_type: str = "application/octet-stream"

    def __call__(self, exchange: Exchange) -> None:
        size = len(self.body)
        headers = {"Content-Type": self.content_type, "Accept-Ranges": "bytes"}
        span = self._span(exchange.headers.get("Range", ""), size)
        if span is None:
            exchange.send_bytes(200, self.body, headers)
            return
        first, last = span
        exchange.send_bytes(206, self.body[first:last + 1], {**headers, "Content-Range": f"bytes {first}-{last}/{size}"})

    @staticmethod
    def _span(header: str, size: int) -> tuple[int, int] | None:
        unit, _, spec = header.partition("=")
        if unit.strip() != "bytes" or "," in spec or "-" not in spec or size == 0:
            return None
        start, _, end = (part.strip() for part in spec.partition("-"))
        try:
            if not start:  # the last n bytes
                return max(0, size - int(end)), size - 1
            first, last = int(start), min(int(end) if end else size - 1, size - 1)
        except ValueError:
            return None
        return (first, last) if first <= last else None


@dataclass
class Redirect:
    """A redirect to ``location`` (relative, or absolute to another port or host)."""

    location: str
    status: int = 301

    def __call__(self, exchange: Exchange) -> None:
        exchange.send_bytes(self.status, b"", {"Location": self.location})


@dataclass
class Delayed:
    """Wait ``delay_s`` before sending anything (not even headers), then behave as ``then``."""

    delay_s: float
    then: Behaviour = field(default_factory=Serve)

    def __call__(self, exchange: Exchange) -> None:
        if exchange.pause(self.delay_s):
            self.then(exchange)


@dataclass
class Drip:
    """Headers at once, then the body one byte every ``interval_s``."""

    body: bytes = RSS
    interval_s: float = 1.0

    def __call__(self, exchange: Exchange) -> None:
        exchange.send_head(200, {**FEED_TYPE, "Content-Length": str(len(self.body))})
        for offset in range(len(self.body)):
            if not (exchange.pause(self.interval_s) and exchange.write(self.body[offset : offset + 1])):
                return


@dataclass
class Endless:
    """A body that never ends (no Content-Length; ``chunk`` repeated for ever)."""

    chunk: bytes = b"<item><title>again</title></item>\n" * 2000

    def __call__(self, exchange: Exchange) -> None:
        exchange.send_head(200, FEED_TYPE)
        exchange.write_all(itertools.repeat(self.chunk))


@dataclass
class DeclaredHuge:
    """Declares a Content-Length of ``declared_bytes``, sends ``body``, then hangs up."""

    declared_bytes: int = 50 * GiB
    body: bytes = RSS

    def __call__(self, exchange: Exchange) -> None:
        exchange.send_head(200, {**FEED_TYPE, "Content-Length": str(self.declared_bytes)})
        exchange.write(self.body)
        exchange.close_connection = True


@dataclass
class Compressed:
    """``body`` sent with Content-Encoding gzip, or deflate (the zlib format)."""

    body: bytes = RSS
    encoding: str = "gzip"

    def __call__(self, exchange: Exchange) -> None:
        wire = gzip.compress(self.body) if self.encoding == "gzip" else zlib.compress(self.body)
        exchange.send_bytes(200, wire, {**FEED_TYPE, "Content-Encoding": self.encoding})


@dataclass
class GzipBomb:
    """A gzip body of ``inflated_bytes`` zeros (whole MiB, ~1000:1 on the wire), made as sent.

    A MiB deflated with a full flush resets the compressor's history, so every MiB after
    the first compresses to the very same bytes: the stream is the gzip header and first
    MiB, that block repeated, then an empty final block and the trailer (RFC 1952). The
    server only ever holds one block, and the CRC is worked out only if a client really
    reads to the end.
    """

    inflated_bytes: int = 10 * GiB

    def __call__(self, exchange: Exchange) -> None:
        exchange.send_head(200, {**FEED_TYPE, "Content-Encoding": "gzip"})
        exchange.write_all(self._stream())

    def _stream(self) -> Iterator[bytes]:
        zeros = bytes(MiB)
        mebibytes = max(1, self.inflated_bytes // MiB)
        compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip wrapper
        yield compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        blocks_left = mebibytes - 1
        while blocks_left > 0:
            batch = min(blocks_left, 64)  # ~64 KiB per write rather than 1 KiB
            yield block * batch
            blocks_left -= batch
        crc = 0
        for _ in range(mebibytes):
            crc = zlib.crc32(zeros, crc)
        final_empty_block = b"\x03\x00"
        yield final_empty_block + struct.pack("<II", crc, (mebibytes * MiB) & 0xFFFFFFFF)


@dataclass
class Flapping:
    """Each request gets the next behaviour of ``cycle`` in turn (500, 200, 500, ...).

    The counter is per route instance and thread-safe, so a test that checks a feed
    three times sees exactly ``cycle[0]``, ``cycle[1]``, ``cycle[2 % len(cycle)]``.
    """

    cycle: tuple[Behaviour, ...]
    _served: itertools.count = field(default_factory=itertools.count, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, exchange: Exchange) -> None:
        with self._lock:
            turn = next(self._served)
        self.cycle[turn % len(self.cycle)](exchange)
