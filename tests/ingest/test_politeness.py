"""Politeness: requests in flight per host across every worker (``earshot.ingest.politeness``).

The pace rules are pure and table-driven. The rest runs over real sockets against the
loopback feed server, which counts the requests in flight on each of its hosts: two
`earshot run` processes on one database, a host answering 503, and the deployed worker
invoked in parallel threads on the moto test double. No assertion depends on timing: the
server's counts are exact, whatever the machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from earshot import runtime
from earshot.errors import ConnectFailed, FetchTimeout, HttpStatusError
from earshot.ingest.politeness import Answer, HostBusy, HostPace, classify, next_pace
from earshot.ingest.refresh import FeedCheck, new_feed, refresh_feeds
from earshot.settings import Settings
from earshot_local.sqlite_store import SqliteStore
from tests.support.aws_stack import EmbeddedBackend, sample_event, serialize_dynamodb_calls
from tests.support.feedserver import RSS, Delayed, FeedServer, Serve, running_feed_server

EARSHOT = str(Path(sys.executable).parent / "earshot")
HOSTS = ("127.0.0.3", "127.0.0.4")
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


# ------------------------------------------------------------------ pace (pure)
START = HostPace(limit=2, ceiling=6)


@pytest.mark.parametrize(("pace", "answer", "expected"), [
    (START, Answer("ok", 0.1), (2, 1, 0.0)),
    (HostPace(limit=2, ceiling=6, clean=1), Answer("ok", 0.1), (3, 0, 0.0)),
    (HostPace(limit=6, ceiling=6, clean=5), Answer("ok", 0.1), (6, 6, 0.0)),
    (HostPace(limit=4, ceiling=6, clean=3), Answer("throttled", 0.1), (1, 0, 100.0)),
    (HostPace(limit=4, ceiling=6), Answer("throttled", 0.1, retry_after_s=30), (1, 0, 130.0)),
    (HostPace(limit=4, ceiling=6), Answer("throttled", 0.1, retry_after_s=86400), (1, 0, 400.0)),
    (HostPace(limit=4, ceiling=6, not_before_s=500), Answer("throttled", 0.1, retry_after_s=1), (1, 0, 500.0)),
    (HostPace(limit=5, ceiling=6, clean=2), Answer("timeout", 30.0), (1, 0, 0.0)),
    (HostPace(limit=5, ceiling=6, clean=2), Answer("failed", 0.1), (2, 0, 0.0)),
    (HostPace(limit=1, ceiling=6), Answer("failed", 0.1), (1, 0, 0.0)),
    (HostPace(limit=4, ceiling=6, latency_s=0.1, best_latency_s=0.1, clean=3), Answer("ok", 2.0), (3, 0, 0.0)),
    (HostPace(limit=4, ceiling=6, latency_s=0.1, best_latency_s=0.1, clean=1), Answer("ok", 0.15), (4, 2, 0.0)),
], ids=[
    "first clean answer counts", "a clean round adds a slot", "never above the ceiling",
    "429/503 drops to one", "retry-after pauses the host", "a host pause is capped",
    "a shorter retry-after never shortens a pause", "a timeout drops to one", "a 5xx halves",
    "never below one", "rising latency sheds a slot", "loopback jitter is not a slowdown",
])
def test_next_pace(pace: HostPace, answer: Answer, expected: tuple[int, int, float]) -> None:
    after = next_pace(pace, answer, at_s=100.0)
    assert (after.limit, after.clean, after.not_before_s) == expected


@pytest.mark.parametrize(("exc", "kind"), [
    (None, "ok"),
    (HttpStatusError(404, "x"), "ok"),
    (HttpStatusError(429, "x"), "throttled"),
    (HttpStatusError(503, "x", retry_after_s=5), "throttled"),
    (HttpStatusError(502, "x"), "failed"),
    (ConnectFailed("x"), "failed"),
    (FetchTimeout("x"), "timeout"),
], ids=["2xx", "404", "429", "503", "502", "connect", "timeout"])
def test_classify(exc: BaseException | None, kind: str) -> None:
    assert classify(exc, 0.1).kind == kind


# ------------------------------------------------------------------ scheduling, one process
def _settings(server: FeedServer, **changes: object) -> Settings:
    return Settings(allowed_hosts=server.authorities).with_(**changes)


def test_a_host_whose_slots_are_taken_elsewhere_is_handed_back_untouched(tmp_path: Path) -> None:
    # Given another worker holding both slots of the host
    with running_feed_server() as server:
        store = SqliteStore(tmp_path / "earshot.db")
        url = server.route("/busy.xml", Serve())
        feed = new_feed(url, NOW)
        store.add_feed(feed)
        for _ in range(2):
            assert store.acquire_host_slot("127.0.0.1", limit=2, lease_s=600, now=datetime.now(UTC))
        # When the deployed path (which waits 0 s for a busy host) checks it
        (future,) = refresh_feeds([FeedCheck.from_state(feed)], repo=store, settings=_settings(server),
                                  defer_after_s=0)
        # Then the check ends in HostBusy: nothing fetched, nothing stored
        with pytest.raises(HostBusy):
            future.result(timeout=60)
        assert server.requests == []
        assert store.get_feed(feed.feed_id) == feed
        store.close()


def test_a_local_run_comes_back_to_a_busy_host_once_its_slot_is_free(tmp_path: Path) -> None:
    with running_feed_server() as server:
        store = SqliteStore(tmp_path / "earshot.db")
        busy_url, free_url = server.route("/busy.xml", Serve()), server.route("/free.xml", Serve())
        busy_url = busy_url.replace("127.0.0.1", "127.0.0.2").replace(str(server.port), str(server.alt_port))
        feeds = [new_feed(busy_url, NOW), new_feed(free_url, NOW)]
        for feed in feeds:
            store.add_feed(feed)
        held = [store.acquire_host_slot("127.0.0.2", limit=6, lease_s=600, now=datetime.now(UTC)) for _ in range(6)]
        # When a local run (no deferral) checks both
        futures = refresh_feeds([FeedCheck.from_state(f) for f in feeds], repo=store, settings=_settings(server))
        # Then the free host is served while the busy one waits...
        assert futures[1].result(timeout=60).result == "parsed"
        assert not futures[0].done()
        # ...and once the other worker lets go, the waiting check runs
        for lease in held:
            assert lease is not None
            store.release_host_slot(lease, now=datetime.now(UTC))
        assert futures[0].result(timeout=60).result == "parsed"
        store.close()


def test_a_retry_after_pauses_the_whole_host_and_hands_its_other_checks_back(tmp_path: Path) -> None:
    # Given six feeds on one host, the first answering 503 with Retry-After: 120
    with running_feed_server() as server:
        store = SqliteStore(tmp_path / "earshot.db")
        urls = [server.route("/ra0.xml", Serve(b"", status=503, headers={"Retry-After": "120"}))]
        urls += [server.route(f"/ra{n}.xml", Delayed(0.2, Serve())) for n in range(1, 6)]
        feeds = [new_feed(url, NOW) for url in urls]
        for feed in feeds:
            store.add_feed(feed)
        # When a local run checks them (it waits at most a minute for a host)
        futures = refresh_feeds([FeedCheck.from_state(f) for f in feeds], repo=store, settings=_settings(server))
        # Then the 503 is recorded, and no request starts on the host after it
        assert futures[0].result(timeout=60).error_kind == "http_503"
        for feed, future in zip(feeds[2:], futures[2:], strict=True):
            with pytest.raises(HostBusy):
                future.result(timeout=60)
            assert store.get_feed(feed.feed_id) == feed, "handed back untouched: still due"
        assert {r.path for r in server.requests} <= {"/ra0.xml", "/ra1.xml"}
        store.close()


def test_a_killed_runs_host_slots_are_free_at_once_on_sqlite(tmp_path: Path) -> None:
    # Given a process that leased both slots of a host, killed before it could give them back
    db = tmp_path / "earshot.db"
    SqliteStore(db).close()
    holder = subprocess.run([sys.executable, "-c", (
        "import os, signal; from datetime import UTC, datetime; from earshot_local.sqlite_store import SqliteStore\n"
        f"s = SqliteStore({str(db)!r})\n"
        "for _ in range(2): assert s.acquire_host_slot('feeds.example', limit=2, lease_s=600, now=datetime.now(UTC))\n"
        "os.kill(os.getpid(), signal.SIGKILL)")], check=False)
    assert holder.returncode == -9
    # When the next run asks, long before the leases would lapse
    store = SqliteStore(db)
    # Then the slots are free: a process that is gone holds nothing
    assert store.acquire_host_slot("feeds.example", limit=2, lease_s=600, now=datetime.now(UTC)) is not None
    store.close()


# ------------------------------------------------------------------ two `earshot run` on one database
def _earshot(db: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([EARSHOT, "--db", str(db), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "EARSHOT_DB": str(db), **env})


def _finish(proc: subprocess.Popen[bytes]) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def _feed(n: int) -> bytes:
    return RSS.replace(b"ep-1", f"show-{n}".encode()).replace(b"Loopback Radio", f"Show {n}".encode())


@pytest.mark.slow
@pytest.mark.parametrize("ceiling", [2, 3])
def test_two_runs_on_one_database_share_each_hosts_slots(tmp_path: Path, ceiling: int) -> None:
    # Given 2 x 16 feeds over two hosts, each answer a little late, in two disjoint lists
    with running_feed_server(extra_hosts=HOSTS) as server:
        lists = []
        for name, numbers in (("a", range(0, 16)), ("b", range(16, 32))):
            urls = []
            for n in numbers:
                server.route(f"/f{n}.xml", Delayed(0.05, Serve(_feed(n))))
                urls.append(server.url(f"/f{n}.xml", host=HOSTS[n % 2]))
            (path := tmp_path / f"{name}.txt").write_text("\n".join(urls) + "\n")
            lists.append(path)
        db = tmp_path / "shared.db"
        # When two `earshot run` check them into one database at once
        env = {"EARSHOT_MAX_REQUESTS_PER_HOST": str(ceiling), "EARSHOT_HOST_CONCURRENCY_CEILING": str(ceiling)}
        runs = [_earshot(db, "run", "--feeds", str(path), "--json", **env) for path in lists]
        for proc in runs:
            _finish(proc)
        # Then no host ever saw more than the limit in flight from both together
        assert set(server.max_in_flight) == set(HOSTS)
        assert max(server.max_in_flight.values()) <= ceiling, server.max_in_flight
        # and every feed of both lists was checked (a run checks every due feed in the
        # database, so one may also check feeds the other added before it started)
        assert {r.path for r in server.requests} == {f"/f{n}.xml" for n in range(32)}
        store = SqliteStore(db)
        assert sum(1 for f in store.list_feeds() if f.last_result == "parsed") == 32
        store.close()


@pytest.mark.slow
def test_a_host_answering_503_gets_one_request_at_a_time(tmp_path: Path) -> None:
    # Given 24 feeds on one host that answers every request 503 (no Retry-After)
    with running_feed_server(extra_hosts=HOSTS) as server:
        urls = []
        for n in range(24):
            server.route(f"/u{n}.xml", Delayed(0.02, Serve(b"busy", status=503)))
            urls.append(server.url(f"/u{n}.xml", host=HOSTS[0]))
        (path := tmp_path / "feeds.txt").write_text("\n".join(urls) + "\n")
        # When one `earshot run` checks them
        _finish(_earshot(tmp_path / "earshot.db", "run", "--feeds", str(path), "--json"))
        # Then the first requests went out two at a time, and once 503s came back, one at a time
        arrived = [r.in_flight for r in server.requests]
        assert len(arrived) == 24
        assert max(arrived[:2]) <= 2
        # A request already on its way as the first 503 arrived may overlap it; after that, none.
        assert max(arrived[4:]) == 1, [(r.path, r.in_flight) for r in server.requests]


# ------------------------------------------------------------------ the deployed path
@pytest.mark.slow
def test_parallel_fetch_workers_never_exceed_a_hosts_limit() -> None:
    with running_feed_server(extra_hosts=HOSTS) as server, EmbeddedBackend(extra_env={
        "EARSHOT_ALLOWED_HOSTS": ",".join(server.authorities),
        "EARSHOT_MAX_REQUESTS_PER_HOST": "2", "EARSHOT_HOST_CONCURRENCY_CEILING": "2",
        "EARSHOT_HOST_WAIT_S": "300",  # this test waits for slots rather than re-queue
    }) as stack:
        serialize_dynamodb_calls(runtime.store().client)  # type: ignore[attr-defined]
        # Given 4 batches of 6 checks, all on two hosts
        checks = []
        for n in range(24):
            server.route(f"/w{n}.xml", Delayed(0.05, Serve(_feed(n))))
            feed = new_feed(server.url(f"/w{n}.xml", host=HOSTS[n % 2]), NOW - timedelta(minutes=1))
            runtime.store().add_feed(feed)
            checks.append(FeedCheck.from_state(feed))
        events = [_sqs_event(checks[i:i + 6]) for i in range(0, 24, 6)]
        # When four worker invocations run at once (four Lambdas)
        responses: list[dict] = []
        threads = [threading.Thread(target=lambda e=e: responses.append(stack.invoke("fetch_worker", e)))
                   for e in events]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Then each host saw at most 2 requests in flight from all of them together
        assert max(server.max_in_flight.values()) <= 2, server.max_in_flight
        assert all(r["batchItemFailures"] == [] for r in responses)
        assert all(runtime.store().get_feed(c.feed_id).last_result == "parsed" for c in checks)


def test_a_worker_requeues_a_check_whose_host_stays_busy() -> None:
    with running_feed_server() as server, EmbeddedBackend(extra_env={
        "EARSHOT_ALLOWED_HOSTS": ",".join(server.authorities), "EARSHOT_HOST_WAIT_S": "0",
    }) as stack:
        # Given every slot of the host held by other workers
        url = server.route("/held.xml", Serve())
        feed = new_feed(url, NOW - timedelta(minutes=1))
        runtime.store().add_feed(feed)
        for _ in range(6):
            runtime.store().acquire_host_slot("127.0.0.1", limit=6, lease_s=600, now=datetime.now(UTC))
        # When the worker gets its check
        response = stack.invoke("fetch_worker", _sqs_event([FeedCheck.from_state(feed)]))
        # Then nothing is fetched; the record succeeds because the check is queued again, delayed
        assert response["batchItemFailures"] == []
        assert server.requests == []
        sqs = runtime.fetch_queue().client  # type: ignore[attr-defined]
        attributes = sqs.get_queue_attributes(QueueUrl=stack.settings.fetch_queue_url,
                                              AttributeNames=["ApproximateNumberOfMessagesDelayed"])["Attributes"]
        assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


def _sqs_event(checks: list[FeedCheck]) -> dict:
    template = sample_event("fetch_worker_batch")["Records"][0]
    return {"Records": [{**template, "messageId": f"m-{c.feed_id}", "body": c.model_dump_json(exclude_none=True)}
                        for c in checks]}


def test_a_run_has_as_many_requests_in_flight_as_its_concurrency(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # Given 12 feeds, each on its own host, each answering after a second
    from earshot_local.cli import main

    hosts = [f"127.0.0.{n}" for n in range(10, 22)]
    with running_feed_server(extra_hosts=hosts) as server:
        urls = []
        for n, host in enumerate(hosts):
            server.route(f"/f{n}.xml", Delayed(1.0, Serve(_feed(n))))
            urls.append(server.url(f"/f{n}.xml", host=host))
        (tmp_path / "feeds.txt").write_text("\n".join(urls) + "\n")
        # When one run checks them with 12 requests in flight (more threads than the
        # deployed worker's default pool of 8 connections)
        assert main(["--db", str(tmp_path / "e.db"), "run", "--feeds", str(tmp_path / "feeds.txt"),
                     "--concurrency", "12", "--json"]) == 0
        report = json.loads(capsys.readouterr().out.splitlines()[-1])
    # Then all 12 hosts were asked at once: no thread queued for a connection (a wait the
    # hosts' pace would have counted as their latency)
    assert report["parsed"] == 12
    assert server.max_total_in_flight == 12
    assert set(server.max_in_flight.values()) == {1}
