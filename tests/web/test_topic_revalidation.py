"""A podcast app's conditional poll of a topic's page or feed is answered from the topic's
own item: the handler as deployed (the sample events on the moto stack), its DynamoDB
requests counted as boto3 sends them. And a held tag never outlives what it names: after
any change the page or feed would show, the same tag gets the new body (200), not a 304.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any

import pytest

from earshot import runtime
from earshot.models import FeedState, MatchedEpisode, TranscriptMoment
from earshot.store import Store
from earshot.topics.service import edit_topic
from earshot.web import topics as routes
from tests.support.aws_stack import EmbeddedBackend, sample_event
from tests.support.local_mode import seed_topic

EVENTS = {"page": "api_topic_page", "feed": "api_topic_feed"}
SLUG = sample_event("api_topic_page")["pathParameters"]["slug"]


def _request(backend: EmbeddedBackend, kind: str, **headers: str) -> dict[str, Any]:
    event = copy.deepcopy(sample_event(EVENTS[kind]))
    event["headers"].update(headers)
    return backend.invoke("api", event)  # type: ignore[no-any-return]


@contextmanager
def dynamodb_requests() -> Iterator[list[str]]:
    """The DynamoDB operations the store's client sends meanwhile, in order."""
    sent: list[str] = []
    events = runtime.store().client.meta.events  # type: ignore[attr-defined]

    def count(model: Any, **_: Any) -> None:
        sent.append(model.name)

    events.register("before-call.dynamodb", count, unique_id="count-requests")
    try:
        yield sent
    finally:
        events.unregister("before-call.dynamodb", unique_id="count-requests")


@pytest.fixture
def stack(backend: EmbeddedBackend) -> EmbeddedBackend:
    seed_topic(runtime.store(), slug=SLUG)
    return backend


@pytest.mark.parametrize("kind", sorted(EVENTS))
@pytest.mark.parametrize("coding", ["identity", "gzip"])
def test_a_held_tag_is_answered_304_from_one_read_of_the_topic(stack: EmbeddedBackend, kind: str,
                                                               coding: str) -> None:
    # Given a client that fetched the page (a 200 reads the topic and its matches)
    with dynamodb_requests() as sent:
        first = _request(stack, kind, **{"accept-encoding": coding})
    assert first["statusCode"] == 200
    assert sent == ["GetItem", "Query"], "a 200: the topic, then one page of its matches"

    # When it asks again with the tag it holds
    with dynamodb_requests() as sent:
        again = _request(stack, kind, **{"accept-encoding": coding, "if-none-match": first["headers"]["ETag"]})

    # Then the answer is a 304 from the topic's item alone
    assert again["statusCode"] == 304 and again["body"] == ""
    assert again["headers"]["ETag"] == first["headers"]["ETag"]
    assert sent == ["GetItem"], "a 304 reads one item: the topic"


def _stored() -> Store:
    return runtime.store()


def _new_match() -> None:
    _stored().replace_feed_matches(SLUG, "f-new", [], [MatchedEpisode(
        feed_id="f-new", episode_id="new", podcast="New Pod", title="MLPs, part 3",
        published=datetime.now(UTC) - timedelta(minutes=5), audio_url="https://cdn.example/3.mp3",
        reason="MLPs in title")])


def _changed(**update: Any) -> Callable[[], None]:
    """An episode the topic lists changed at its publisher (or gained a transcript moment):
    ingest re-matches it and its match is replaced."""
    def change() -> None:
        match = next(m for m in _stored().list_matches(SLUG) if m.episode_id == "e2")
        _stored().replace_feed_matches(SLUG, match.feed_id, [match.episode_id], [match.model_copy(update=update)])
    return change


def _no_longer_matching() -> None:
    match = next(m for m in _stored().list_matches(SLUG) if m.episode_id == "e1")
    _stored().replace_feed_matches(SLUG, match.feed_id, [match.episode_id], [])


def _backfill_of_a_new_query() -> None:
    edit_topic(_stored(), SLUG, query="MLPs", now=datetime.now(UTC))


def _feed_removed() -> None:
    _stored().add_feed(FeedState(feed_id="f-pipes", url="https://pipes.example/feed.xml"))
    assert _stored().delete_feed("f-pipes")


CHANGES: dict[str, Callable[[], None]] = {
    "a new match": _new_match,
    "a listed episode retitled": _changed(title="MLPs, part 2 (corrected)"),
    "a listed episode's audio moved": _changed(audio_url="https://cdn2.example/2.mp3"),
    "a transcript moment found": _changed(moment=TranscriptMoment(start_seconds=754, text="MLP payouts")),
    "a match that no longer holds": _no_longer_matching,
    "the topic renamed": lambda: edit_topic(_stored(), SLUG, name="Midstream MLPs", now=datetime.now(UTC)),
    "the topic described": lambda: edit_topic(_stored(), SLUG, description="Pipes.", now=datetime.now(UTC)),
    "a new query, backfilled": _backfill_of_a_new_query,
    "a feed removed with its matches": _feed_removed,
}

# A change the page shows and the feed does not (it has no "play from" moments): the
# feed's tag changes all the same.
NOT_IN_THE_FEED = {"a transcript moment found"}


@pytest.mark.parametrize("kind", sorted(EVENTS))
@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_after_a_change_a_held_tag_gets_the_new_body(stack: EmbeddedBackend, kind: str, change: str) -> None:
    # Given a client holding the current tag
    held = _request(stack, kind)
    assert _request(stack, kind, **{"if-none-match": held["headers"]["ETag"]})["statusCode"] == 304

    # When something the page or feed is made of changes
    CHANGES[change]()

    # Then the held tag gets a 200 with what a client without a tag gets now, under a new tag
    fresh = _request(stack, kind)
    again = _request(stack, kind, **{"if-none-match": held["headers"]["ETag"]})
    assert again["statusCode"] == 200
    assert again["headers"]["ETag"] == fresh["headers"]["ETag"] != held["headers"]["ETag"]
    assert again["body"] == fresh["body"]
    if kind == "page" or change not in NOT_IN_THE_FEED:
        assert again["body"] != held["body"], "the change is one the body shows"


class _Clock(datetime):
    """``datetime`` whose ``now()`` is set by the test (the route's clock)."""

    at: datetime = datetime.now(UTC)

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return cls.at


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_a_tag_issued_right_after_a_change_holds_only_while_replicas_settle(
        stack: EmbeddedBackend, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    revised_at = _stored().get_topic(SLUG).revised_at  # type: ignore[union-attr]
    assert revised_at is not None
    monkeypatch.setattr(routes, "datetime", _Clock)
    _Clock.at = revised_at + timedelta(seconds=1)
    held = _request(stack, kind)["headers"]["ETag"]
    _Clock.at = revised_at + timedelta(seconds=routes.SETTLE_S - 1)
    assert _request(stack, kind, **{"if-none-match": held})["statusCode"] == 304
    _Clock.at = revised_at + timedelta(seconds=routes.SETTLE_S)
    settled = _request(stack, kind, **{"if-none-match": held})
    assert settled["statusCode"] == 200, "past the settling time the matches are read again"
    # later the same day (the page's tag also ends when its date turns: the test below)
    _Clock.at = min(_Clock.at + timedelta(hours=1), datetime.combine(_Clock.at.date(), dt_time.max, tzinfo=UTC))
    assert _request(stack, kind, **{"if-none-match": settled["headers"]["ETag"]})["statusCode"] == 304


def test_the_page_tag_ends_when_its_date_turns(stack: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the page fetched late in a day (its footer says the day, its "last 12 months" count)
    monkeypatch.setattr(routes, "datetime", _Clock)
    tomorrow = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    _Clock.at = tomorrow - timedelta(minutes=1)
    held = _request(stack, "page")
    assert _request(stack, "page", **{"if-none-match": held["headers"]["ETag"]})["statusCode"] == 304
    # When the date turns with nothing stored changed, then the same tag gets the new page
    _Clock.at = tomorrow + timedelta(minutes=1)
    again = _request(stack, "page", **{"if-none-match": held["headers"]["ETag"]})
    assert again["statusCode"] == 200 and again["body"] != held["body"]
    assert f"Generated by Earshot on {tomorrow.day} {tomorrow:%b %Y}" in again["body"]


def test_the_feed_tag_ends_when_a_future_dated_episode_comes_due(
        stack: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a publisher's episode dated two days ahead (lastBuildDate leaves it out until then)
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    _stored().replace_feed_matches(SLUG, "f-ahead", [], [MatchedEpisode(
        feed_id="f-ahead", episode_id="ahead", podcast="Ahead", title="MLPs from the future", published=ahead,
        audio_url="https://cdn.example/ahead.mp3", reason="MLPs in title")])
    monkeypatch.setattr(routes, "datetime", _Clock)
    _Clock.at = ahead - timedelta(hours=1)
    held = _request(stack, "feed")
    _Clock.at = ahead - timedelta(seconds=1)
    assert _request(stack, "feed", **{"if-none-match": held["headers"]["ETag"]})["statusCode"] == 304
    _Clock.at = ahead
    again = _request(stack, "feed", **{"if-none-match": held["headers"]["ETag"]})
    assert again["statusCode"] == 200 and again["body"] != held["body"]


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_a_second_download_of_the_same_content_reads_only_the_topic(stack: EmbeddedBackend, kind: str) -> None:
    # Given one follower's app that downloaded the feed (or a reader the page)
    with dynamodb_requests() as sent:
        first = _request(stack, kind)
    assert sent == ["GetItem", "Query"]

    # When another, holding no tag, downloads it
    with dynamodb_requests() as sent:
        second = _request(stack, kind)

    # Then it gets the same body and tag, read from the topic's item alone
    assert second["statusCode"] == 200 and second["body"] == first["body"]
    assert second["headers"]["ETag"] == first["headers"]["ETag"]
    assert sent == ["GetItem"]

    # And once the topic's matches change, the next download reads them again: a new body
    topic = _stored().get_topic(SLUG)
    assert topic is not None
    edit_topic(_stored(), SLUG, name=topic.name + " (renamed)", now=datetime.now(UTC))
    with dynamodb_requests() as sent:
        third = _request(stack, kind)
    assert third["headers"]["ETag"] != first["headers"]["ETag"] and "(renamed)" in third["body"]
    assert sent[:2] == ["GetItem", "Query"]
