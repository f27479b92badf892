"""The fetcher over real loopback sockets (tests/support/feedserver.py), plus its pure helpers.

Every server here is one the test starts on 127.0.0.1 / 127.0.0.2; the SSRF tests use a
fake resolver and make any real connect attempt fail the test.
"""

from __future__ import annotations

import gzip
import ipaddress
import socket
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

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
from earshot.ingest.fetcher import (
    Resolver,
    blocked_reason,
    fetch_feed,
    make_client,
    parse_cache_max_age,
    parse_retry_after,
)
from earshot.settings import Settings
from tests.support.feedserver import (
    FEED_TYPE,
    RSS,
    Compressed,
    DeclaredHuge,
    Delayed,
    Drip,
    Endless,
    FeedServer,
    GiB,
    GzipBomb,
    MiB,
    Redirect,
    Serve,
    Validated,
    unresponsive_port,
)

MakeSettings = Callable[..., Settings]
LAST_MODIFIED = "Tue, 01 Apr 2025 10:00:00 GMT"


@pytest.fixture
def settings(feed_server: FeedServer) -> MakeSettings:
    """Settings that allow exactly the feed server's two listeners, with test-sized limits."""

    def make(**changes: object) -> Settings:
        defaults: dict[str, object] = {
            "allowed_hosts": feed_server.authorities,
            "connect_timeout_s": 2.0,
            "total_timeout_s": 5.0,
        }
        return Settings(**{**defaults, **changes})

    return make


def resolver_for(table: dict[str, list[str]]) -> Resolver:
    """A fake ``getaddrinfo`` answering from ``table`` (host -> addresses)."""

    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in table[host]
        ]

    return resolve


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a TCP connection fails the test (the guard must stop it first)."""

    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail(f"a socket connect was attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ===================================================================== answers


def test_200_returns_body_validators_and_metadata(feed_server: FeedServer, settings: MakeSettings) -> None:
    headers = {
        "Content-Type": "application/rss+xml; charset=utf-8",
        "ETag": '"abc"',
        "Last-Modified": LAST_MODIFIED,
        "Cache-Control": "public, max-age=900",
    }
    url = feed_server.route("/feed.xml", Serve(RSS, headers=headers))

    result = fetch_feed(url, settings=settings())

    assert result.status == 200
    assert result.body == RSS
    assert result.url == url
    assert result.etag == '"abc"'
    assert result.last_modified == LAST_MODIFIED
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.cache_max_age_s == 900
    assert result.permanent_redirect_url is None
    assert 0 < result.elapsed_s < 5


def test_request_headers_name_earshot_and_offer_only_gzip_and_deflate(
    feed_server: FeedServer, settings: MakeSettings
) -> None:
    url = feed_server.route("/feed.xml", Serve())
    fetch_feed(url, settings=settings())

    (request,) = feed_server.requests_to("/feed.xml")
    assert request.headers["user-agent"] == Settings().user_agent
    assert "Earshot" in request.headers["user-agent"] and "https://" in request.headers["user-agent"]
    assert request.headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in request.headers and "if-modified-since" not in request.headers


@pytest.mark.parametrize(
    ("validators", "sent_header"),
    [
        pytest.param({"etag": '"v1"', "last_modified": None}, "if-none-match", id="etag"),
        pytest.param({"etag": None, "last_modified": LAST_MODIFIED}, "if-modified-since", id="last-modified"),
    ],
)
def test_304_when_the_stored_validator_still_matches(
    feed_server: FeedServer, settings: MakeSettings, validators: dict[str, str | None], sent_header: str
) -> None:
    # Given a feed that honours one kind of validator, fetched once to learn it
    url = feed_server.route("/feed.xml", Validated(**validators))
    first = fetch_feed(url, settings=settings())
    assert first.status == 200
    # When it is fetched again with what the first answer said
    second = fetch_feed(url, etag=first.etag, last_modified=first.last_modified, settings=settings())
    # Then the server answers 304 and there is no body to parse
    assert second.is_not_modified and second.body is None
    assert (second.etag, second.last_modified) == (first.etag, first.last_modified)
    requests = feed_server.requests_to("/feed.xml")
    assert [r.status for r in requests] == [200, 304]
    assert sent_header in requests[1].headers


def test_304_without_validators_keeps_the_stored_ones(
    feed_server: FeedServer, settings: MakeSettings
) -> None:
    url = feed_server.route("/feed.xml", Serve(b"", status=304, headers={}))
    result = fetch_feed(url, etag='"v7"', last_modified=LAST_MODIFIED, settings=settings())
    assert result.status == 304
    assert (result.etag, result.last_modified) == ('"v7"', LAST_MODIFIED)


@pytest.mark.parametrize(
    ("statuses", "is_permanent"),
    [
        pytest.param([301], True, id="301"),
        pytest.param([308], True, id="308"),
        pytest.param([301, 308, 301], True, id="301-308-301"),
        pytest.param([302], False, id="302"),
        pytest.param([307], False, id="307"),
        pytest.param([303], False, id="303"),
        pytest.param([301, 302], False, id="301-then-302"),
    ],
)
def test_permanent_redirect_url_only_when_every_hop_was_permanent(
    feed_server: FeedServer, settings: MakeSettings, statuses: list[int], is_permanent: bool
) -> None:
    url = feed_server.redirect_chain("/moved", statuses, final=Serve())
    result = fetch_feed(url, settings=settings())
    final_url = feed_server.url("/moved/end")
    assert (result.status, result.url, result.body) == (200, final_url, RSS)
    assert result.permanent_redirect_url == (final_url if is_permanent else None)


def test_redirect_to_another_host_and_port(feed_server: FeedServer, settings: MakeSettings) -> None:
    feed_server.route("/new.xml", Serve())
    url = feed_server.route("/old.xml", Redirect(feed_server.url("/new.xml", alt=True), status=308))

    result = fetch_feed(url, settings=settings())

    assert result.permanent_redirect_url == feed_server.url("/new.xml", alt=True)
    assert [r.listener for r in feed_server.requests] == list(feed_server.authorities)


def test_redirects_up_to_the_limit_are_followed(feed_server: FeedServer, settings: MakeSettings) -> None:
    url = feed_server.redirect_chain("/chain", [302] * 3, final=Serve())
    assert fetch_feed(url, settings=settings(max_redirects=3)).status == 200


def test_one_redirect_over_the_limit_is_refused(feed_server: FeedServer, settings: MakeSettings) -> None:
    url = feed_server.redirect_chain("/chain", [302] * 4, final=Serve())
    with pytest.raises(TooManyRedirects, match="more than 3 redirects"):
        fetch_feed(url, settings=settings(max_redirects=3))
    assert len(feed_server.requests) == 4  # the fourth redirect is not followed


def test_redirect_loop_is_refused_at_once(feed_server: FeedServer, settings: MakeSettings) -> None:
    feed_server.route("/a", Redirect("/b", status=302))
    url = feed_server.route("/b", Redirect(feed_server.url("/a"), status=302))
    with pytest.raises(TooManyRedirects, match="loop"):
        fetch_feed(url, settings=settings(max_redirects=20))
    assert len(feed_server.requests) == 2


@pytest.mark.parametrize(
    "location", ["ftp://127.0.0.1/feed.xml", "file:///etc/passwd", "gopher://127.0.0.1:70/"]
)
def test_redirect_to_a_non_http_scheme_is_refused(
    feed_server: FeedServer, settings: MakeSettings, location: str
) -> None:
    url = feed_server.route("/feed.xml", Redirect(location, status=301))
    with pytest.raises(InvalidUrl):
        fetch_feed(url, settings=settings())


def test_410_means_the_feed_is_gone(feed_server: FeedServer, settings: MakeSettings) -> None:
    url = feed_server.route("/feed.xml", Serve(b"gone", status=410))
    with pytest.raises(FeedGone) as caught:
        fetch_feed(url, settings=settings())
    assert caught.value.kind == "gone"


@pytest.mark.parametrize("status", [404, 500, 502, 300])
def test_other_error_statuses_raise_http_status_error(
    feed_server: FeedServer, settings: MakeSettings, status: int
) -> None:
    url = feed_server.route("/feed.xml", Serve(b"nope", status=status))
    with pytest.raises(HttpStatusError) as caught:
        fetch_feed(url, settings=settings())
    error = caught.value
    assert (error.status, error.kind, error.retry_after_s) == (status, f"http_{status}", None)


@pytest.mark.parametrize(
    ("status", "retry_after", "expected_s"),
    [
        pytest.param(429, "120", 120.0, id="429-delta-seconds"),
        pytest.param(503, "3600", 3600.0, id="503-delta-seconds"),
        pytest.param(429, "http-date:+300", 300.0, id="429-http-date"),
        pytest.param(503, "http-date:+90", 90.0, id="503-http-date"),
        pytest.param(503, "soon", None, id="503-unparseable"),
    ],
)
def test_429_and_503_carry_retry_after(
    feed_server: FeedServer, settings: MakeSettings, status: int, retry_after: str, expected_s: float | None
) -> None:
    if retry_after.startswith("http-date:+"):
        when = datetime.now(UTC) + timedelta(seconds=int(retry_after.removeprefix("http-date:+")))
        retry_after = format_datetime(when, usegmt=True)
    url = feed_server.route("/feed.xml", Serve(b"busy", status=status, headers={"Retry-After": retry_after}))

    with pytest.raises(HttpStatusError) as caught:
        fetch_feed(url, settings=settings())

    assert caught.value.status == status
    if expected_s is None:
        assert caught.value.retry_after_s is None
    else:
        assert caught.value.retry_after_s == pytest.approx(expected_s, abs=2)


# ===================================================================== limits


def test_connect_timeout(settings: MakeSettings) -> None:
    with unresponsive_port() as port:
        started = time.monotonic()
        with pytest.raises(FetchTimeout):
            fetch_feed(
                f"http://127.0.0.1:{port}/feed.xml",
                settings=settings(connect_timeout_s=0.3, allowed_hosts=(f"127.0.0.1:{port}",)),
            )
    assert time.monotonic() - started < 1.5


def test_waiting_for_headers_ends_at_the_total_deadline(
    feed_server: FeedServer, settings: MakeSettings
) -> None:
    url = feed_server.route("/feed.xml", Delayed(30.0, Serve()))
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch_feed(url, settings=settings(total_timeout_s=0.5))
    assert time.monotonic() - started < 15, "stopped at the deadline, not when the server answered"


def test_a_drip_feed_ends_at_the_total_deadline(feed_server: FeedServer, settings: MakeSettings) -> None:
    # Given a server that sends one byte a second: no single read ever times out
    url = feed_server.route("/feed.xml", Drip(RSS, interval_s=1.0))
    started = time.monotonic()
    # When the total deadline is 1.5 s, Then the fetch stops there
    with pytest.raises(FetchTimeout):
        fetch_feed(url, settings=settings(total_timeout_s=1.5))
    assert 1.4 < time.monotonic() - started < 15, "stopped at the deadline, not at the end of the body"


def test_the_total_deadline_spans_redirects(feed_server: FeedServer, settings: MakeSettings) -> None:
    # Each hop answers in 0.3 s, well within any per-request timeout; five of them are not.
    for hop in range(5):
        feed_server.route(f"/slow/{hop}", Delayed(0.3, Redirect(f"/slow/{hop + 1}", status=302)))
    feed_server.route("/slow/5", Serve())
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch_feed(feed_server.url("/slow/0"), settings=settings(total_timeout_s=1.0))
    # Raising at all proves it: each hop is fast, all five together finish after 1.5 s.
    assert time.monotonic() - started < 15


def test_declared_content_length_over_the_cap_is_refused_before_reading(
    feed_server: FeedServer, settings: MakeSettings
) -> None:
    url = feed_server.route("/feed.xml", DeclaredHuge(declared_bytes=50 * GiB))
    with pytest.raises(BodyTooLarge, match="Content-Length"):
        fetch_feed(url, settings=settings(max_body_bytes=1 * MiB))


def test_an_endless_body_stops_at_the_cap(feed_server: FeedServer, settings: MakeSettings) -> None:
    url = feed_server.route("/feed.xml", Endless())
    with pytest.raises(BodyTooLarge):
        fetch_feed(url, settings=settings(max_body_bytes=1 * MiB))


def test_a_body_exactly_at_the_cap_is_accepted(feed_server: FeedServer, settings: MakeSettings) -> None:
    url = feed_server.route("/feed.xml", Compressed(b"x" * 1000, encoding="gzip"))
    assert fetch_feed(url, settings=settings(max_body_bytes=1000)).body == b"x" * 1000


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bodies_are_decoded(
    feed_server: FeedServer, settings: MakeSettings, encoding: str
) -> None:
    url = feed_server.route("/feed.xml", Compressed(RSS, encoding=encoding))
    assert fetch_feed(url, settings=settings()).body == RSS


def test_a_gzip_bomb_stops_at_the_cap_with_memory_bounded(
    feed_server: FeedServer, settings: MakeSettings
) -> None:
    # Given 1 GiB of zeros that arrives as about 1 MiB of gzip
    url = feed_server.route("/feed.xml", GzipBomb(inflated_bytes=1 * GiB))
    cap_bytes = 4 * MiB
    tracemalloc.start()
    try:
        # When fetched with a 4 MiB cap, Then it stops at the cap (counting inflated bytes)
        with pytest.raises(BodyTooLarge, match="after decoding"):
            fetch_feed(url, settings=settings(max_body_bytes=cap_bytes))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # And memory stayed near the cap, nowhere near the bomb
    assert peak_bytes < 3 * cap_bytes, f"peak {peak_bytes / MiB:.1f} MiB"


def test_a_big_gzip_body_within_the_cap_inflates_completely(
    feed_server: FeedServer, settings: MakeSettings
) -> None:
    # Many inflate steps per wire chunk, and the stream's end (trailer, CRC) checked.
    url = feed_server.route("/feed.xml", GzipBomb(inflated_bytes=8 * MiB))
    assert fetch_feed(url, settings=settings(max_body_bytes=8 * MiB)).body == bytes(8 * MiB)


def test_a_truncated_gzip_body_is_a_decode_error(feed_server: FeedServer, settings: MakeSettings) -> None:
    truncated = gzip.compress(RSS)[:-12]
    headers = {"Content-Encoding": "gzip"}
    url = feed_server.route("/feed.xml", Serve(truncated, headers=headers))
    with pytest.raises(DecodeFailed):
        fetch_feed(url, settings=settings())


def test_an_encoding_that_was_not_offered_is_a_decode_error(
    feed_server: FeedServer, settings: MakeSettings
) -> None:
    url = feed_server.route("/feed.xml", Serve(b"\x8b\x00", headers={"Content-Encoding": "br"}))
    with pytest.raises(DecodeFailed, match="br"):
        fetch_feed(url, settings=settings())


def test_connection_refused_is_a_connect_error(settings: MakeSettings) -> None:
    with socket.socket() as probe:  # bind, then close: nothing listens on that port now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectFailed):
        fetch_feed(f"http://127.0.0.1:{port}/", settings=settings(allowed_hosts=(f"127.0.0.1:{port}",)))


def test_a_dns_failure_is_a_connect_error(settings: MakeSettings) -> None:
    with pytest.raises(ConnectFailed, match="DNS"):
        fetch_feed("http://nowhere.example/feed.xml", settings=settings(), resolver=resolver_for({}))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://feeds.example/feed.xml",
        "file:///etc/passwd",
        "feeds.example/feed.xml",
        "http://user:secret@feeds.example/feed.xml",
        "http:///feed.xml",
    ],
)
def test_urls_that_cannot_be_fetched(settings: MakeSettings, no_connect: None, url: str) -> None:
    with pytest.raises(InvalidUrl):
        fetch_feed(url, settings=settings(), resolver=resolver_for({"feeds.example": ["93.184.215.14"]}))


def test_one_shared_client_serves_many_threads(feed_server: FeedServer, settings: MakeSettings) -> None:
    url = feed_server.route("/feed.xml", Delayed(0.05, Serve()))
    config = settings(worker_threads=4)
    with make_client(config) as client, ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: fetch_feed(url, settings=config, client=client), range(24)))
    assert {r.status for r in results} == {200}
    assert len(feed_server.requests_to("/feed.xml")) == 24


# ===================================================================== SSRF guard


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1", "fd00:ec2::254", "127.0.0.1", "100.64.1.1", "::1"],
)
def test_a_name_resolving_to_an_internal_address_is_blocked_before_connecting(
    settings: MakeSettings, no_connect: None, address: str
) -> None:
    resolver = resolver_for({"feeds.example": [address]})
    with pytest.raises(BlockedAddress, match=address):
        fetch_feed("https://feeds.example/feed.xml", settings=settings(), resolver=resolver)


def test_every_resolved_address_must_pass(settings: MakeSettings, no_connect: None) -> None:
    # A public answer alongside a private one must not let the private one be tried.
    resolver = resolver_for({"feeds.example": ["93.184.215.14", "10.0.0.1"]})
    with pytest.raises(BlockedAddress, match="10.0.0.1"):
        fetch_feed("http://feeds.example/feed.xml", settings=settings(), resolver=resolver)


def test_the_socket_connects_to_the_one_resolved_address_with_the_name_as_host(
    feed_server: FeedServer, settings: MakeSettings
) -> None:
    # The guard resolves once and connects to that answer: a second lookup (which DNS
    # rebinding would answer differently) never happens.
    feed_server.route("/feed.xml", Serve())
    authority = f"feeds.example:{feed_server.port}"
    lookups: list[str] = []

    def resolver(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        lookups.append(host)
        return resolver_for({"feeds.example": ["127.0.0.1"]})(host, port)

    url = f"http://{authority}/feed.xml"
    result = fetch_feed(url, settings=settings(allowed_hosts=(authority,)), resolver=resolver)

    assert result.status == 200
    assert lookups == ["feeds.example"]
    (request,) = feed_server.requests_to("/feed.xml")
    assert request.headers["host"] == authority


def test_a_literal_loopback_url_is_blocked_without_the_allowlist(
    feed_server: FeedServer, settings: MakeSettings
) -> None:
    url = feed_server.route("/feed.xml", Serve())
    with pytest.raises(BlockedAddress, match="loopback"):
        fetch_feed(url, settings=settings(allowed_hosts=()))
    assert feed_server.requests == []


def test_the_allowlist_names_an_exact_port(feed_server: FeedServer, settings: MakeSettings) -> None:
    url = feed_server.route("/feed.xml", Serve())
    other_port = feed_server.alt_port
    with pytest.raises(BlockedAddress):
        fetch_feed(url, settings=settings(allowed_hosts=(f"127.0.0.1:{other_port}",)))
    assert feed_server.requests == []


def test_a_redirect_to_a_host_off_the_allowlist_is_blocked(
    feed_server: FeedServer, settings: MakeSettings
) -> None:
    # Given 127.0.0.1:<port> is allowed but 127.0.0.2:<alt port> is not
    feed_server.route("/internal.xml", Serve())
    url = feed_server.route("/feed.xml", Redirect(feed_server.url("/internal.xml", alt=True), status=302))
    # When the allowed server redirects there, Then the hop is refused before connecting
    with pytest.raises(BlockedAddress, match="127.0.0.2"):
        fetch_feed(url, settings=settings(allowed_hosts=(feed_server.authorities[0],)))
    assert [r.path for r in feed_server.requests] == ["/feed.xml"]


def test_allow_private_addresses_lets_everything_through(
    feed_server: FeedServer, settings: MakeSettings
) -> None:
    url = feed_server.route("/feed.xml", Serve())
    assert fetch_feed(url, settings=settings(allowed_hosts=(), allow_private_addresses=True)).status == 200


# ===================================================================== pure helpers

NOW = datetime(2025, 4, 1, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected_s"),
    [
        pytest.param("120", 120.0, id="delta-seconds"),
        pytest.param(" 0 ", 0.0, id="zero-with-spaces"),
        pytest.param("99999999999999999999999", float(2**31), id="huge-delta-clamped"),
        pytest.param("Tue, 01 Apr 2025 10:02:00 GMT", 120.0, id="imf-fixdate"),
        pytest.param("Tuesday, 01-Apr-25 10:02:00 GMT", 120.0, id="rfc850-date"),
        pytest.param("Tue Apr  1 10:02:00 2025", 120.0, id="asctime-date"),
        pytest.param("Tue, 01 Apr 2025 09:00:00 GMT", 0.0, id="date-in-the-past-means-now"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="fraction"),
        pytest.param("²", None, id="non-ascii-digit"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(value: str | None, expected_s: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected_s


@pytest.mark.parametrize(
    ("value", "expected_s"),
    [
        pytest.param("max-age=3600", 3600, id="plain"),
        pytest.param("public, max-age=600, must-revalidate", 600, id="among-others"),
        pytest.param("MAX-AGE=60", 60, id="case-insensitive"),
        pytest.param('max-age="300"', 300, id="quoted"),
        pytest.param("max-age=0", 0, id="zero"),
        pytest.param("max-age=60, max-age=120", 60, id="first-wins"),
        pytest.param("s-maxage=60", None, id="s-maxage-is-not-max-age"),
        pytest.param("max-age=-1", None, id="negative"),
        pytest.param("max-age=soon", None, id="garbage"),
        pytest.param("max-age", None, id="no-argument"),
        pytest.param("no-cache", None, id="absent-directive"),
        pytest.param("max-age=99999999999999", 2**31, id="huge-clamped"),
        pytest.param(None, None, id="no-header"),
    ],
)
def test_parse_cache_max_age(value: str | None, expected_s: int | None) -> None:
    assert parse_cache_max_age(value) == expected_s


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        pytest.param("93.184.215.14", None, id="public-v4"),
        pytest.param("2606:4700:4700::1111", None, id="public-v6"),
        pytest.param("::ffff:8.8.8.8", None, id="mapped-public-v4"),
        pytest.param("64:ff9b::808:808", None, id="nat64-public-v4"),
        pytest.param("127.0.0.1", "loopback", id="loopback-v4"),
        pytest.param("127.0.0.2", "loopback", id="loopback-v4-other"),
        pytest.param("::1", "loopback", id="loopback-v6"),
        pytest.param("10.0.0.1", "private", id="rfc1918-10"),
        pytest.param("172.16.5.4", "private", id="rfc1918-172"),
        pytest.param("192.168.1.1", "private", id="rfc1918-192"),
        pytest.param("fd12:3456::1", "private", id="ula"),
        pytest.param("169.254.169.254", "cloud metadata", id="aws-metadata-v4"),
        pytest.param("fd00:ec2::254", "cloud metadata", id="aws-metadata-v6"),
        pytest.param("169.254.10.1", "link-local", id="link-local-v4"),
        pytest.param("fe80::1", "link-local", id="link-local-v6"),
        pytest.param("100.64.0.1", "shared address space", id="cgnat"),
        pytest.param("224.0.0.1", "multicast", id="multicast-v4"),
        pytest.param("ff02::1", "multicast", id="multicast-v6"),
        pytest.param("240.0.0.1", "reserved", id="reserved-v4"),
        pytest.param("0.0.0.0", "unspecified", id="unspecified-v4"),
        pytest.param("::", "unspecified", id="unspecified-v6"),
        pytest.param("192.0.2.1", "private", id="documentation-v4"),
        pytest.param("::ffff:10.0.0.1", "private", id="mapped-private"),
        pytest.param("::ffff:127.0.0.1", "loopback", id="mapped-loopback"),
        pytest.param("::ffff:169.254.169.254", "cloud metadata", id="mapped-metadata"),
        pytest.param("64:ff9b::a00:1", "private", id="nat64-private"),
    ],
)
def test_blocked_reason(address: str, reason: str | None) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


def test_body_cut_short_is_a_protocol_error(feed_server: FeedServer, settings: MakeSettings) -> None:
    def cut_short(exchange) -> None:  # promises 1,000 bytes, sends 10, hangs up
        exchange.send_head(200, {"Content-Length": "1000", **FEED_TYPE})
        exchange.write(b"<rss><chan")
        exchange.close_connection = True

    url = feed_server.route("/cut.xml", cut_short)
    with pytest.raises(ProtocolFailed):
        fetch_feed(url, settings=settings())
