"""The storage contract: every behaviour of :class:`earshot.store.Store`, run against each
adapter (DynamoDB on the table built from template.yaml, under moto; SQLite on a temp
file). A behaviour that differs between them fails here."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from earshot import runtime
from earshot.ingest.refresh import FeedCheck, new_feed, refresh_feed
from earshot.mail import tokens
from earshot.models import (
    BackfillJob,
    CandidateExample,
    ConsentEvent,
    Cue,
    DiscoveryCandidate,
    Episode,
    FeedProvenance,
    FeedState,
    LeftOut,
    MatchedEpisode,
    RefreshOutcome,
    SegmentProgress,
    Subscriber,
    TokenRecord,
    Topic,
    Transcript,
    TranscriptMoment,
    TranscriptState,
)
from earshot.settings import Settings
from earshot.store import Store, feed_id_for
from earshot.store.archive import TranscriptArchive
from earshot.topics.matching import clear_topic_cache, match_new_episodes
from earshot_local.sqlite_store import SqliteStore
from tests.support.aws_stack import EmbeddedBackend, serialize_dynamodb_calls
from tests.support.bigfeed import TOPIC_WORD, generated_feed

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


@pytest.fixture(params=["dynamodb", "sqlite"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "dynamodb":
        with EmbeddedBackend():
            yield runtime.store()
    else:
        store = SqliteStore(tmp_path / "earshot.db")
        yield store
        store.close()


def test_feed_round_trip_and_due_index(repo: Store) -> None:
    due = new_feed("https://a.example/feed.xml", NOW)
    later = new_feed("https://b.example/feed.xml", NOW).model_copy(update={"next_check_at": NOW + timedelta(hours=3)})
    gone = new_feed("https://c.example/feed.xml", NOW).model_copy(update={"status": "gone", "next_check_at": None})
    for feed in (due, later, gone):
        assert repo.add_feed(feed)
    assert not repo.add_feed(due), "adding twice changes nothing"

    assert [f.url for f in repo.due_feeds(NOW)] == [due.url]
    assert sorted(f.url for f in repo.due_feeds(NOW, include_not_due=True)) == [due.url, later.url]
    assert sorted(f.url for f in repo.list_feeds()) == [due.url, later.url, gone.url]
    assert repo.get_feed(due.feed_id) == due


def test_save_feed_state_clears_validators_and_keeps_unset_fields(repo: Store) -> None:
    feed = new_feed("https://a.example/feed.xml", NOW).model_copy(update={"etag": '"v1"', "title": "A"})
    repo.add_feed(feed)
    update = FeedState(feed_id=feed.feed_id, url=feed.url, error_count=2, last_error_kind="timeout",
                       next_check_at=NOW + timedelta(hours=2))
    repo.save_feed_state(update)
    stored = repo.get_feed(feed.feed_id)
    assert stored.etag is None, "a validator the server stopped sending is forgotten"
    assert stored.created_at == NOW, "fields the update did not carry are kept"
    assert stored.error_count == 2 and stored.last_error_kind == "timeout"
    assert [f.next_check_at for f in repo.due_feeds(NOW + timedelta(hours=2))] == [NOW + timedelta(hours=2)]


def test_episodes_are_written_updated_and_never_deleted(repo: Store) -> None:
    feed = new_feed("https://a.example/feed.xml", NOW)
    repo.add_feed(feed)
    eps = [Episode(id=f"guid-{i}", title=f"Episode {i}", published=NOW - timedelta(days=i),
                   transcripts=(Transcript(url=f"https://a.example/{i}.vtt", type="text/vtt"),))
           for i in range(30)]
    repo.put_new_episodes(feed.feed_id, eps, NOW)
    hashes = repo.episode_hashes(feed.feed_id)
    assert hashes == {e.id: e.content_hash for e in eps}

    changed = eps[0].model_copy(update={"title": "Episode 0 (corrected)"})
    repo.update_changed_episodes(feed.feed_id, [changed], NOW + timedelta(days=1))
    stored = {e.id: e for e in repo.list_episodes(feed.feed_id)}
    assert len(stored) == 30
    assert stored["guid-0"].title == "Episode 0 (corrected)"
    assert stored["guid-3"] == eps[3].model_copy(update={"feed_id": feed.feed_id})


def test_due_feeds_come_most_overdue_first_across_shards(repo: Store) -> None:
    feeds = [new_feed(f"https://h{i}.example/feed.xml", NOW - timedelta(minutes=7 * i)) for i in range(12)]
    for feed in feeds:
        repo.add_feed(feed)
    due = [f.feed_id for f in repo.due_feeds(NOW)]
    assert due == [f.feed_id for f in sorted(feeds, key=lambda f: f.next_check_at)]
    check_fields = {"feed_id", "url", "status", "etag", "last_modified", "body_sha256", "error_count",
                    "interval_s", "title", "episode_count"}
    first = next(repo.due_feeds(NOW))
    assert check_fields <= set(first.model_dump(exclude_none=False))


def test_gone_feed_leaves_the_due_list_and_a_removed_feed_is_not_revived(repo: Store) -> None:
    feed = new_feed("https://a.example/feed.xml", NOW)
    repo.add_feed(feed)
    repo.save_feed_state(feed.model_copy(update={"status": "gone", "next_check_at": None}))
    assert list(repo.due_feeds(NOW, include_not_due=True)) == []
    assert repo.get_feed(feed.feed_id).status == "gone"
    ghost = new_feed("https://never-added.example/feed.xml", NOW)
    repo.save_feed_state(ghost)  # a check of a feed removed meanwhile
    assert repo.get_feed(ghost.feed_id) is None


def test_changed_episode_keeps_first_seen_and_redelivery_stores_once(repo: Store) -> None:
    feed = new_feed("https://a.example/feed.xml", NOW)
    repo.add_feed(feed)
    ep = Episode(id="g1", title="One", published=NOW)
    repo.put_new_episodes(feed.feed_id, [ep], NOW)
    repo.put_new_episodes(feed.feed_id, [ep], NOW + timedelta(hours=1))  # the same batch delivered twice
    repo.update_changed_episodes(feed.feed_id, [ep.model_copy(update={"title": "One!"})], NOW + timedelta(days=1))
    assert [e.title for e in repo.list_episodes(feed.feed_id)] == ["One!"]
    assert [e.id for e in repo.iter_all_episodes()] == ["g1"]


def _first_seen_at(repo: Store, feed_id: str, episode_id: str) -> str | None:
    if isinstance(repo, SqliteStore):
        return repo.first_seen_at(feed_id, episode_id)
    from earshot.store.dynamodb import keys
    from earshot.store.dynamodb.base import serialize

    item = repo.client.get_item(TableName=repo.table_name, Key=serialize(keys.episode(feed_id, episode_id)))  # type: ignore[attr-defined]
    return str(item["Item"]["first_seen_at"]["S"])


def test_many_changed_episodes_are_all_rewritten_each_keeping_its_first_sighting(repo: Store) -> None:
    # More than one batch of reads (100) and of writes (25), and one episode not stored yet
    feed = new_feed("https://a.example/feed.xml", NOW)
    repo.add_feed(feed)
    stored = [Episode(id=f"g{i:03d}", title=f"Episode {i}") for i in range(130)]
    repo.put_new_episodes(feed.feed_id, stored, NOW)
    later = NOW + timedelta(days=1)
    repo.update_changed_episodes(feed.feed_id, [e.model_copy(update={"title": e.title + "!"}) for e in stored], later)
    assert {e.title for e in repo.list_episodes(feed.feed_id)} == {f"Episode {i}!" for i in range(130)}
    assert {_first_seen_at(repo, feed.feed_id, e.id) for e in stored} == {"2026-11-26T12:00:00Z"}


def test_a_check_in_flight_when_its_feed_is_removed_writes_nothing(repo: Store) -> None:
    sample = Path(__file__).resolve().parents[2] / "samples" / "feeds" / "midstream-minute.xml"
    feed = new_feed(sample.as_uri(), NOW)
    repo.add_feed(feed)
    repo.create_topic(Topic(slug="mlp", name="MLPs", query="MLP", created_at=NOW, updated_at=NOW))
    check = FeedCheck.from_state(feed)  # queued, then the feed is removed before the worker runs
    assert repo.delete_feed(feed.feed_id)

    outcome = refresh_feed(check, repo=repo, settings=Settings(EARSHOT_ALLOW_LOCAL_FILES=True), now=NOW,
                           on_new_episodes=lambda f, new, changed: match_new_episodes(
                               repo, f, new + changed, changed_ids=[e.id for e in changed]))

    assert outcome.result == "removed" and outcome.new_episodes == 0
    assert repo.get_feed(feed.feed_id) is None and list(repo.iter_all_episodes()) == []
    assert repo.count_matches("mlp") == 0


# A feed of three refresh batches (parser.EPISODE_BATCH is 500), its guids repeating across them.
BIG_ITEMS = 1_100


def _refresh_big(repo: Store, path: Path, calls: list[tuple[int, int]]) -> RefreshOutcome:
    feed = repo.get_feed(feed_id_for(path.as_uri()))
    assert feed is not None

    def on_new_episodes(f: FeedState, new: list[Episode], changed: list[Episode]) -> int:
        calls.append((len(new), len(changed)))
        return match_new_episodes(repo, f, new + changed, changed_ids=[e.id for e in changed])

    return refresh_feed(FeedCheck.from_state(feed), repo=repo, settings=Settings(EARSHOT_ALLOW_LOCAL_FILES=True),
                        now=NOW, on_new_episodes=on_new_episodes)


def _big_feed_and_topic(repo: Store, tmp_path: Path) -> Path:
    path = tmp_path / "big.xml"
    path.write_bytes(generated_feed(BIG_ITEMS))
    repo.add_feed(new_feed(path.as_uri(), NOW))
    repo.create_topic(Topic(slug="pipes", name="Pipes", query=TOPIC_WORD, created_at=NOW, updated_at=NOW))
    clear_topic_cache()
    return path


def test_a_big_feed_is_stored_batch_by_batch_and_checked_again_writes_no_episode(
        repo: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _big_feed_and_topic(repo, tmp_path)
    written: list[tuple[str, int]] = []
    for name in ("put_new_episodes", "update_changed_episodes"):
        real = getattr(repo, name)
        monkeypatch.setattr(repo, name, lambda feed_id, episodes, now, _n=name, _real=real: (
            written.append((_n, len(episodes))), _real(feed_id, episodes, now))[1])
    calls: list[tuple[int, int]] = []

    first = _refresh_big(repo, path, calls)

    episodes = BIG_ITEMS - 1  # item 60 repeats item 5
    assert (first.result, first.new_episodes, first.episodes_seen) == ("parsed", episodes, episodes)
    # Batches of 500 items; the first lost the repeat of item 5.
    assert [n for n, _ in calls] == [499, 500, 100] and sum(c for _, c in calls) == 0
    assert written == [("put_new_episodes", n) for n, _ in calls]
    assert len(repo.episode_hashes(first.feed_id)) == episodes
    assert repo.count_matches("pipes") == 11  # items 0, 100, ... 1000: one in every batch

    # The same items in a different body: everything is diffed, nothing is written or matched.
    path.write_bytes(generated_feed(BIG_ITEMS, description="another channel description"))
    written.clear()
    calls.clear()
    again = _refresh_big(repo, path, calls)
    assert (again.result, again.new_episodes, again.changed_episodes, again.episodes_seen) == (
        "parsed", 0, 0, episodes)
    assert written == [] and calls == []
    assert repo.get_feed(again.feed_id).episode_count == episodes  # type: ignore[union-attr]


def test_a_check_that_fails_between_batches_is_done_again_in_full_by_the_next(
        repo: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _big_feed_and_topic(repo, tmp_path)
    real_put = repo.put_new_episodes
    puts: list[int] = []

    def failing_second_put(feed_id: str, episodes: list[Episode], now: datetime) -> None:
        puts.append(len(episodes))
        if len(puts) == 2:
            raise RuntimeError("the database went away")  # an infrastructure failure: it propagates
        real_put(feed_id, episodes, now)

    monkeypatch.setattr(repo, "put_new_episodes", failing_second_put)
    with pytest.raises(RuntimeError):
        _refresh_big(repo, path, [])
    feed_id = feed_id_for(path.as_uri())
    feed = repo.get_feed(feed_id)
    assert feed is not None and feed.body_sha256 is None and feed.last_result is None, "the feed state waits"
    # SQLite rolled the check back; DynamoDB kept the first batch (499 episodes), matched
    # before it was stored.
    kept = len(repo.episode_hashes(feed_id))
    assert kept in (0, 499)

    monkeypatch.setattr(repo, "put_new_episodes", real_put)
    retried = _refresh_big(repo, path, [])
    assert (retried.result, retried.new_episodes) == ("parsed", BIG_ITEMS - 1 - kept)
    assert len(repo.episode_hashes(feed_id)) == BIG_ITEMS - 1
    assert repo.get_feed(feed_id).episode_count == BIG_ITEMS - 1  # type: ignore[union-attr]
    assert repo.count_matches("pipes") == 11, "every episode matched, the first batch's too"


def _match(feed_id: str, episode_id: str, published: datetime | None, title: str = "") -> MatchedEpisode:
    return MatchedEpisode(feed_id=feed_id, episode_id=episode_id, podcast="P", title=title or episode_id,
                          published=published, reason="why")


def test_delete_feed_removes_its_episodes_and_matches_and_nothing_else(repo: Store) -> None:
    kept, removed = new_feed("https://a.example/feed.xml", NOW), new_feed("https://b.example/feed.xml", NOW)
    for feed in (kept, removed):
        repo.add_feed(feed)
        repo.put_new_episodes(feed.feed_id, [Episode(id=f"{feed.feed_id}-{i}", title="MLP") for i in range(30)], NOW)
    for slug in ("t1", "t2"):
        repo.create_topic(Topic(slug=slug, name=slug, query="MLP", created_at=NOW, updated_at=NOW))
        repo.replace_topic_matches(slug, [_match(f.feed_id, f"{f.feed_id}-{i}", NOW - timedelta(days=i))
                                          for f in (kept, removed) for i in range(3)])

    assert repo.delete_feed(removed.feed_id)
    assert not repo.delete_feed(removed.feed_id), "a second removal finds nothing"
    assert not repo.delete_feed("f-never-there")

    assert [f.url for f in repo.list_feeds()] == [kept.url]
    assert [f.url for f in repo.due_feeds(NOW, include_not_due=True)] == [kept.url]
    assert repo.get_feed(removed.feed_id) is None and repo.episode_hashes(removed.feed_id) == {}
    assert {e.feed_id for e in repo.iter_all_episodes()} == {kept.feed_id}
    assert len(repo.list_episodes(kept.feed_id)) == 30
    for slug in ("t1", "t2"):
        assert {m.feed_id for m in repo.list_matches(slug)} == {kept.feed_id}
        assert repo.count_matches(slug) == 3
    repo.save_feed_state(removed)  # a check that was in flight during the removal
    assert repo.get_feed(removed.feed_id) is None, "a removed feed is not revived"


def test_a_topic_keeps_the_senses_it_leaves_out(repo: Store) -> None:
    left_out = [LeftOut(term="MLP", label="layer, network, perceptron", episodes=22),
                LeftOut(term="MLP", label="pony, year, collector", episodes=10)]
    topic = Topic(slug="mlp", name="MLPs", query="MLP midstream", created_at=NOW, updated_at=NOW)
    assert repo.create_topic(topic.model_copy(update={"left_out": left_out}))
    assert repo.get_topic("mlp").left_out == left_out  # type: ignore[union-attr]
    assert repo.save_topic(topic)
    assert repo.get_topic("mlp").left_out == []  # type: ignore[union-attr]
    assert [t.left_out for t in repo.list_topics()] == [[]]


def test_topics_and_matches(repo: Store) -> None:
    topic = Topic(slug="mlp", name="MLPs", query="MLP", created_at=NOW, updated_at=NOW)
    assert repo.create_topic(topic) and not repo.create_topic(topic)
    assert repo.save_topic(topic.model_copy(update={"name": "MLPs!"}))
    assert not repo.save_topic(topic.model_copy(update={"slug": "nope"}))
    assert [t.name for t in repo.list_topics()] == ["MLPs!"]

    old, new, undated = NOW - timedelta(days=9), NOW - timedelta(days=1), None
    assert repo.replace_topic_matches("mlp", [_match("f1", "a", old), _match("f1", "b", new),
                                              _match("f2", "c", undated)]) == 0
    assert [m.episode_id for m in repo.list_matches("mlp")] == ["b", "a", "c"], "newest first, undated last"
    assert [m.episode_id for m in repo.list_matches("mlp", limit=2)] == ["b", "a"]

    # re-matching episode a (now re-dated) and b (no longer matching) of feed f1
    removed = repo.replace_feed_matches("mlp", "f1", ["a", "b"], [_match("f1", "a", NOW, "a v2")])
    assert removed >= 1
    assert [(m.episode_id, m.title) for m in repo.list_matches("mlp")] == [("a", "a v2"), ("c", "c")]
    assert repo.count_matches("mlp") == 2

    # a transcript moment (a nested model) survives either store
    moment = TranscriptMoment(start_seconds=754, text="MLP payouts")
    repo.replace_feed_matches("mlp", "f1", ["a"], [_match("f1", "a", NOW, "a v2").model_copy(
        update={"moment": moment, "audio_url": "https://m.example/a.mp3"})])
    stored = {m.episode_id: m for m in repo.list_matches("mlp")}
    assert stored["a"].moment == moment and stored["c"].moment is None

    # a backfill whose query now matches only c
    assert repo.replace_topic_matches("mlp", [_match("f2", "c", undated)]) == 1
    assert [m.episode_id for m in repo.list_matches("mlp")] == ["c"]

    assert repo.delete_topic("mlp") and not repo.delete_topic("mlp")
    assert repo.get_topic("mlp") is None and repo.count_matches("mlp") == 0


def test_every_change_of_a_topic_or_its_matches_gives_it_a_fresh_revision(repo: Store) -> None:
    """The page's and feed's validator (earshot.web.topics) is the topic's revision: every
    write the page could show must change it, and a write that changes nothing need not."""
    seen: list[str] = []

    def revision() -> str:
        topic = repo.get_topic("mlp")
        assert topic is not None and topic.revision and topic.revised_at is not None
        return topic.revision

    def changes(what: str) -> None:
        now = revision()
        assert now not in seen, f"{what}: the revision must change (and never repeat)"
        seen.append(now)

    def keeps(what: str) -> None:
        assert revision() == seen[-1], f"{what}: nothing changed, the revision stays"

    topic = Topic(slug="mlp", name="MLPs", query="MLP", created_at=NOW, updated_at=NOW)
    feed = new_feed("https://a.example/feed.xml", NOW)
    repo.add_feed(feed)
    repo.create_topic(topic.model_copy(update={"revision": "chosen-by-caller"}))
    changes("create_topic")
    assert seen[-1] != "chosen-by-caller", "the store sets the revision, not the caller"
    repo.save_topic(repo.get_topic("mlp").model_copy(update={"name": "MLPs!"}))  # type: ignore[union-attr]
    changes("save_topic (an edit)")
    repo.replace_feed_matches("mlp", feed.feed_id, [], [_match(feed.feed_id, "a", NOW)])
    changes("a new match")
    repo.replace_feed_matches("mlp", feed.feed_id, ["a"], [_match(feed.feed_id, "a", NOW, "a, retitled")])
    changes("a changed match")
    repo.replace_feed_matches("mlp", feed.feed_id, ["a"], [_match(feed.feed_id, "a", NOW, "a, retitled").model_copy(
        update={"moment": TranscriptMoment(start_seconds=75, text="MLP")})])
    changes("a transcript moment on a match")
    repo.replace_feed_matches("mlp", feed.feed_id, ["zzz"], [])
    keeps("a changed episode that matches nothing, and never did")
    repo.replace_feed_matches("mlp", feed.feed_id, ["a"], [])
    changes("a match that no longer holds")
    repo.replace_topic_matches("mlp", [_match(feed.feed_id, "b", NOW - timedelta(days=1))])
    changes("a re-match of the archive")
    repo.replace_topic_matches("mlp", [])
    changes("a re-match that drops every match")
    repo.replace_topic_matches("mlp", [])
    keeps("a re-match of nothing over nothing")
    repo.put_run_matches("mlp", "run-1", [_match(feed.feed_id, "c", NOW)])
    changes("a backfill page's matches")
    repo.put_run_matches("mlp", "run-1", [])
    keeps("a backfill page without matches")
    repo.put_run_matches("mlp", "run-2", [_match(feed.feed_id, "d", NOW)])
    seen.append(revision())
    assert repo.drop_matches_outside_run("mlp", "run-2") == 1
    changes("the stale matches of a finished backfill dropped")
    assert repo.drop_matches_outside_run("mlp", "run-2") == 0
    keeps("a repeated drop that finds nothing")
    assert repo.delete_feed(feed.feed_id)
    changes("a removed feed's matches dropped")
    other = Topic(slug="other", name="Other", query="x", created_at=NOW, updated_at=NOW)
    repo.create_topic(other)
    other_revision = repo.get_topic("other").revision  # type: ignore[union-attr]
    repo.replace_feed_matches("mlp", "f-2", [], [_match("f-2", "e", NOW)])
    assert repo.get_topic("other").revision == other_revision, "another topic's matches leave it alone"  # type: ignore[union-attr]

    # A topic removed and added again never repeats a revision; a match write racing the
    # removal brings no bare topic back.
    assert repo.delete_topic("mlp")
    repo.replace_feed_matches("mlp", "f-2", [], [_match("f-2", "f", NOW)])
    assert repo.get_topic("mlp") is None
    repo.create_topic(topic)
    changes("the same slug added again")


def _subscriber(status: str = "pending", version: int = 0) -> Subscriber:
    return Subscriber(topic="mlp", email="a@example.com", address_hash="h1", status=status, created_at=NOW,
                      requested=ConsentEvent(at=NOW, source="api"), version=version)


def test_subscriber_optimistic_lock_and_confirmed_listing(repo: Store) -> None:
    assert repo.save_subscriber(_subscriber())
    assert not repo.save_subscriber(_subscriber()), "a second create conflicts"
    stored = repo.get_subscriber("h1", "mlp")
    assert stored.version == 1 and list(repo.confirmed_subscribers("mlp")) == []
    assert repo.save_subscriber(stored.model_copy(update={"status": "confirmed"}))
    assert not repo.save_subscriber(stored.model_copy(update={"status": "unsubscribed"})), "stale version"
    assert [s.address_hash for s in repo.confirmed_subscribers("mlp")] == ["h1"]
    assert [s.status for s in repo.subscriptions_of_address("h1")] == ["confirmed"]


def test_confirmation_mails_are_counted_in_a_rolling_window(repo: Store) -> None:
    window = timedelta(hours=24)
    count = lambda request_id, at: repo.count_confirmation_mail(  # noqa: E731
        "h1", request_id, now=at, window=window, limit=3)
    late = datetime(2026, 11, 26, 23, 59, 30, tzinfo=UTC)
    # three mails just before midnight, then none just after it: one window, not two days
    assert [count(f"r{i}", late + timedelta(seconds=10 * i)) for i in range(3)] == [True] * 3
    assert [count(f"s{i}", late + timedelta(seconds=60 + i)) for i in range(3)] == [False] * 3
    # a request counted before is not counted again (a retried request is one mail)
    assert count("r1", late + timedelta(minutes=5))
    # the oldest mail leaves the window exactly 24 h after it was counted
    assert not count("t", late + window - timedelta(seconds=1))
    assert count("t", late + window + timedelta(seconds=1))
    assert not count("u", late + window + timedelta(seconds=1))
    assert repo.count_confirmation_mail("h2", "r0", now=late, window=window, limit=3), "per address"


def test_claim_and_token_are_written_together_and_the_claimant_may_repeat(repo: Store) -> None:
    _, mine = tokens.issue_token("unsubscribe", topic="mlp", address_hash="h1", now=NOW)
    _, theirs = tokens.issue_token("unsubscribe", topic="mlp", address_hash="h1", now=NOW)
    claim = lambda token: repo.claim_send("h1", "mlp", "2026-W48", now=NOW, expires_at=2**31,  # noqa: E731
                                          token=token)
    assert claim(mine)
    assert repo.get_token(mine.token_hash) == mine, "the claim stored its unsubscribe token"
    assert claim(mine), "the same claim written again (after a lost answer) is still the caller's"
    assert not claim(theirs), "anyone else's claim is refused"
    assert repo.get_token(theirs.token_hash) is None, "a refused claim stores no token"
    assert repo.get_claim_state("h1", "mlp", "2026-W48") == "claimed"


def test_tokens_are_single_use(repo: Store) -> None:
    token, record = tokens.issue_token("confirm", topic="mlp", address_hash="h1", now=NOW)
    repo.put_token(record)
    assert repo.get_token(record.token_hash) == record
    assert repo.delete_token(record.token_hash) and not repo.delete_token(record.token_hash)
    assert repo.get_token(record.token_hash) is None


def _token(n: int = 0) -> TokenRecord:
    return tokens.issue_token("unsubscribe", topic="mlp", address_hash="h1", now=NOW + timedelta(seconds=n))[1]


def test_send_claims_are_taken_once_and_released_only_while_claimed(repo: Store) -> None:
    claim = lambda n: repo.claim_send("h1", "mlp", "2026-W48", now=NOW, expires_at=2**31,  # noqa: E731
                                      token=_token(n))
    assert claim(1) and not claim(2)
    repo.release_claim("h1", "mlp", "2026-W48")
    assert repo.get_claim_state("h1", "mlp", "2026-W48") is None
    assert claim(3)
    repo.finish_claim("h1", "mlp", "2026-W48", state="sent", now=NOW, message_id="m-1")
    repo.release_claim("h1", "mlp", "2026-W48")  # too late: it was sent
    assert repo.get_claim_state("h1", "mlp", "2026-W48") == "sent" and not claim(4)


def test_a_claim_of_unknown_outcome_is_never_released(repo: Store) -> None:
    assert repo.claim_send("h1", "mlp", "2026-W48", now=NOW, expires_at=2**31, token=_token())
    repo.finish_claim("h1", "mlp", "2026-W48", state="unknown", now=NOW, detail="read timeout")
    repo.release_claim("h1", "mlp", "2026-W48")
    assert repo.get_claim_state("h1", "mlp", "2026-W48") == "unknown"
    assert not repo.claim_send("h1", "mlp", "2026-W48", now=NOW, expires_at=2**31, token=_token(1))


def test_concurrent_claims_let_exactly_one_through(repo: Store) -> None:
    if not isinstance(repo, SqliteStore):
        # DynamoDB evaluates a conditional put atomically by the service's contract; moto,
        # the test double, does not lock between threads, so a race here tests moto.
        pytest.skip("concurrent conditional writes are the service's guarantee, which moto does not emulate")
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def attempt(n: int) -> None:
        barrier.wait()
        wins.append(repo.claim_send("h1", "mlp", "2026-W48", now=NOW, expires_at=2**31, token=_token(n)))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_rendered_digest_first_one_wins(repo: Store) -> None:
    assert repo.put_rendered_digest("mlp", "2026-W48", b"first", expires_at=2**31)
    assert not repo.put_rendered_digest("mlp", "2026-W48", b"second", expires_at=2**31)
    assert repo.get_rendered_digest("mlp", "2026-W48") == b"first"
    assert repo.get_rendered_digest("mlp", "2026-W47") is None


# ------------------------------------------------------------------ discovery
def test_directory_answers_are_cached_until_they_expire(repo: Store) -> None:
    expires = int((NOW + timedelta(hours=1)).timestamp())
    repo.put_directory_answer("apple search term=MLP", '[{"feed_url": "https://a.example/feed"}]', expires_at=expires)
    assert repo.get_directory_answer("apple search term=MLP", now=NOW) == '[{"feed_url": "https://a.example/feed"}]'
    assert repo.get_directory_answer("apple search term=MLP", now=NOW + timedelta(hours=1)) is None, "expired"
    assert repo.get_directory_answer("apple search term=pony", now=NOW) is None
    repo.put_directory_answer("apple search term=MLP", "[]", expires_at=expires + 60)
    assert repo.get_directory_answer("apple search term=MLP", now=NOW + timedelta(hours=1)) == "[]", "replaced"


def _candidate(url: str, score: float, **changes: object) -> DiscoveryCandidate:
    return DiscoveryCandidate(key=f"url:{url}", feed_url=url, title=url, sources=["apple"], terms=["MLP"],
                              checked=10, matches=int(score), score=score, found_at=NOW,
                              examples=[CandidateExample(title="MLPs rally", published=NOW)], **changes)


def test_decided_candidates_are_never_proposed_again(repo: Store) -> None:
    a, b, c = (_candidate(f"https://{n}.example/feed", s) for n, s in (("a", 3.0), ("b", 5.0), ("c", 1.0)))
    assert repo.record_candidates("mlp", [a, b, c]) == [a, b, c]
    assert [x.feed_url for x in repo.list_candidates("mlp")] == [b.feed_url, a.feed_url, c.feed_url], "best first"
    assert repo.list_candidates("other") == []

    assert repo.decide_candidate("mlp", a.key, "rejected", now=NOW)
    assert repo.decide_candidate("mlp", b.key, "added", now=NOW)
    assert not repo.decide_candidate("mlp", "url:https://nowhere.example/feed", "rejected", now=NOW)

    # A later run finds all three again, with new evidence
    again = [x.model_copy(update={"score": 9.0, "matches": 9}) for x in (a, b, c)]
    assert [x.key for x in repo.record_candidates("mlp", again)] == [c.key], "only the undecided one"
    stored = {x.key: x for x in repo.list_candidates("mlp")}
    assert stored[a.key].status == "rejected" and stored[a.key].score == 3.0 and stored[a.key].decided_at == NOW
    assert stored[b.key].status == "added" and stored[c.key].score == 9.0 and stored[c.key] == again[2]


def test_feed_provenance_and_topic_discovery_settings_round_trip(repo: Store) -> None:
    feed = new_feed("https://a.example/feed.xml", NOW).model_copy(update={"provenance": FeedProvenance(
        sources=["apple", "podcastindex"], terms=["MLP"], topic="mlp", added_at=NOW)})
    assert repo.add_feed(feed)
    repo.save_feed_state(FeedState(feed_id=feed.feed_id, url=feed.url, error_count=1))
    assert repo.get_feed(feed.feed_id).provenance == feed.provenance, "a check keeps the provenance"
    topic = Topic(slug="mlp", name="MLP", query="MLP", created_at=NOW, discover_auto_add=True,
                  discover_min_matches=5)
    assert repo.create_topic(topic)
    assert repo.get_topic("mlp").model_dump(exclude={"revision", "revised_at"}) == topic.model_dump(  # type: ignore[union-attr]
        exclude={"revision", "revised_at"}), "the store adds only the revision"


# ------------------------------------------------------------------ transcripts
def test_transcript_state_round_trip_and_removal_with_the_feed(repo: Store) -> None:
    # Given a feed with an episode that lists a transcript
    feed = new_feed("https://a.example/feed.xml", NOW)
    repo.add_feed(feed)
    episode = Episode(id="https://a.example/ep/1?x=1", title="One", published=NOW,
                      transcripts=(Transcript(url="https://a.example/1.json", type="application/json"),))
    repo.put_new_episodes(feed.feed_id, [episode], NOW)
    assert repo.get_episode(feed.feed_id, episode.id) == episode.model_copy(update={"feed_id": feed.feed_id})
    assert repo.get_episode(feed.feed_id, "missing") is None
    # When its transcript fails, then is fetched
    failed = TranscriptState(feed_id=feed.feed_id, episode_id=episode.id, status="retrying",
                             url="https://a.example/1.json", attempts=1, next_attempt_at=NOW + timedelta(minutes=1),
                             last_error_kind="timeout", last_error_message="timed out")
    repo.save_transcript_state(failed)
    assert repo.get_transcript_state(feed.feed_id, episode.id) == failed
    fetched = TranscriptState(feed_id=feed.feed_id, episode_id=episode.id, status="fetched", format="json",
                              url="https://a.example/1.json", etag='"t1"', cue_count=3, size_bytes=120,
                              has_times=True, fetched_at=NOW, warnings=["1 segment skipped"])
    repo.save_transcript_state(fetched)
    # Then the latest state replaces the earlier one, and the episode is untouched
    assert repo.get_transcript_state(feed.feed_id, episode.id) == fetched
    assert list(repo.iter_transcript_states()) == [fetched]
    assert repo.episode_hashes(feed.feed_id) == {episode.id: episode.content_hash}
    # And removing the feed removes the state with the episodes
    assert repo.delete_feed(feed.feed_id)
    assert repo.get_transcript_state(feed.feed_id, episode.id) is None
    assert list(repo.iter_transcript_states()) == []


@pytest.fixture(params=["s3", "sqlite"])
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TranscriptArchive]:
    if request.param == "s3":
        with EmbeddedBackend():
            yield runtime.transcript_archive()
    else:
        store = SqliteStore(tmp_path / "earshot.db")
        yield store
        store.close()


def test_transcript_archive_round_trip(archive: TranscriptArchive) -> None:
    cues = [Cue(0.5, 1.25, "Ann", "Why MLPs cut distributions"), Cue(None, None, None, "ünïcode — text"),
            Cue(754.0, None, None, "twelve thirty-four")]
    assert archive.get_transcript("f-1", "ep-1") is None
    assert archive.put_transcript("f-1", "ep-1", cues) > 0
    assert archive.get_transcript("f-1", "ep-1") == cues
    archive.put_transcript("f-1", "ep-1", cues[:1])  # a re-fetch replaces the text
    assert archive.get_transcript("f-1", "ep-1") == cues[:1]
    assert archive.get_transcript("f-1", "ep-2") is None


# ------------------------------------------------------------- archive segments, backfills
@pytest.mark.parametrize("total", [1, 3, 7])
def test_episode_segments_split_the_archive_exactly(repo: Store, total: int) -> None:
    # Given 12 feeds of 9 episodes, one feed id outside the hashed form
    feeds = [new_feed(f"https://s{i}.example/feed.xml", NOW) for i in range(11)]
    feeds.append(new_feed("https://odd.example/feed.xml", NOW).model_copy(update={"feed_id": "local-feed"}))
    for feed in feeds:
        repo.add_feed(feed)
        repo.put_new_episodes(feed.feed_id, [Episode(id=f"e{j}", title=f"t{j}") for j in range(9)], NOW)
    # When every segment is read in pages of 4 (a page may be empty; its cursor goes on)
    seen: list[tuple[str | None, str]] = []
    for segment in range(total):
        cursor = None
        while True:
            page = repo.episode_segment(segment, total, cursor=cursor, limit=4)
            assert len(page.episodes) <= 4
            seen += [(e.feed_id, e.id) for e in page.episodes]
            if page.cursor is None:
                break
            cursor = page.cursor
    # Then every episode came exactly once, each with its feed id
    assert sorted(seen) == sorted((f.feed_id, f"e{j}") for f in feeds for j in range(9))


def test_a_feeds_episodes_share_one_segment(repo: Store) -> None:
    feeds = [new_feed(f"https://s{i}.example/feed.xml", NOW) for i in range(6)]
    for feed in feeds:
        repo.add_feed(feed)
        repo.put_new_episodes(feed.feed_id, [Episode(id=f"e{j}", title="x") for j in range(5)], NOW)
    segment_of: dict[str | None, set[int]] = {}
    for segment in range(4):
        cursor = None
        while True:
            page = repo.episode_segment(segment, 4, cursor=cursor, limit=3)
            for e in page.episodes:
                segment_of.setdefault(e.feed_id, set()).add(segment)
            if page.cursor is None:
                break
            cursor = page.cursor
    assert all(len(s) == 1 for s in segment_of.values()) and len(segment_of) == 6


def test_get_feeds_answers_the_stored_ones(repo: Store) -> None:
    a, b = new_feed("https://a.example/feed.xml", NOW), new_feed("https://b.example/feed.xml", NOW)
    repo.add_feed(a)
    repo.add_feed(b)
    found = repo.get_feeds([a.feed_id, "f-missing", b.feed_id, a.feed_id])
    assert found == {a.feed_id: a, b.feed_id: b}
    assert repo.get_feeds([]) == {}


def _job(run_id: str, total: int = 3) -> BackfillJob:
    return BackfillJob(slug="mlp", run_id=run_id, query="MLP", total_segments=total,
                       segments={i: SegmentProgress() for i in range(total)}, started_at=NOW)


def test_backfill_progress_is_kept_for_the_current_run_only(repo: Store) -> None:
    repo.create_topic(Topic(slug="mlp", name="MLPs", query="MLP", created_at=NOW, updated_at=NOW))
    assert repo.get_backfill("mlp") is None
    repo.start_backfill(_job("r1"))
    assert repo.get_backfill("mlp") == _job("r1")
    assert repo.get_backfill("mlp").status == "backfilling 0 %"  # type: ignore[union-attr]

    # segments report independently; the answer is the run as stored after the write
    job = repo.save_segment_progress("mlp", "r1", 1, SegmentProgress(cursor="c", scanned=10, matched=2))
    assert job is not None and job.segments[1].cursor == "c" and job.scanned == 10
    job = repo.save_segment_progress("mlp", "r1", 0, SegmentProgress(scanned=5, matched=1, done=True))
    assert job is not None and job.done_segments == 1 and job.segments[1].scanned == 10
    assert job.status == "backfilling 33 %" and job.matched == 3

    # a newer run replaces it: the old run's workers are told to stop
    repo.start_backfill(_job("r2", total=2))
    assert repo.save_segment_progress("mlp", "r1", 2, SegmentProgress(done=True)) is None
    assert not repo.finish_backfill("mlp", "r1", removed=0, now=NOW)
    assert repo.get_backfill("mlp") == _job("r2", total=2)
    assert repo.finish_backfill("mlp", "r2", removed=4, now=NOW)
    finished = repo.get_backfill("mlp")
    assert finished is not None and finished.finished_at == NOW and finished.removed == 4
    assert finished.status == "backfilled"

    # the run goes with its topic
    assert repo.delete_topic("mlp")
    assert repo.get_backfill("mlp") is None
    assert repo.save_segment_progress("mlp", "r2", 0, SegmentProgress()) is None


def test_matches_outside_a_run_are_dropped_on_request(repo: Store) -> None:
    repo.create_topic(Topic(slug="mlp", name="MLPs", query="MLP", created_at=NOW, updated_at=NOW))
    day = timedelta(days=1)
    # Given matches from before (ingest), one the run rewrites, and two the run writes
    repo.replace_topic_matches("mlp", [_match("f1", "old", NOW - 9 * day), _match("f1", "kept", NOW - 8 * day)])
    repo.put_run_matches("mlp", "r1", [_match("f1", "kept", NOW - 8 * day, "kept v2"), _match("f2", "new", NOW)])
    repo.put_run_matches("mlp", "r1", [_match("f2", "new", NOW)])  # a retried page writes again
    assert repo.count_matches("mlp") == 3
    # When the run's stale matches are dropped (twice: it is repeatable)
    assert repo.drop_matches_outside_run("mlp", "r1") == 1
    assert repo.drop_matches_outside_run("mlp", "r1") == 0
    # Then only the run's matches are left, as the run wrote them
    assert [(m.episode_id, m.title) for m in repo.list_matches("mlp")] == [("new", "new"), ("kept", "kept v2")]


# ------------------------------------------------------------------ host slots
def test_host_slots_lease_up_to_the_limit_and_refuse_beyond(repo: Store) -> None:
    first = repo.acquire_host_slot("feeds.example", limit=2, lease_s=60, now=NOW)
    second = repo.acquire_host_slot("feeds.example", limit=2, lease_s=60, now=NOW)
    assert first is not None and second is not None
    assert {first.slot, second.slot} == {0, 1}
    assert repo.acquire_host_slot("feeds.example", limit=2, lease_s=60, now=NOW) is None, "both slots are held"
    assert repo.acquire_host_slot("other.example", limit=2, lease_s=60, now=NOW) is not None, "hosts are apart"
    third = repo.acquire_host_slot("feeds.example", limit=3, lease_s=60, now=NOW)
    assert third is not None and third.slot == 2, "a caller allowing more takes the next slot"
    assert repo.acquire_host_slot("feeds.example", limit=1, lease_s=60, now=NOW) is None, \
        "a caller allowing fewer is refused while the lower slots are held"


def test_host_slot_release_frees_it_for_the_next_caller(repo: Store) -> None:
    lease = repo.acquire_host_slot("feeds.example", limit=1, lease_s=60, now=NOW)
    assert lease is not None
    assert repo.acquire_host_slot("feeds.example", limit=1, lease_s=60, now=NOW) is None
    repo.release_host_slot(lease, now=NOW)
    again = repo.acquire_host_slot("feeds.example", limit=1, lease_s=60, now=NOW)
    assert again is not None and again.slot == 0 and again.holder != lease.holder


def test_host_slot_lease_lapses_so_a_killed_worker_holds_nothing(repo: Store) -> None:
    lease = repo.acquire_host_slot("feeds.example", limit=1, lease_s=30, now=NOW)
    assert lease is not None and lease.expires_at == NOW + timedelta(seconds=30)
    assert repo.acquire_host_slot("feeds.example", limit=1, lease_s=30, now=NOW + timedelta(seconds=29)) is None
    taken_over = repo.acquire_host_slot("feeds.example", limit=1, lease_s=30, now=NOW + timedelta(seconds=30))
    assert taken_over is not None, "a lapsed lease frees its slot"
    # The first holder's late release must not free the slot its taker now holds.
    repo.release_host_slot(lease, now=NOW + timedelta(seconds=31))
    assert repo.acquire_host_slot("feeds.example", limit=1, lease_s=30, now=NOW + timedelta(seconds=31)) is None


def test_concurrent_host_slot_acquirers_never_exceed_the_limit(repo: Store) -> None:
    if not isinstance(repo, SqliteStore):
        # moto does not lock between threads; the service evaluates each conditional
        # UpdateItem atomically. Emulate that guarantee, not a race inside the double.
        serialize_dynamodb_calls(repo.client)  # type: ignore[attr-defined]
    won: list[int] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        lease = repo.acquire_host_slot("feeds.example", limit=3, lease_s=60, now=NOW)
        if lease is not None:
            won.append(lease.slot)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) <= 3 and len(won) == len(set(won)), won
    assert repo.acquire_host_slot("feeds.example", limit=3, lease_s=60, now=NOW) is None or len(won) < 3
