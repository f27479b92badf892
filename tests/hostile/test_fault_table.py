"""The hostile-server fault table, each row run through the real ``fetch_worker``
handler in one SQS batch with two healthy feeds (one per loopback address).

What every row must show:

- the batch ends within the total timeout (plus the embedded stack's overhead);
- the handler reports no ``batchItemFailures`` (a feed failing is data, not a retry);
- the hostile feed carries a typed ``last_error_kind`` and a backed-off ``next_check_at``
  -- or, for inputs Earshot recovers from, its episodes are stored sanely;
- both healthy feeds in the batch are stored completely.

docs/reliability.md has one row per case here, with what was observed.
"""

from __future__ import annotations

import socket
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import boto3
import pytest

from earshot.models import Episode, FeedState
from earshot.settings import get_settings
from tests.hostile.conftest import (
    MAX_BODY_BYTES,
    add_feed,
    deliver,
    episodes,
    make_stack,
    stored,
    table_strings,
)
from tests.support.aws_stack import REGION, EmbeddedBackend
from tests.support.feedserver import (
    RSS,
    Behaviour,
    DeclaredHuge,
    Delayed,
    Drip,
    Endless,
    FeedServer,
    Flapping,
    GiB,
    GzipBomb,
    MiB,
    Redirect,
    Serve,
    unresponsive_port,
)

HTML = {"Content-Type": "text/html; charset=utf-8"}
# A stalling server would hold a batch 30 s or more; the fetch deadline (TOTAL_TIMEOUT_S)
# cuts it to a few seconds, and half the stall leaves room for a loaded machine.
STALL_CUT_S = 15.0
MIN_BACKOFF = timedelta(seconds=3600 * 0.8)  # min_interval_s * (1 - jitter) for a first error


def rss(items: str, *, title: str = "Hostile Radio", encoding: str = "UTF-8") -> bytes:
    return (f"<?xml version='1.0' encoding='{encoding}'?>\n<rss version='2.0'><channel>"
            f"<title>{title}</title>{items}</channel></rss>").encode()


def item(guid: str, title: str, date: str = "Tue, 24 Nov 2026 10:00:00 GMT", extra: str = "") -> str:
    return f"<item><title>{title}</title><guid>{guid}</guid><pubDate>{date}</pubDate>{extra}</item>"


PASSWD_LINE = next(
    (line for line in Path("/etc/passwd").read_text().splitlines() if line.strip()), "root:x:0:0:root:/root:/bin/sh"
) if Path("/etc/passwd").exists() else "root:x:0:0:root:/root:/bin/sh"

XXE = (b"<?xml version='1.0'?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM 'file:///etc/passwd'>\n]>\n"
       b"<rss version='2.0'><channel><title>&xxe;</title><item><title>&xxe;</title><guid>xxe</guid>"
       b"<description>&xxe;</description></item></channel></rss>")
XXE_ONE_LINE = XXE.replace(b"\n", b"")
BILLION_LAUGHS = (
    "<?xml version='1.0'?>\n<!DOCTYPE rss [\n<!ENTITY l0 'lol'>\n"
    + "".join(f"<!ENTITY l{i} '{f'&l{i - 1};' * 10}'>\n" for i in range(1, 10))
    + "]>\n<rss version='2.0'><channel><title>&l9;</title><item><title>&l9;</title><guid>lol</guid></item>"
    "</channel></rss>"
).encode()
BILLION_LAUGHS_ONE_LINE = BILLION_LAUGHS.replace(b"\n", b"")
_WHOLE = rss(item("t1", "Whole") + item("t2", "Second"))
TRUNCATED = _WHOLE[: _WHOLE.index(b"<title>Second") + 10]
CONTROL_CHARS = rss(
    item("ctl-raw", "Raw\x01\x07\x1b[31m bell\r\nBcc: victim@example.com")
    + item("ctl-ref", "Refs&#13;&#10;Bcc: victim@example.com&#x85;&#x2028;end")
    + item("ctl-cdata", "<![CDATA[CDATA\r\nSubject: injected\u2028\u2029\tend]]>")
)


# ------------------------------------------------------------------ the table


@dataclass
class Fault:
    id: str
    serve: Callable[[FeedServer, str], str]  # (server, path prefix) -> the hostile feed's URL
    kind: str | None  # the error kind recorded on the feed; None: recovered, see ``check``
    check: Callable[[FeedState], None] | None = None
    min_next_check: timedelta = MIN_BACKOFF
    # Set only where the server stalls (it would hold the batch for 30 s or more): the
    # batch ends well before, so the deadline is enforced. Speed is for `make bench`.
    deadline_cut_s: float | None = None
    memory_bound_bytes: int | None = None  # tracemalloc peak during the batch
    marks: tuple[pytest.MarkDecorator, ...] = ()
    what: str = ""


# One host per Retry-After row: a host stays paused for the rest of the module's stack.
RETRY_AFTER_HOSTS = ("127.0.0.3", "127.0.0.4")


def at(behaviour: Behaviour, *, host: str | None = None) -> Callable[[FeedServer, str], str]:
    """Serve the hostile feed; a ``host`` of its own for a Retry-After, which pauses the
    whole host it comes from (politeness), healthy feeds on it included."""
    def serve(server: FeedServer, prefix: str) -> str:
        server.route(f"{prefix}/feed", behaviour)
        return server.url(f"{prefix}/feed", host=host)
    return serve


def chain(statuses: list[int]) -> Callable[[FeedServer, str], str]:
    return lambda server, prefix: server.redirect_chain(f"{prefix}/hop", statuses, Serve(RSS))


def loop(server: FeedServer, prefix: str) -> str:
    server.route(f"{prefix}/b", Redirect(f"{prefix}/a", status=302))
    return server.route(f"{prefix}/a", Redirect(f"{prefix}/b", status=302))


def retry_after_date(server: FeedServer, prefix: str) -> str:
    when = format_datetime(datetime.now(UTC) + timedelta(hours=3), usegmt=True)
    return at(Serve(b"", status=503, headers={"Retry-After": when}), host=RETRY_AFTER_HOSTS[1])(server, prefix)


def closed_port(server: FeedServer, prefix: str) -> str:
    return f"http://127.0.0.1:{CLOSED_PORT}{prefix}/feed"


def hanging_port(server: FeedServer, prefix: str) -> str:
    return f"http://127.0.0.1:{HANGING_PORT}{prefix}/feed"


def recovered(*expected_ids: str, also: Callable[[dict[str, Episode]], None] | None = None):
    """The feed parsed and stored exactly ``expected_ids``; titles are one clean line."""

    def check(feed: FeedState) -> None:
        assert feed.status == "active" and feed.last_error_kind is None and feed.last_result == "parsed"
        stored_episodes = episodes(feed.feed_id)
        assert set(stored_episodes) == set(expected_ids)
        for episode in stored_episodes.values():
            assert not any(ch in episode.title for ch in "\r\n\x00\x1b\x85\u2028\u2029"), episode.title
        if also:
            also(stored_episodes)

    return check


def _dates(eps: dict[str, Episode]) -> None:
    assert eps["good"].published == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    for bad in ("junk", "far-future", "epoch-number", "empty", "day-32"):
        assert eps[bad].published is None, bad


def _control(eps: dict[str, Episode]) -> None:
    assert eps["ctl-raw"].title.startswith("Raw") and "Bcc: victim@example.com" in eps["ctl-raw"].title
    assert eps["ctl-cdata"].title == "CDATA Subject: injected end"


def _encoding(eps: dict[str, Episode]) -> None:
    assert eps["enc"].title == "Café über"


def _big_title(eps: dict[str, Episode]) -> None:
    assert len(eps["big"].title) <= 4096, "titles are capped before they are stored"


def ten_thousand_stored(feed: FeedState) -> None:
    # Counted with Select=COUNT: reading 10,000 items back through moto takes ~10 s.
    assert feed.status == "active" and feed.last_result == "parsed" and feed.episode_count == 10_000
    ddb = boto3.client("dynamodb", region_name=REGION)
    pages = ddb.get_paginator("query").paginate(
        TableName=get_settings().table_name, Select="COUNT",
        KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
        ExpressionAttributeValues={":p": {"S": f"FEED#{feed.feed_id}"}, ":e": {"S": "EP#"}})
    assert sum(page["Count"] for page in pages) == 10_000


FAULTS = [
    Fault("slow-drip-1-byte-per-s", at(Drip(RSS, interval_s=1.0)), "timeout", deadline_cut_s=STALL_CUT_S,
          what="headers, then the body at 1 byte/s"),
    Fault("headers-never-sent", at(Delayed(30.0)), "timeout", deadline_cut_s=STALL_CUT_S, what="accepts, then sends nothing for 30 s"),
    Fault("connect-hangs", hanging_port, "timeout", what="TCP connect never completes (full backlog)"),
    Fault("connection-refused", closed_port, "connect_error", what="nothing listens on the port"),
    Fault("endless-body", at(Endless()), "body_too_large", memory_bound_bytes=4 * MAX_BODY_BYTES,
          what="200, no Content-Length, the body never ends"),
    Fault("declared-1-GiB", at(DeclaredHuge(declared_bytes=1 * GiB)), "body_too_large",
          what="Content-Length: 1 GiB (then a short body and hang-up)"),
    Fault("gzip-bomb-1-GiB", at(GzipBomb(inflated_bytes=1 * GiB)), "body_too_large",
          memory_bound_bytes=4 * MAX_BODY_BYTES, what="~1 MiB of gzip on the wire inflating to 1 GiB"),
    Fault("xxe-etc-passwd", at(Serve(XXE)), "unsafe_xml", what="external entity SYSTEM file:///etc/passwd"),
    Fault("xxe-one-line", at(Serve(XXE_ONE_LINE)), "unsafe_xml", what="the same, DOCTYPE on one line"),
    Fault("billion-laughs", at(Serve(BILLION_LAUGHS)), "unsafe_xml", what="10^9 'lol' via nested entities"),
    Fault("billion-laughs-one-line", at(Serve(BILLION_LAUGHS_ONE_LINE)), "unsafe_xml",
          what="the same on one line (reaches expat unchanged in feedparser)"),
    Fault("redirect-loop", loop, "too_many_redirects", what="/a -> /b -> /a (302s)"),
    Fault("redirect-chain-6-over-limit-5", chain([301, 302, 307, 308, 301, 302]), "too_many_redirects",
          what="six redirects; the limit is five"),
    Fault("429-retry-after-seconds", at(Serve(b"", status=429, headers={"Retry-After": "7200"}),
                                        host=RETRY_AFTER_HOSTS[0]), "http_429",
          min_next_check=timedelta(seconds=7200), what="429 with Retry-After: 7200"),
    Fault("503-retry-after-http-date", retry_after_date, "http_503",
          min_next_check=timedelta(hours=3) - timedelta(seconds=30), what="503 with Retry-After: <HTTP-date +3 h>"),
    Fault("410-gone", at(Serve(b"", status=410)), "gone", what="410 Gone"),
    Fault("404", at(Serve(b"nope", status=404, headers=HTML)), "http_404", what="404 Not Found"),
    Fault("500", at(Serve(b"oops", status=500, headers=HTML)), "http_500", what="500 Internal Server Error"),
    Fault("html-instead-of-feed", at(Serve(b"<!doctype html><html><head><title>Shop</title></head>"
                                           b"<body><h1>Buy</h1></body></html>", headers=HTML)),
          "not_a_feed", what="200 text/html page"),
    Fault("empty-body", at(Serve(b"")), "not_a_feed", what="200 with an empty body"),
    Fault("truncated-xml-no-items", at(Serve(rss("")[:70])), "malformed", what="XML cut off inside the channel"),
    Fault("truncated-xml-after-an-item", at(Serve(TRUNCATED)), None, recovered("t1"),
          what="XML cut off inside the second item"),
    Fault("wrong-declared-encoding", at(Serve(rss(item("enc", "Café über")).decode().encode("latin-1"))),
          None, recovered("enc", also=_encoding), what="Latin-1 bytes declared as UTF-8"),
    Fault("declared-utf16-but-ascii", at(Serve(rss(item("u16", "Plain"), encoding="UTF-16"))), None,
          recovered("u16"), what="declares UTF-16, bytes are ASCII"),
    Fault("invalid-dates", at(Serve(rss(
        item("good", "Good") + item("junk", "Junk", "32 Foo 2020 99:99") + item("far-future", "F", "Fri, 01 Jan 2100 00:00:00 GMT")
        + item("epoch-number", "N", "1700000000") + item("empty", "E", "") + item("day-32", "D", "Tue, 32 Nov 2026 10:00:00 GMT")))),
        None, recovered("good", "junk", "far-future", "epoch-number", "empty", "day-32", also=_dates),
        what="unparseable, impossible and far-future pubDates"),
    Fault("control-chars-and-crlf-in-titles", at(Serve(CONTROL_CHARS)), None,
          recovered("ctl-raw", "ctl-ref", "ctl-cdata", also=_control),
          what="raw C0 controls, &#13;&#10;, NEL, U+2028 and CRLF+'Bcc:' in titles"),
    Fault("10000-items", at(Serve(rss("".join(item(f"n{i}", f"Episode {i}") for i in range(10_000))))), None,
          ten_thousand_stored,
          marks=(pytest.mark.slow,), what="one feed with 10,000 items (~1 MB)"),
    Fault("1-MB-title", at(Serve(rss(item("big", "A" * MiB)))), None, recovered("big", also=_big_title),
          what="one item whose title is 1 MiB"),
    Fault("1-MB-show-notes", at(Serve(rss(item("notes", "Notes", extra=f"<description>{'B' * MiB}</description>")))),
          None, recovered("notes"),
          what="one item whose description is 1 MiB"),
]


# ------------------------------------------------------------------ fixtures

CLOSED_PORT = 0
HANGING_PORT = 0


@pytest.fixture(scope="module")
def stack(server: FeedServer) -> Iterator[EmbeddedBackend]:
    global CLOSED_PORT, HANGING_PORT
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    CLOSED_PORT = probe.getsockname()[1]
    probe.close()  # nothing listens there any more: connects are refused at once
    with unresponsive_port() as hanging, make_stack(
        server, f"127.0.0.1:{CLOSED_PORT}", f"127.0.0.1:{hanging}"
    ) as backend:
        HANGING_PORT = hanging
        yield backend


def healthy_pair(server: FeedServer, prefix: str) -> list[tuple[FeedState, set[str]]]:
    out = []
    for n, alt in ((1, False), (2, True)):
        ids = {f"{prefix}-h{n}-{k}" for k in range(3)}
        server.route(f"{prefix}/healthy{n}.xml", Serve(rss("".join(item(i, f"Healthy {i}") for i in sorted(ids)))))
        out.append((add_feed(server.url(f"{prefix}/healthy{n}.xml", alt=alt)), ids))
    return out


# ------------------------------------------------------------------ the test


def test_xxe_never_stores_local_file_content(stack: EmbeddedBackend, server: FeedServer) -> None:
    # Given both XXE variants were delivered to the worker (it runs before the big rows)
    for n, body in enumerate((XXE, XXE_ONE_LINE)):
        deliver(stack, [add_feed(server.route(f"/xxe-scan/{n}", Serve(body)))])
    # Then no string anywhere in the table holds a line of /etc/passwd
    leaked = [s for s in table_strings() if PASSWD_LINE in s or "root:x:0:0" in s]
    assert leaked == []


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.id, marks=f.marks) for f in FAULTS])
def test_fault_is_contained(stack: EmbeddedBackend, server: FeedServer, fault: Fault) -> None:
    # Given a hostile feed and two healthy ones, queued as one SQS batch
    prefix = f"/{fault.id}"
    hostile = add_feed(fault.serve(server, prefix))
    healthy = healthy_pair(server, prefix)

    # When the real worker handler runs the batch
    if fault.memory_bound_bytes:
        tracemalloc.start()
    try:
        delivery = deliver(stack, [hostile] + [f for f, _ in healthy])
        peak_bytes = tracemalloc.get_traced_memory()[1] if fault.memory_bound_bytes else 0
    finally:
        if fault.memory_bound_bytes:
            tracemalloc.stop()

    print(f"[observed] {fault.id}: batch {delivery.elapsed_s:.2f} s, peak {peak_bytes / MiB:.2f} MiB, "
          f"kind {stored(hostile.feed_id).last_error_kind}")
    # Then it fails no record, keeps the healthy feeds whole and, where the server stalls,
    # ends long before the stall would have
    if fault.deadline_cut_s is not None:
        assert delivery.elapsed_s < fault.deadline_cut_s, f"batch took {delivery.elapsed_s:.1f} s"
    assert delivery.response == {"batchItemFailures": []}, "a hostile feed is data, never a retried record"
    for feed, ids in healthy:
        assert set(episodes(feed.feed_id)) == ids and stored(feed.feed_id).status == "active"
    if fault.memory_bound_bytes:
        assert peak_bytes < fault.memory_bound_bytes, f"peak {peak_bytes / MiB:.1f} MiB"

    # And the hostile feed carries a typed error and a backoff (or was recovered sanely)
    state = stored(hostile.feed_id)
    if fault.kind is None:
        assert fault.check is not None
        fault.check(state)
    elif fault.kind == "gone":
        assert (state.status, state.last_error_kind, state.next_check_at) == ("gone", "gone", None)
    else:
        assert (state.status, state.last_error_kind, state.error_count) == ("error", fault.kind, 1)
        assert state.last_checked_at is not None and state.next_check_at is not None
        assert state.next_check_at >= state.last_checked_at + fault.min_next_check
        assert episodes(hostile.feed_id) == {}


def test_flapping_500s_back_off_recover_and_lose_nothing(stack: EmbeddedBackend, server: FeedServer) -> None:
    # Given a feed answering 500, then its feed, then 500 again
    good = rss(item("flap-1", "One") + item("flap-2", "Two"))
    flapping = add_feed(server.route("/flapping/feed", Flapping((Serve(b"", status=500), Serve(good),
                                                                 Serve(b"", status=500)))))
    healthy = healthy_pair(server, "/flapping")
    batch = [flapping] + [f for f, _ in healthy]
    seen = []
    # When it is checked three times (the same SQS batch each time)
    for _ in range(3):
        assert deliver(stack, batch).response == {"batchItemFailures": []}
        state = stored(flapping.feed_id)
        seen.append((state.status, state.last_error_kind, state.error_count))
    # Then errors count up, reset on success, and the stored episodes survive the next 500
    assert seen == [("error", "http_500", 1), ("active", None, 0), ("error", "http_500", 1)]
    assert set(episodes(flapping.feed_id)) == {"flap-1", "flap-2"}
    assert state.next_check_at >= state.last_checked_at + MIN_BACKOFF
