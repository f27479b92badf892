"""Ingest end to end under moto: the real dispatcher and worker handlers, fed events/*.json,
fetching from a loopback feed server, storing into the table built from template.yaml."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from earshot import runtime
from earshot.ingest.refresh import FeedCheck, new_feed
from tests.support.aws_stack import EmbeddedBackend, sample_event
from tests.support.feedserver import FeedServer, Redirect, Serve, Validated

NOW = datetime.now(UTC)


def rss(*items: tuple[str, str], title: str = "Loopback Radio") -> bytes:
    body = "".join(
        f"<item><title>{t}</title><guid>{g}</guid><pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate>"
        f"<enclosure url='https://cdn.example/{g}.mp3' type='audio/mpeg' length='1'/></item>"
        for g, t in items
    )
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>{title}</title>{body}</channel></rss>".encode()


@pytest.fixture
def stack(feed_server: FeedServer) -> Iterator[EmbeddedBackend]:
    """Embedded stack whose fetcher may reach exactly this test's loopback server."""
    allowed = ",".join(feed_server.authorities)
    with EmbeddedBackend(extra_env={"EARSHOT_ALLOWED_HOSTS": allowed}) as backend:
        yield backend


def add(url: str) -> str:
    feed = new_feed(url, NOW - timedelta(minutes=1))
    runtime.store().add_feed(feed)
    return feed.feed_id


def run_cycle(stack: EmbeddedBackend) -> list[dict]:
    """Dispatcher (forced, as `earshot run` does) then the worker until the queue is empty."""
    stack.invoke("dispatcher", {**sample_event("dispatcher_scheduled"), "force": True})
    return stack.drain_queue("fetch_worker", stack.settings.fetch_queue_url)


def host_slot_calls() -> Counter[str]:
    """DynamoDB calls on host slot items (politeness leases), by operation, from now on."""
    seen: Counter[str] = Counter()

    def note(params: dict, model: Any, **_: Any) -> None:
        pk = (params.get("Key") or {}).get("pk", {}).get("S") \
            or (params.get("ExpressionAttributeValues") or {}).get(":pk", {}).get("S", "")
        if pk.startswith("HOST#"):
            seen[model.name] += 1

    # before-parameter-build sees the API parameters (before-call sees the serialized request).
    runtime.store().client.meta.events.register("before-parameter-build.dynamodb", note)  # type: ignore[attr-defined]
    return seen


def feed(feed_id: str):
    return runtime.store().get_feed(feed_id)


def episode_ids(feed_id: str) -> set[str]:
    return {e.id for e in runtime.store().list_episodes(feed_id)}


def test_dispatcher_queues_only_due_feeds(stack: EmbeddedBackend, feed_server: FeedServer) -> None:
    # Given one due feed, one checked later and one gone
    repo = runtime.store()
    due_id = add(feed_server.url("/due.xml"))
    later = new_feed(feed_server.url("/later.xml"), NOW).model_copy(update={"next_check_at": NOW + timedelta(hours=2)})
    gone = new_feed(feed_server.url("/gone.xml"), NOW).model_copy(update={"status": "gone", "next_check_at": None})
    repo.add_feed(later)
    repo.add_feed(gone)
    # When the scheduled event arrives
    result = stack.invoke("dispatcher", sample_event("dispatcher_scheduled"))
    # Then only the due feed is queued, with everything the worker needs
    assert result["queued"] == 1
    event = stack.receive_sqs_event(stack.settings.fetch_queue_url)
    (record,) = event["Records"]
    check = FeedCheck.model_validate_json(record["body"])
    assert (check.feed_id, check.url) == (due_id, feed_server.url("/due.xml"))


def test_cycle_stores_episodes_and_records_failures_as_data(stack: EmbeddedBackend, feed_server: FeedServer) -> None:
    ok = add(feed_server.route("/ok.xml", Validated(rss(("a", "One"), ("b", "Two")))))
    missing = add(feed_server.route("/missing.xml", Serve(b"nope", status=404)))
    gone = add(feed_server.route("/gone.xml", Serve(b"", status=410)))
    # On a host of its own: a 429 pauses its whole host (Retry-After), and the others share 127.0.0.1.
    feed_server.route("/busy.xml", Serve(b"", status=429, headers={"Retry-After": "7200"}))
    limited = add(feed_server.url("/busy.xml", alt=True))
    html = add(feed_server.route("/page.html", Serve(b"<!doctype html><html><body>hi</body></html>",
                                                       headers={"Content-Type": "text/html"})))

    responses = run_cycle(stack)

    assert all(r["batchItemFailures"] == [] for r in responses), "feed failures are data, not retries"
    assert episode_ids(ok) == {"a", "b"}
    assert feed(ok).status == "active" and feed(ok).etag == '"v1"' and feed(ok).title == "Loopback Radio"
    assert (feed(missing).status, feed(missing).last_error_kind, feed(missing).error_count) == ("error", "http_404", 1)
    assert feed(gone).status == "gone" and feed(gone).next_check_at is None
    assert feed(limited).last_error_kind == "http_429"
    assert feed(limited).next_check_at >= feed(limited).last_checked_at + timedelta(seconds=7200)
    assert feed(html).last_error_kind == "not_a_feed"
    due = {f.feed_id for f in runtime.store().due_feeds(NOW, include_not_due=True)}
    assert gone not in due and {ok, missing, limited, html} <= due, "errors back off, they are never dropped"


def test_warm_cycle_parses_nothing_and_writes_once_per_feed(stack: EmbeddedBackend, feed_server: FeedServer) -> None:
    ids = [add(feed_server.route(f"/f{i}.xml", Validated(rss((f"g{i}", f"Episode {i}"))))) for i in range(4)]
    same_body = add(feed_server.route("/novalidators.xml", Serve(rss(("n", "No validators")))))
    run_cycle(stack)

    stack.reset_counters()
    slot_calls = host_slot_calls()
    run_cycle(stack)

    results = {feed(i).last_result for i in ids}
    assert results == {"not_modified"}
    assert feed(same_body).last_result == "unchanged"
    calls = stack.aws_calls - slot_calls
    writes = {op: n for op, n in calls.items() if op in ("PutItem", "UpdateItem", "BatchWriteItem")}
    assert writes == {"UpdateItem": 5}, "one state write per feed, no episode writes"
    assert "Query" in calls and calls["Query"] == runtime.settings().due_shards, \
        "only the dispatcher reads (one query per due shard); the worker reads nothing for unchanged feeds"
    # The host's slot leases: taken once for the batch of its feeds, not per request.
    assert set(slot_calls) <= {"UpdateItem", "Query"} and 2 <= slot_calls["UpdateItem"] <= 2 * 5
    assert len(feed_server.requests_to("/f0.xml")) == 2
    assert feed_server.requests_to("/f0.xml")[-1].headers["if-none-match"] == '"v1"'


def test_truncated_feed_never_loses_stored_episodes(stack: EmbeddedBackend, feed_server: FeedServer) -> None:
    fid = add(feed_server.route("/t.xml", Validated(rss(("e1", "One"), ("e2", "Two"), ("e3", "Three")))))
    run_cycle(stack)
    # The feed now lists only its newest episode plus a new one
    feed_server.route("/t.xml", Validated(rss(("e4", "Four"), ("e3", "Three (fixed title)")), etag='"v2"'))
    run_cycle(stack)
    episodes = {e.id: e for e in runtime.store().list_episodes(fid)}
    assert set(episodes) == {"e1", "e2", "e3", "e4"}
    assert episodes["e3"].title == "Three (fixed title)", "changed episodes are updated"
    assert feed(fid).episode_count == 4


def test_permanent_redirect_is_persisted_temporary_is_not(stack: EmbeddedBackend, feed_server: FeedServer) -> None:
    feed_server.route("/new.xml", Validated(rss(("x", "X"))))
    moved = add(feed_server.route("/old.xml", Redirect("/new.xml", status=301)))
    temp = add(feed_server.route("/temp.xml", Redirect("/new.xml", status=302)))
    run_cycle(stack)
    assert feed(moved).url == feed_server.url("/new.xml")
    assert feed(temp).url == feed_server.url("/temp.xml")


def _worker_event(feed_server: FeedServer, *ids: str) -> dict:
    """events/fetch_worker_batch.json pointed at this test's server and feeds."""
    event = json.loads(json.dumps(sample_event("fetch_worker_batch")).replace(
        "127.0.0.1:8765", f"127.0.0.1:{feed_server.port}"))
    for record, fid in zip(event["Records"], ids, strict=True):
        body = json.loads(record["body"])
        body["feed_id"] = fid
        record["body"] = json.dumps(body)
    return event


def test_same_batch_delivered_twice_stores_each_episode_once(stack: EmbeddedBackend, feed_server: FeedServer) -> None:
    feed_server.route("/feeds/midstream-minute.xml", Serve(rss(("m1", "One"), ("m2", "Two"))))
    good = add(feed_server.url("/feeds/midstream-minute.xml"))
    missing = add(feed_server.url("/feeds/does-not-exist.xml"))
    event = _worker_event(feed_server, good, missing)

    first = stack.invoke("fetch_worker", event)
    second = stack.invoke("fetch_worker", event)

    assert first == second == {"batchItemFailures": []}
    assert episode_ids(good) == {"m1", "m2"}
    assert feed(good).episode_count == 2, "re-delivery counts nothing twice"
    assert feed(missing).error_count == 1 and feed(missing).last_error_kind == "http_404"


def test_infrastructure_failure_fails_only_its_record(stack: EmbeddedBackend, feed_server: FeedServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    feed_server.route("/feeds/midstream-minute.xml", Serve(rss(("m1", "One"))))
    good = add(feed_server.url("/feeds/midstream-minute.xml"))
    missing = add(feed_server.url("/feeds/does-not-exist.xml"))
    event = _worker_event(feed_server, good, missing)
    event["Records"].append({**event["Records"][1], "messageId": "malformed", "body": "{not json"})

    def refuse(*_args, **_kwargs):
        raise RuntimeError("DynamoDB unavailable")

    monkeypatch.setattr(runtime.store(), "put_new_episodes", refuse)
    response = stack.invoke("fetch_worker", event)

    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed == {event["Records"][0]["messageId"], "malformed"}
    assert feed(missing).last_error_kind == "http_404", "the other feed in the batch was still checked"


def test_routine_check_never_rewrites_what_the_type_index_projects(stack: EmbeddedBackend, feed_server: FeedServer,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``type`` index is keyed by the url and projects the title: a routine check leaves
    them out of its UpdateItem so it does not rewrite them in that index."""
    fid = add(feed_server.route("/f.xml", Validated(rss(("a", "A")))))
    run_cycle(stack)
    client = runtime.store().client
    updates: list[dict] = []
    real_update = client.update_item
    monkeypatch.setattr(client, "update_item", lambda **kw: updates.append(kw) or real_update(**kw))

    run_cycle(stack)  # 304: nothing about the feed's identity changed

    (update,) = [u for u in updates if u["Key"]["pk"]["S"] == f"FEED#{fid}"]
    written = set(update["ExpressionAttributeNames"].values())
    assert written.isdisjoint({"url", "title", "type_pk", "type_sk"}), written
    assert {"last_checked_at", "next_check_at", "last_result"} <= written
    assert feed(fid).title == "Loopback Radio" and feed(fid).status == "active", "left as they were"
