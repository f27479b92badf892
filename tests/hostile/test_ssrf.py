"""SSRF through the real worker: feed URLs and redirect hops that lead inside are refused
with ``blocked_address`` before any connection, the address actually connected to is the
one checked (DNS rebinding), and loopback is reachable only through an explicit allowlist
that the deployed stack never sets.

The stack here allows exactly ``127.0.0.1:<feed server port>``; the feed server's second
listener (127.0.0.2:<alt port>) is a real socket that must never be reached. Names are
answered by a fake resolver; the tripwire (conftest) refuses any non-loopback connect.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import redirect_stdout
from datetime import timedelta

import pytest

from earshot.settings import Settings
from earshot_local.cli import main as earshot_cli
from earshot_local.settings import domain_settings
from tests.hostile.conftest import (
    Tripwire,
    add_feed,
    deliver,
    episodes,
    fake_resolver,
    make_stack,
    stored,
    use_resolver,
)
from tests.support.aws_stack import FUNCTIONS_DIR, TEMPLATE_PATH, EmbeddedBackend, load_template
from tests.support.feedserver import RSS, FeedServer, Redirect, Serve

PUBLIC = "93.184.215.14"  # globally routable; only ever "connected" to through the tripwire's refusal
DNS = {
    "internal.example": ["10.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "v6meta.example": ["fd00:ec2::254"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "nat64.example": ["64:ff9b::a9fe:a9fe"],
    "mixed.example": [PUBLIC, "10.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "cgnat.example": ["100.64.0.1"],
}
MIN_BACKOFF = timedelta(seconds=3600 * 0.8)

BLOCKED_URLS = {
    # literal addresses, every class
    "loopback-v4": "http://127.0.0.1/feed",
    "loopback-v4-other-host": "http://127.9.9.9:8080/feed",
    "loopback-v6": "http://[::1]/feed",
    "unspecified": "http://0.0.0.0/feed",
    "private-10": "http://10.0.0.1/feed",
    "private-172": "http://172.16.5.4/feed",
    "private-192": "https://192.168.1.1/feed",
    "shared-100.64": "http://100.64.0.1/feed",
    "link-local-v4": "http://169.254.10.10/feed",
    "link-local-v6": "http://[fe80::1]/feed",
    "metadata-v4": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "metadata-v6": "http://[fd00:ec2::254]/latest/meta-data/",
    "ula-v6": "http://[fd12:3456::1]/feed",
    "multicast-v4": "http://224.0.0.1/feed",
    "multicast-v6": "http://[ff02::1]/feed",
    "reserved-240": "http://240.0.0.1/feed",
    "broadcast": "http://255.255.255.255/feed",
    "ipv4-mapped-metadata": "http://[::ffff:169.254.169.254]/feed",
    "ipv4-mapped-loopback-hex": "http://[::ffff:7f00:1]/feed",
    "nat64-metadata": "http://[64:ff9b::a9fe:a9fe]/feed",
    # numeric spellings that inet_aton (and so getaddrinfo) reads as addresses
    "decimal-loopback": "http://2130706433/feed",
    "short-loopback": "http://127.1/feed",
    "hex-loopback": "http://0x7f000001/feed",
    # names that resolve inside
    "name-private": "http://internal.example/feed",
    "name-metadata": "http://metadata.example/latest/meta-data/",
    "name-metadata-v6": "http://v6meta.example/feed",
    "name-ipv4-mapped": "http://mapped.example/feed",
    "name-nat64": "http://nat64.example/feed",
    "name-one-bad-answer-of-two": "http://mixed.example/feed",
    "name-localhost": "http://localhost/feed",
    "name-wildcard-dns": "http://127.0.0.1.nip.io/feed",
    "name-cgnat": "http://cgnat.example/feed",
}

NOT_HTTP_URLS = {
    "file-url": "file:///etc/passwd",
    "plain-path": "/etc/passwd",
    "gopher": "gopher://127.0.0.1:6379/_INFO",
    "ftp": "ftp://10.0.0.1/feed.xml",
    "credentials": "http://user:pw@internal.example/feed",
}


@pytest.fixture(scope="module")
def stack(server: FeedServer) -> Iterator[EmbeddedBackend]:
    with make_stack(server, primary_only=True) as backend:
        yield backend


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []
    use_resolver(monkeypatch, fake_resolver(DNS, asked))
    return asked


def healthy(server: FeedServer, name: str):  # noqa: ANN201
    return add_feed(server.route(f"/healthy/{name}.xml", Serve(RSS)))


def only_the_allowed_server_was_connected(tripwire: Tripwire, server: FeedServer) -> None:
    assert {attempt for attempt in tripwire.attempts} <= {("127.0.0.1", server.port)}, tripwire.attempts


# ------------------------------------------------------------------ feed URLs


@pytest.mark.parametrize("url", list(BLOCKED_URLS.values()), ids=list(BLOCKED_URLS))
def test_feed_url_leading_inside_is_blocked_before_connecting(
    stack: EmbeddedBackend, server: FeedServer, tripwire: Tripwire, lookups: list[str], url: str
) -> None:
    # Given a feed whose URL leads inside, in one batch with a healthy feed
    blocked, ok = add_feed(url), healthy(server, re.sub(r"\W", "-", url))
    # When the worker runs the batch
    delivery = deliver(stack, [blocked, ok])
    # Then the feed records blocked_address and backs off; nothing but the allowed server was dialled
    assert delivery.response == {"batchItemFailures": []}
    state = stored(blocked.feed_id)
    assert (state.status, state.last_error_kind) == ("error", "blocked_address"), state.last_error_message
    assert state.next_check_at >= state.last_checked_at + MIN_BACKOFF
    assert stored(ok.feed_id).status == "active" and episodes(ok.feed_id)
    only_the_allowed_server_was_connected(tripwire, server)


@pytest.mark.parametrize("url", list(NOT_HTTP_URLS.values()), ids=list(NOT_HTTP_URLS))
def test_non_http_feed_urls_are_invalid_and_never_read(
    stack: EmbeddedBackend, server: FeedServer, tripwire: Tripwire, lookups: list[str], url: str
) -> None:
    from datetime import UTC, datetime

    from earshot import runtime
    from earshot.errors import InvalidUrl
    from earshot.ingest.refresh import new_feed
    from earshot.models import FeedState
    from earshot.store import feed_id_for

    # The door of stored feed URLs refuses them (file: URLs only name the local CLI's own files)...
    if not url.startswith("file:"):
        with pytest.raises(InvalidUrl):
            new_feed(url, datetime.now(UTC))
    # ...and the worker refuses to read one stored before that door existed
    now = datetime.now(UTC)
    feed = FeedState(feed_id=feed_id_for(url), url=url, created_at=now, next_check_at=now)
    runtime.store().add_feed(feed)
    assert deliver(stack, [feed]).response == {"batchItemFailures": []}
    state = stored(feed.feed_id)
    assert (state.status, state.last_error_kind) == ("error", "invalid_url")
    assert episodes(feed.feed_id) == {} and tripwire.attempts == [] and lookups == []


# ------------------------------------------------------------------ redirect hops


REDIRECT_TARGETS = {
    "metadata-literal": "http://169.254.169.254/latest/meta-data/",
    "metadata-v6-literal": "http://[fd00:ec2::254]/latest/meta-data/",
    "name-metadata": "http://metadata.example/latest/meta-data/",
    "name-private": "http://internal.example:8080/admin",
    "ipv4-mapped": "http://[::ffff:10.0.0.1]/",
    "decimal-metadata": "http://2852039166/latest/meta-data/",
    "real-socket-127.0.0.2": "{alt}",
    "real-socket-same-host-other-port": "{other_port}",
}


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("target", list(REDIRECT_TARGETS.values()), ids=list(REDIRECT_TARGETS))
def test_redirect_hop_leading_inside_is_blocked_before_connecting(
    stack: EmbeddedBackend, server: FeedServer, tripwire: Tripwire, lookups: list[str], target: str, status: int
) -> None:
    # Given the allowed server redirects to an internal target (two of them real listeners)
    server.route("/inside.xml", Serve(b"<rss><channel><title>SECRET</title></channel></rss>"))
    target = target.format(alt=server.url("/inside.xml", alt=True),
                           other_port=f"http://127.0.0.1:{server.alt_port}/inside.xml")
    start = f"/redirect/{status}/{abs(hash(target))}"
    feed = add_feed(server.route(start, Redirect(target, status=status)))
    # When the worker follows it
    assert deliver(stack, [feed]).response == {"batchItemFailures": []}
    # Then the hop is refused: the only request made was the first hop
    state = stored(feed.feed_id)
    assert state.last_error_kind == "blocked_address", state.last_error_message
    assert state.url == feed.url, "a blocked 301/308 target is never persisted as the feed's new URL"
    assert server.requests_to("/inside.xml") == []
    only_the_allowed_server_was_connected(tripwire, server)


# ------------------------------------------------------------------ DNS rebinding


def test_dns_rebinding_is_caught_at_connect(
    stack: EmbeddedBackend, server: FeedServer, tripwire: Tripwire, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a name that answers a public address first and the feed server's loopback
    # address on every later lookup (the classic check-then-connect rebinding)
    answers = iter([[PUBLIC]])
    asked: list[str] = []
    use_resolver(monkeypatch, fake_resolver({"rebind.example": lambda: next(answers, ["127.0.0.1"])}, asked))
    tripwire.expect_refused(PUBLIC)  # the public answer is dialled, refused locally, nothing sent
    server.route("/rebind.xml", Serve(b"<rss><channel><title>internal</title></channel></rss>"))
    feed = add_feed(f"http://rebind.example:{server.port}/rebind.xml")

    # When the worker checks it twice
    assert deliver(stack, [feed]).response == {"batchItemFailures": []}
    first = stored(feed.feed_id)
    assert deliver(stack, [first]).response == {"batchItemFailures": []}
    second = stored(feed.feed_id)

    # Then the first check connected only to the address it had checked (one lookup, no
    # second resolution that could rebind), and the second check, now answered with
    # loopback, was refused before connecting: the internal server never saw a request
    assert first.last_error_kind == "connect_error"
    assert second.last_error_kind == "blocked_address" and second.error_count == 2
    assert asked == ["rebind.example", "rebind.example"], "one lookup per connection, none in between"
    assert tripwire.non_loopback_attempts() == [(PUBLIC, server.port)]
    assert server.requests_to("/rebind.xml") == []


# ------------------------------------------------------------------ the allowlist


def test_allowlist_names_exact_host_and_port(
    stack: EmbeddedBackend, server: FeedServer, tripwire: Tripwire, lookups: list[str]
) -> None:
    # 127.0.0.1:<port> is allowed; the same socket by another name, or the other listener, is not
    server.route("/allow.xml", Serve(RSS))
    allowed = add_feed(server.url("/allow.xml"))
    by_name = add_feed(f"http://localhost:{server.port}/allow.xml")
    other = add_feed(server.url("/allow.xml", alt=True))
    assert deliver(stack, [allowed, by_name, other]).response == {"batchItemFailures": []}
    assert stored(allowed.feed_id).status == "active"
    assert stored(by_name.feed_id).last_error_kind == "blocked_address"
    assert stored(other.feed_id).last_error_kind == "blocked_address"
    assert len(server.requests_to("/allow.xml")) == 1


def _template_environments() -> dict[str, dict]:
    template = load_template()
    envs = {"Globals": template["Globals"]["Function"].get("Environment", {}).get("Variables", {})}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            envs[name] = resource["Properties"].get("Environment", {}).get("Variables", {})
    return envs


def _deployed_value(value: object) -> str:
    """A template value as the function would see it: parameters at their defaults."""
    if isinstance(value, dict) and "Ref" in value:
        parameter = load_template().get("Parameters", {}).get(value["Ref"])
        if parameter is not None:
            return str(parameter.get("Default", ""))
    return value if isinstance(value, str) else json.dumps(value)


def test_deployed_stack_never_relaxes_the_guard() -> None:
    # Neither knob appears anywhere in the template (Globals, functions, parameters)
    text = TEMPLATE_PATH.read_text()
    assert all(knob not in text for knob in ("EARSHOT_ALLOW_PRIVATE_ADDRESSES", "EARSHOT_ALLOWED_HOSTS",
                                             "EARSHOT_ALLOW_LOCAL_FILES"))
    # and the settings each function builds from its environment keep the guard on
    for name, variables in _template_environments().items():
        settings = Settings.from_env({k: _deployed_value(v) for k, v in variables.items()})
        assert (settings.allow_private_addresses, settings.allowed_hosts, settings.allow_local_files) == \
            (False, (), False), name
    # and no function handler opts into the CLI's local settings
    for app in FUNCTIONS_DIR.glob("*/app.py"):
        source = app.read_text()
        assert "earshot_local" not in source and "domain_settings" not in source and "allow_private" not in source


def test_local_cli_allows_loopback_by_default(server: FeedServer) -> None:
    # The CLI fetches the user's own feeds on the user's own machine
    assert domain_settings().allow_private_addresses is True
    assert Settings().allow_private_addresses is False and Settings().allowed_hosts == ()
    # `earshot parse http://127.0.0.1:<port>/...` works with no allowlist set
    url = server.route("/cli.xml", Serve(RSS))
    out = io.StringIO()
    with redirect_stdout(out):
        assert earshot_cli(["parse", url]) == 0
    assert json.loads(out.getvalue())["feed"]["title"] == "Loopback Radio"


def test_the_tripwire_refuses_and_flags_non_loopback_connects() -> None:
    # The suite's own safety net: a non-loopback connect never leaves the machine and is
    # reported; loopback passes through
    wire = Tripwire()
    with pytest.raises(ConnectionRefusedError):
        wire.check(("10.0.0.1", 80))
    with pytest.raises(ConnectionRefusedError):
        wire.check(("feeds.example", 443))
    wire.check(("127.0.0.1", 1))
    wire.check(("::1", 1, 0, 0))
    assert wire.violations == ["connect to non-loopback 10.0.0.1:80", "connect to non-loopback feeds.example:443"]
    assert wire.non_loopback_attempts() == [("10.0.0.1", 80), ("feeds.example", 443)]


def test_a_feed_given_as_a_file_path_is_read_only_where_files_are_allowed(tmp_path) -> None:
    from earshot.errors import InvalidUrl
    from earshot.ingest.sources import read_source
    from earshot_local.settings import domain_settings

    path = tmp_path / "feed.xml"
    path.write_bytes(RSS)
    # Loopback fetching alone does not open the file system
    with pytest.raises(InvalidUrl):
        read_source(path.as_uri(), settings=Settings(EARSHOT_ALLOW_PRIVATE_ADDRESSES=True))
    assert read_source(path.as_uri(), settings=domain_settings()).body == RSS
