"""Shared machinery for the hostile suite: a loopback-only network tripwire, a
fake resolver wired into the worker's HTTP client, and a helper that delivers one real
SQS batch to the real ``fetch_worker`` handler.

Nothing in tests/hostile may send a packet anywhere but loopback. Two layers enforce it:

- ``loopback_only`` (autouse): every ``socket.connect``/``connect_ex``/``create_connection``
  is inspected; a non-loopback destination is *refused* (no packet leaves) and recorded,
  and the test fails at teardown. A test that provokes such a connect on purpose (the DNS
  rebinding case) declares the exact addresses with ``tripwire.expect_refused(...)``.
- Names are never resolved by the system resolver: :func:`use_resolver` gives the worker's
  client a table-driven fake (numeric forms such as ``2130706433`` are parsed locally,
  as glibc's ``inet_aton`` would, without a DNS query).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from earshot import runtime
from earshot.ingest.fetcher import make_client
from earshot.ingest.refresh import FeedCheck, new_feed
from earshot.models import Episode, FeedState
from earshot.settings import get_settings
from tests.support.aws_stack import REGION, EmbeddedBackend
from tests.support.feedserver import FeedServer, running_feed_server

# Test-sized limits: every fault must end inside TOTAL_TIMEOUT_S (plus moto's overhead).
TOTAL_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 1.0
MAX_BODY_BYTES = 2 * 1024 * 1024
# What the embedded stack (moto, parsing, a thread pool) may add on top of a fetch.
OVERHEAD_S = 2.5


# ------------------------------------------------------------------ network tripwire


@dataclass
class Tripwire:
    """Records every connect attempt; refuses (and flags) anything that is not loopback."""

    attempts: list[tuple[str, int]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    allowed_refusals: set[str] = field(default_factory=set)

    def expect_refused(self, *addresses: str) -> None:
        """These non-loopback addresses may be *attempted* (and are refused locally)."""
        self.allowed_refusals.update(addresses)

    def check(self, address: Any) -> None:
        if not isinstance(address, tuple):  # AF_UNIX paths: not network traffic
            return
        host, port = str(address[0]), int(address[1])
        self.attempts.append((host, port))
        try:
            is_loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            is_loopback = False  # a name: the connect would resolve it itself
        if is_loopback:
            return
        if host not in self.allowed_refusals:
            self.violations.append(f"connect to non-loopback {host}:{port}")
        raise ConnectionRefusedError(f"tripwire: {host}:{port} is not loopback (refused locally)")

    def non_loopback_attempts(self) -> list[tuple[str, int]]:
        return [(h, p) for h, p in self.attempts if not _is_loopback(h)]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def tripwire(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tripwire]:
    wire = Tripwire()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_create_connection = socket.create_connection

    def connect(self: socket.socket, address: Any) -> None:
        wire.check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        wire.check(address)
        return real_connect_ex(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        wire.check(address)
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield wire
    if wire.violations:
        pytest.fail("traffic to non-loopback addresses was attempted: " + "; ".join(wire.violations))


# ------------------------------------------------------------------ fake DNS


Resolver = Callable[..., list[tuple[Any, ...]]]


def fake_resolver(table: dict[str, list[str]], lookups: list[str] | None = None) -> Resolver:
    """A ``getaddrinfo`` stand-in answering from ``table``; never queries DNS.

    A value may also be a callable returning the addresses (a rebinding resolver).
    """

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if lookups is not None:
            lookups.append(host)
        answer = table.get(host.lower())
        if callable(answer):
            answer = answer()
        if answer is None:
            try:  # "2130706433", "0x7f.1", "127.1": what inet_aton accepts, parsed locally
                answer = [socket.inet_ntoa(socket.inet_aton(host))]
            except OSError:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in answer
        ]

    return resolve


def use_resolver(monkeypatch: pytest.MonkeyPatch, resolver: Resolver) -> None:
    """Make the worker's shared HTTP client (``runtime.http_client``) use ``resolver``."""
    monkeypatch.setattr(runtime, "http_client", functools.cache(lambda: make_client(get_settings(), resolver)))


# ------------------------------------------------------------------ the stack


def make_stack(server: FeedServer, *extra_authorities: str, primary_only: bool = False, **env: str) -> EmbeddedBackend:
    """The embedded stack with test-sized limits, allowed to reach exactly ``server`` (both
    listeners, or only 127.0.0.1:<port> with ``primary_only``) and ``extra_authorities``."""
    authorities = server.authorities[:1] if primary_only else server.authorities
    allowed = ",".join((*authorities, *extra_authorities))
    return EmbeddedBackend(extra_env={
        "EARSHOT_ALLOWED_HOSTS": allowed,
        "EARSHOT_TOTAL_TIMEOUT_S": str(TOTAL_TIMEOUT_S),
        "EARSHOT_CONNECT_TIMEOUT_S": str(CONNECT_TIMEOUT_S),
        "EARSHOT_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        **env,
    })


def add_feed(url: str) -> FeedState:
    """A feed, stored and due now (as ``earshot feeds add`` leaves it)."""
    feed = new_feed(url, datetime.now(UTC))
    runtime.store().add_feed(feed)
    return feed


@dataclass
class Delivery:
    response: dict[str, Any]
    elapsed_s: float
    event: dict[str, Any]


def deliver(stack: EmbeddedBackend, feeds: list[FeedState]) -> Delivery:
    """Queue ``feeds`` as one SQS batch, receive it as the event source would, run the real
    ``fetch_worker`` handler on it and delete what it did not report as failed."""
    assert len(feeds) <= 10, "one SQS batch holds at most 10 records"
    queue_url = stack.settings.fetch_queue_url
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.send_message_batch(QueueUrl=queue_url, Entries=[
        {"Id": str(i), "MessageBody": FeedCheck.from_state(f).model_dump_json()} for i, f in enumerate(feeds)
    ])
    event = stack.receive_sqs_event(queue_url)
    assert event is not None and len(event["Records"]) == len(feeds)
    started = time.monotonic()
    response = stack.invoke("fetch_worker", event)
    elapsed_s = time.monotonic() - started
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    # Failed records stay on the queue, invisible for its visibility timeout (720 s), so the
    # next delivery in the same test module never receives them again.
    stack.delete_messages(queue_url, event, keep=failed)
    return Delivery(response=response, elapsed_s=elapsed_s, event=event)


def stored(feed_id: str) -> FeedState:
    state = runtime.store().get_feed(feed_id)
    assert state is not None
    return state


def episodes(feed_id: str) -> dict[str, Episode]:
    return {e.id: e for e in runtime.store().list_episodes(feed_id)}


def table_strings() -> Iterator[str]:
    """Every string attribute value in the main table (to prove what never got stored)."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    for page in ddb.get_paginator("scan").paginate(TableName=get_settings().table_name):
        for item in page["Items"]:
            yield from _strings(item)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)
    elif isinstance(value, str):
        yield value


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    """One loopback feed server per test module (its routes are set per test), on
    127.0.0.1 and .2, and .3 and .4 for feeds that must sit on a host of their own."""
    with running_feed_server(extra_hosts=("127.0.0.3", "127.0.0.4")) as feed_server:
        yield feed_server
