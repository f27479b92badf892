"""Topic page and topic feed carry validators and answer 304 (RFC 9110 §8.8.3, §13.1.2,
§15.4.5), through the API handler as deployed (the sample events on the moto stack) and
through ``earshot serve`` over a real socket: a podcast app polling an unchanged topic
downloads nothing."""

from __future__ import annotations

import base64
import copy
import gzip
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from earshot import runtime
from earshot.models import MatchedEpisode
from earshot.web.topics import CACHE_CONTROL
from earshot_local.settings import LocalSettings
from earshot_local.web import LocalServer
from tests.support.aws_stack import EmbeddedBackend, sample_event
from tests.support.local_mode import SLUG, seed_topic

EVENTS = {"page": "api_topic_page", "feed": "api_topic_feed"}


def _request(backend: EmbeddedBackend, kind: str, **headers: str) -> dict[str, Any]:
    event = copy.deepcopy(sample_event(EVENTS[kind]))
    event["headers"].update(headers)
    return backend.invoke("api", event)  # type: ignore[no-any-return]


@pytest.fixture
def stack(backend: EmbeddedBackend) -> EmbeddedBackend:
    slug = sample_event("api_topic_page")["pathParameters"]["slug"]
    assert slug == sample_event("api_topic_feed")["pathParameters"]["slug"]
    seed_topic(runtime.store(), slug=slug)
    return backend


def _add_match(slug: str) -> None:
    store = runtime.store()
    now = datetime.now(UTC)
    store.replace_topic_matches(slug, [*store.list_matches(slug), MatchedEpisode(
        feed_id="f-new", episode_id="new", podcast="New Pod", title="MLPs, part 3", published=now - timedelta(minutes=5),
        audio_url="https://cdn.example/3.mp3", reason="MLPs in title")])


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_a_response_carries_a_strong_tag_and_cache_control(stack: EmbeddedBackend, kind: str) -> None:
    response = _request(stack, kind)
    assert response["statusCode"] == 200
    headers = response["headers"]
    assert headers["ETag"].startswith('"') and headers["ETag"].endswith('"')
    assert not headers["ETag"].startswith("W/")
    assert headers["Cache-Control"] == CACHE_CONTROL
    # Asked again, the same bytes and the same tag (the feed's lastBuildDate is its
    # content's date, not the time of the request).
    assert _request(stack, kind)["headers"]["ETag"] == headers["ETag"]


@pytest.mark.parametrize("kind", sorted(EVENTS))
@pytest.mark.parametrize("form", ["exact", "weak", "in a list", "any"])
def test_if_none_match_with_the_current_tag_gets_304_and_no_body(stack: EmbeddedBackend, kind: str, form: str) -> None:
    etag = _request(stack, kind)["headers"]["ETag"]
    value = {"exact": etag, "weak": f"W/{etag}", "in a list": f'"stale", {etag}', "any": "*"}[form]
    response = _request(stack, kind, **{"if-none-match": value})
    assert response["statusCode"] == 304
    assert response["body"] == ""
    # A 304 sends what a 200 would have said about caching (RFC 9110 §15.4.5).
    assert response["headers"]["ETag"] == etag
    assert response["headers"]["Cache-Control"] == CACHE_CONTROL
    assert "Content-Type" not in response["headers"]


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_a_stale_tag_gets_the_new_version(stack: EmbeddedBackend, kind: str) -> None:
    old = _request(stack, kind)
    slug = sample_event(EVENTS[kind])["pathParameters"]["slug"]
    _add_match(slug)
    response = _request(stack, kind, **{"if-none-match": old["headers"]["ETag"]})
    assert response["statusCode"] == 200
    assert response["headers"]["ETag"] != old["headers"]["ETag"]
    assert "MLPs, part 3" in response["body"]


def test_an_unknown_topic_is_404_whatever_the_tag(stack: EmbeddedBackend) -> None:
    event = copy.deepcopy(sample_event("api_topic_feed"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/topics/no-such-topic/feed.xml"
    event["pathParameters"] = {"slug": "no-such-topic"}
    event["headers"]["if-none-match"] = "*"
    assert stack.invoke("api", event)["statusCode"] == 404


# ------------------------------------------------------------------ over a real socket
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    db = tmp_path_factory.mktemp("validators") / "earshot.db"
    with pytest.MonkeyPatch.context() as env:
        env.delenv("EARSHOT_PUBLIC_BASE_URL", raising=False)
        server = LocalServer(LocalSettings(EARSHOT_DB=db), host="127.0.0.1", port=0, threads=2)
    with server:
        seed_topic(server.runtime.store)
        server.start()
        yield server


@pytest.mark.parametrize("path", [f"/topics/{SLUG}", f"/topics/{SLUG}/feed.xml"])
def test_a_podcast_app_polling_earshot_serve_gets_304s(served: LocalServer, path: str) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{served.port}", trust_env=False, timeout=20) as client:
        first = client.get(path)
        assert first.status_code == 200 and first.content
        etag = first.headers["etag"]
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == CACHE_CONTROL
        assert "content-length" not in again.headers  # not the 200's length, so none (RFC 9110 §8.6)
        # The connection is still usable after the bodiless answer.
        assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_a_client_that_accepts_gzip_gets_it_under_its_own_tag(stack: EmbeddedBackend, kind: str) -> None:
    plain = _request(stack, kind)
    packed = _request(stack, kind, **{"accept-encoding": "gzip, deflate, br"})
    assert packed["statusCode"] == 200 and packed["isBase64Encoded"]
    assert packed["headers"]["Content-Encoding"] == "gzip"
    assert plain["headers"]["Vary"] == packed["headers"]["Vary"] == "Accept-Encoding"
    data = gzip.decompress(base64.b64decode(packed["body"]))
    assert data == plain["body"].encode("utf-8")
    assert len(base64.b64decode(packed["body"])) < len(data) / 2
    assert packed["headers"]["ETag"] == plain["headers"]["ETag"][:-1] + '-gzip"'
    # Either tag of the current content answers 304, whichever coding is asked for now.
    for tag in (plain["headers"]["ETag"], packed["headers"]["ETag"]):
        again = _request(stack, kind, **{"accept-encoding": "gzip", "if-none-match": tag})
        assert again["statusCode"] == 304 and again["body"] == ""
        assert again["headers"]["ETag"] == packed["headers"]["ETag"]
    assert _request(stack, kind, **{"accept-encoding": "gzip;q=0"})["headers"].get("Content-Encoding") is None
