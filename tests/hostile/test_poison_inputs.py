"""Poison inputs that once stopped real work: an item field too big to store, a permanent
redirect to a URL too long to be a key, feed URLs that are not feeds, enclosure tokens that
rotate on every fetch, feed lists in other encodings, impossible digest weeks and email
addresses past RFC 5321's limits.

Each runs through the real ``fetch_worker`` handler (moto DynamoDB, one SQS batch with two
healthy feeds beside it), the real ``api`` handler or the CLI; docs/reliability.md has a
row for each.
"""

from __future__ import annotations

import codecs
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest

from earshot import runtime
from earshot.bounds import MAX_FEED_URL_BYTES, MAX_GUID_CHARS, MAX_URL_BYTES, digest
from earshot.models import Episode, FeedState
from earshot.settings import get_settings
from earshot.store.dynamodb import keys
from earshot.store.dynamodb.base import deserialize, serialize
from earshot_local.cli import main
from earshot_local.functions import sample_event
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import LocalSettings
from tests.hostile.conftest import add_feed, deliver, episodes, make_stack, stored
from tests.support.aws_stack import REGION, EmbeddedBackend
from tests.support.feedserver import FEED_TYPE, Exchange, FeedServer, Redirect, Serve

KB = 1024


def rss(items: str, *, title: str = "Poison Radio") -> bytes:
    return (f"<?xml version='1.0' encoding='UTF-8'?>\n<rss version='2.0'><channel><title>{title}</title>"
            f"{items}</channel></rss>").encode()


def item(guid: str, title: str, *, audio: str | None = None, audio_type: str = "audio/mpeg",
         link: str | None = None) -> str:
    enclosure = f"<enclosure url='{audio}' type='{audio_type}' length='100'/>" if audio else ""
    linked = f"<link>{link}</link>" if link else ""
    return (f"<item><title>{title}</title><guid isPermaLink='false'>{guid}</guid>"
            f"<pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate>{enclosure}{linked}</item>")


HUGE_GUID = "g" * (500 * KB)
LONG_LINK = "https://example.com/" + "l" * (MAX_URL_BYTES + 100)
LONG_AUDIO = "https://cdn.example.com/" + "a" * (MAX_URL_BYTES + 100) + ".mp3"
OVERSIZED = rss(
    item("ok-1", "Fine one", audio="https://cdn.example.com/1.mp3")
    + item(HUGE_GUID, "The 500 KB guid", audio="https://cdn.example.com/big.mp3")
    + item("long-link", "A link too long", link=LONG_LINK)
    + item("long-audio", "An enclosure too long", audio=LONG_AUDIO)
    + item("long-type", "A type too long", audio="https://cdn.example.com/t.mp3", audio_type="audio/" + "x" * 2000)
    + item("ok-2", "Fine two", audio="https://cdn.example.com/2.mp3")
)


@pytest.fixture(scope="module")
def stack(server: FeedServer) -> Iterator[EmbeddedBackend]:
    with make_stack(server) as backend:
        yield backend


def healthy_pair(server: FeedServer, prefix: str) -> list[tuple[FeedState, set[str]]]:
    out = []
    for n, alt in ((1, False), (2, True)):
        ids = {f"{prefix.strip('/')}-h{n}-{k}" for k in range(3)}
        server.route(f"{prefix}/healthy{n}.xml", Serve(rss("".join(item(i, f"Healthy {i}") for i in sorted(ids)))))
        out.append((add_feed(server.url(f"{prefix}/healthy{n}.xml", alt=alt)), ids))
    return out


def assert_healthy(pair: list[tuple[FeedState, set[str]]]) -> None:
    for feed, ids in pair:
        assert set(episodes(feed.feed_id)) == ids and stored(feed.feed_id).status == "active"


# ------------------------------------------------------------------ an item too big to store
def test_a_500_KB_guid_stores_the_rest_of_its_feed_with_a_typed_warning(
        stack: EmbeddedBackend, server: FeedServer) -> None:
    # Given a feed whose items carry a 500 KB guid, a link, an enclosure URL and an
    # enclosure type each past its bound, queued with two healthy feeds
    hostile = add_feed(server.route("/oversized/feed", Serve(OVERSIZED)))
    healthy = healthy_pair(server, "/oversized")
    # When the real worker handler runs the batch
    delivery = deliver(stack, [hostile] + [f for f, _ in healthy])
    # Then no record failed, the healthy feeds are whole
    assert delivery.response == {"batchItemFailures": []}
    assert_healthy(healthy)
    # And every item of the hostile feed is stored, each field within its bound
    state = stored(hostile.feed_id)
    assert (state.status, state.last_error_kind, state.last_result) == ("active", None, "parsed")
    stored_episodes = {e.title: e for e in episodes(hostile.feed_id).values()}
    assert set(stored_episodes) == {"Fine one", "The 500 KB guid", "A link too long", "An enclosure too long",
                                    "A type too long", "Fine two"}
    big = stored_episodes["The 500 KB guid"]
    assert big.guid == digest(HUGE_GUID) == big.id, "the guid's digest is its identity, as before"
    assert big.audio_url == "https://cdn.example.com/big.mp3"
    assert stored_episodes["A link too long"].link is None
    assert stored_episodes["An enclosure too long"].audio_url is None
    assert stored_episodes["A type too long"].audio_type is None
    assert stored_episodes["A type too long"].audio_url == "https://cdn.example.com/t.mp3"
    # And the feed says what was cut, with a typed warning kind
    assert state.warning_kinds == ["oversized_field"]
    said = "\n".join(state.parse_warnings or [])
    assert f"guid was over {MAX_GUID_CHARS:,} characters: stored as its digest" in said
    assert "link was over" in said and "audio_url was over" in said and "audio_type was over" in said
    # And a second check changes nothing (the digest is stable)
    server.route("/oversized/feed", Serve(OVERSIZED + b"\n"))  # new bytes, same items
    assert deliver(stack, [hostile]).response == {"batchItemFailures": []}
    assert set(episodes(hostile.feed_id)) == {e.id for e in stored_episodes.values()}


def test_earshot_run_stores_the_rest_of_a_feed_with_a_500_KB_guid(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        feed_server: FeedServer) -> None:
    monkeypatch.chdir(tmp_path)
    url = feed_server.route("/oversized.xml", Serve(OVERSIZED))
    healthy = feed_server.route("/healthy.xml", Serve(rss(item("h-1", "Healthy"))))
    assert main(["feeds", "add", url, healthy]) == 0
    capsys.readouterr()
    assert main(["run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == {} and report["new_episodes"] == 7
    assert main(["feeds", "list", "--json"]) == 0
    feeds = {f["url"]: f for f in map(json.loads, capsys.readouterr().out.splitlines())}
    assert feeds[url]["episode_count"] == 6 and feeds[url]["warning_kinds"] == ["oversized_field"]
    assert feeds[healthy]["warning_kinds"] == [] and feeds[healthy]["episode_count"] == 1
    assert main(["feeds", "list"]) == 0
    assert "warning: oversized_field: 1 item's guid was over" in capsys.readouterr().out


# ------------------------------------------------------------------ URLs that may not be stored
def test_a_301_to_a_1100_character_url_keeps_the_old_url_and_the_store_usable(
        stack: EmbeddedBackend, server: FeedServer) -> None:
    # Given a feed that moved permanently to a URL longer than a key may be
    long_path = "/moved-to/" + "x" * 1_100 + ".xml"
    server.route(long_path, Serve(rss(item("moved-1", "Moved one"))))
    hostile = add_feed(server.route("/long-301/feed", Redirect(long_path, status=301)))
    healthy = healthy_pair(server, "/long-301")
    # When the worker checks it twice
    for _ in range(2):
        assert deliver(stack, [hostile] + [f for f, _ in healthy]).response == {"batchItemFailures": []}
    # Then it keeps its old URL, its episodes are stored, and it says why (typed)
    state = stored(hostile.feed_id)
    assert state.url == hostile.url and len(state.url.encode()) <= MAX_FEED_URL_BYTES
    assert (state.status, state.last_error_kind) == ("active", None)
    assert set(episodes(hostile.feed_id)) == {"moved-1"}
    assert state.warning_kinds == ["url_not_kept"]
    assert "moved permanently" in (state.parse_warnings or [""])[0]
    # And every feed can still be listed and checked
    assert hostile.feed_id in {f.feed_id for f in runtime.store().list_feeds()}
    assert_healthy(healthy)


def test_a_301_to_a_good_url_still_moves_the_feed(stack: EmbeddedBackend, server: FeedServer) -> None:
    server.route("/moved-ok/new.xml", Serve(rss(item("ok-moved", "Moved"))))
    feed = add_feed(server.route("/moved-ok/old.xml", Redirect("/moved-ok/new.xml", status=308)))
    assert deliver(stack, [feed]).response == {"batchItemFailures": []}
    state = stored(feed.feed_id)
    assert state.url.endswith("/moved-ok/new.xml") and not state.warning_kinds


NOT_FEEDS = {
    "1100-characters": ("https://feeds.example.com/" + "a" * 1_100, "bytes long; feed URLs are kept to 1,000"),
    "javascript": ("javascript:alert(1)", "not an http(s) URL (javascript:)"),
    "data": ("data:text/xml,<rss/>", "not an http(s) URL (data:)"),
    "gopher": ("gopher://example.com/1", "not an http(s) URL (gopher:)"),
    "credentials": ("https://user:pw@example.com/feed", "credentials"),
    "no-host": ("https:///feed.xml", "no host"),
}


def test_feeds_add_refuses_each_url_that_may_not_be_stored_and_adds_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        feed_server: FeedServer) -> None:
    monkeypatch.chdir(tmp_path)
    good = feed_server.route("/good.xml", Serve(rss(item("g-1", "Good"))))
    urls = [url for url, _ in NOT_FEEDS.values()]
    assert main(["feeds", "add", *urls[:3], good, *urls[3:]]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    for url, reason in NOT_FEEDS.values():
        assert any(reason in line for line in captured.err.splitlines()), (url, captured.err)
    assert "1 added, 0 already there, 6 refused" in captured.out
    assert main(["feeds", "list", "--json"]) == 0
    assert [json.loads(line)["url"] for line in capsys.readouterr().out.splitlines()] == [good]


def test_feeds_import_refuses_bad_lines_with_reasons_and_continues(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    outlines = "".join(f'<outline type="rss" text="{name}" xmlUrl="{url.replace("&", "&amp;").replace("<", "&lt;")}"/>'
                       for name, (url, _) in NOT_FEEDS.items())
    (tmp_path / "subs.opml").write_text(
        '<?xml version="1.0"?><opml version="2.0"><body>'
        '<outline type="rss" text="first" xmlUrl="https://a.example/feed.xml"/>'
        f'{outlines}'
        '<outline type="rss" text="file" xmlUrl="file:///etc/passwd"/>'
        '<outline type="rss" text="crlf" xmlUrl="https://b.example/&#13;&#10;feed.xml"/>'
        '<outline type="rss" text="last" xmlUrl="https://c.example/feed.xml"/>'
        '</body></opml>')
    assert main(["feeds", "import", "subs.opml"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert captured.out.splitlines()[-1] == "subs.opml: 2 added, 0 already there, 8 refused"
    assert "refused file:///etc/passwd: not an http(s) URL (file:)" in captured.err
    assert "refused https://b.example/\\r\\nfeed.xml: not a URL (a line break at position 18)" in captured.err
    assert main(["feeds", "list"]) == 0
    listing = capsys.readouterr().out
    assert "\r" not in listing and "a.example" in listing and "c.example" in listing


# ------------------------------------------------------------------ feed lists in other encodings
OPML_TITLES = {"latin-1": "Café über", "utf-16": "Ünïcödé ☕", "shift_jis": "日本語のポッドキャスト"}


def _opml(encoding: str, declared: str) -> bytes:
    title = OPML_TITLES[encoding]
    text = (f'<?xml version="1.0" encoding="{declared}"?>\n<opml version="2.0"><head><title>{title}</title></head>'
            f'<body><outline type="rss" text="{title}" xmlUrl="https://{encoding.replace("_", "-")}.example/feed.xml"/>'
            f'<outline type="rss" text="{title} 2" xmlUrl="https://{encoding.replace("_", "-")}.example/2.xml"/>'
            '</body></opml>')
    if encoding == "utf-16":
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    return text.encode(encoding)


@pytest.mark.parametrize(("encoding", "declared"), [("latin-1", "ISO-8859-1"), ("utf-16", "UTF-16"),
                                                    ("shift_jis", "Shift_JIS")])
def test_opml_in_other_encodings_imports(encoding: str, declared: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "subs.opml").write_bytes(_opml(encoding, declared))
    assert main(["feeds", "import", "subs.opml"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert captured.out.splitlines()[-1] == "subs.opml: 2 added, 0 already there, 0 refused"


def test_an_opml_file_that_lies_about_its_encoding_is_one_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.opml").write_bytes(b'<?xml version="1.0" encoding="klingon"?><opml/>')
    assert main(["feeds", "import", "bad.opml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "klingon" in err and "Traceback" not in err


# ------------------------------------------------------------------ impossible weeks
@pytest.mark.parametrize("week", ["2025-W53", "9999-W52", "2025-W00", "0000-W01"])
@pytest.mark.parametrize("command", [["digest", "run"], ["digest", "preview", "mlp"]], ids=["run", "preview"])
def test_an_impossible_digest_week_is_one_clear_cli_error(
        week: str, command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    extra = ["--out", str(tmp_path / "out")] if command[1] == "preview" else []
    assert main([*command, *extra, "--week", week]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err and week in err


def test_the_digest_handler_refuses_an_impossible_week_before_any_work(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with LocalRuntime(LocalSettings(EARSHOT_DB=tmp_path / "db", EARSHOT_OUTBOX=tmp_path / "out")) as local:
        with pytest.raises(ValidationError, match="2025 has weeks W01 to W52"):
            local.invoke("digest", {**sample_event("digest_scheduled"), "week": "2025-W53"})


# ------------------------------------------------------------------ addresses past RFC 5321
@pytest.mark.parametrize(("email", "status"), [
    ("a" * 64 + "@example.com", 202),
    ("a" * 65 + "@example.com", 400),
    ("a" * 60 + "@" + ".".join(["d" * 60] * 4) + ".com", 400),  # 311 characters: past 254
])
def test_subscribe_refuses_an_address_past_rfc_5321_limits(email: str, status: int, tmp_path: Path) -> None:
    from earshot.models import Topic
    from earshot.store.port import parse_iso

    with LocalRuntime(LocalSettings(EARSHOT_DB=tmp_path / "db", EARSHOT_OUTBOX=tmp_path / "out")) as local:
        now = parse_iso("2026-11-26T00:00:00Z")
        local.store.create_topic(Topic(slug="mlp", name="MLPs", query="MLP", created_at=now, updated_at=now))
        event = sample_event("api_subscribe")
        body = json.loads(event["body"])
        event["body"] = json.dumps({**body, "email": email, "topic": "mlp"})
        response = local.invoke("api", event)
        assert response["statusCode"] == status, response["body"]
        if status == 400:  # the reason, said to the person who typed it
            assert "at most 64" in response["body"] or "too long" in response["body"]


# ------------------------------------------------------------------ token churn
class RotatingTokens:
    """A feed of ``count`` episodes whose enclosure URLs carry a new token on every request
    (what some hosts do for attribution); ``retitled`` episodes (the first ones) get a new
    title, a real change."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.requests = itertools.count()
        self.retitled = 0

    def __call__(self, exchange: Exchange) -> None:
        token = next(self.requests)
        items = "".join(
            item(f"churn-{i}", f"Episode {i}" + (" (remastered)" if i < self.retitled else ""),
                 audio=f"https://cdn.example.com/ep{i}.mp3?token={token}-{i}&amp;expires={1_900_000_000 + token}")
            for i in range(self.count))
        exchange.send_bytes(200, rss(items, title="Churn Radio"), dict(FEED_TYPE))


def stored_episode(feed_id: str, episode_id: str) -> Episode:
    """One stored episode, read by its key (reading 5,000 back through moto takes a minute)."""
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=get_settings().table_name, Key=serialize(keys.episode(feed_id, episode_id)))["Item"]
    data = deserialize(item)
    return Episode.model_validate({k: v for k, v in data.items() if k in Episode.model_fields})


def stored_episode_count(feed_id: str) -> int:
    pages = boto3.client("dynamodb", region_name=REGION).get_paginator("query").paginate(
        TableName=get_settings().table_name, Select="COUNT",
        KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
        ExpressionAttributeValues={":p": {"S": keys.feed_pk(feed_id)}, ":e": {"S": keys.EP_PREFIX}})
    return sum(page["Count"] for page in pages)


@contextmanager
def dynamodb_writes() -> Iterator[Counter[str]]:
    """Count the DynamoDB write requests every client of the stack makes meanwhile (and
    the episode items in them), and its batch reads."""
    counts: Counter[str] = Counter()

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        if name == "BatchWriteItem":
            counts[name] += 1
            counts["episode items written"] += sum(
                1 for requests in params["RequestItems"].values() for r in requests
                if r.get("PutRequest", {}).get("Item", {}).get("sk", {}).get("S", "").startswith("EP#"))
        elif name == "BatchGetItem":
            counts[name] += 1
        elif name in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"):
            key = params.get("Key") or params.get("Item") or {}
            if key.get("pk", {}).get("S", "").startswith("HOST#"):
                counts["host slot writes"] += 1  # the per-host lease, taken and given back
                return
            counts[name] += 1
            if key.get("sk", {}).get("S", "").startswith("EP#"):
                counts["episode items written"] += 1

    events = boto3._get_default_session()._session.get_component("event_emitter")
    events.register("before-parameter-build.dynamodb", record, unique_id="poison-write-counter")
    runtime.reset()  # clients built from now on carry the hook
    try:
        yield counts
    finally:
        events.unregister("before-parameter-build.dynamodb", unique_id="poison-write-counter")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_rotating_enclosure_tokens_rewrite_nothing_and_real_changes_are_batched(
        stack: EmbeddedBackend, server: FeedServer) -> None:
    feed_behaviour = RotatingTokens(5_000)
    feed = add_feed(server.route("/churn/feed.xml", feed_behaviour))
    # Given a 5,000-item feed stored once
    assert deliver(stack, [feed]).response == {"batchItemFailures": []}
    assert stored_episode_count(feed.feed_id) == 5_000 == stored(feed.feed_id).episode_count
    first = stored_episode(feed.feed_id, "churn-7")
    assert first.audio_url is not None and "token=0-7" in first.audio_url
    # When it is checked again and every enclosure URL carries a new token
    with dynamodb_writes() as writes:
        assert deliver(stack, [feed]).response == {"batchItemFailures": []}
    # Then no episode is written again: the feed's state is the only write
    assert writes["episode items written"] == 0, writes
    assert writes["UpdateItem"] == 1 and writes["BatchWriteItem"] == 0, writes
    assert stored(feed.feed_id).last_result == "parsed"
    # And the stored enclosure URL is the one first seen (it names the same file)
    assert stored_episode(feed.feed_id, "churn-7").audio_url == first.audio_url

    # When 1,000 episodes really change (a new title each)
    feed_behaviour.retitled = 1_000
    with dynamodb_writes() as writes:
        assert deliver(stack, [feed]).response == {"batchItemFailures": []}
    # Then those 1,000 are written in batches of 25, not one UpdateItem each
    assert writes["episode items written"] == 1_000
    assert writes["BatchWriteItem"] == 40 and writes["UpdateItem"] == 1, writes
    assert writes["BatchGetItem"] == 10, writes  # their first sightings, 100 keys a call
    after = stored_episode(feed.feed_id, "churn-7")
    assert after.title == "Episode 7 (remastered)" and after.audio_url != first.audio_url
    assert after.audio_url is not None and "token=2-7" in after.audio_url  # a real change brings the fresh URL
    assert stored_episode(feed.feed_id, "churn-1000").title == "Episode 1000"
