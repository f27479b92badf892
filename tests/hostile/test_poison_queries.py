"""Topic queries that would stop matching: refused when written, with a position, and
defended again in the worker so one bad topic never stops the others; a podcast-name
query matches on a feed's very first ingest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from earshot.models import Topic
from earshot_local.cli import main
from earshot_local.functions import sample_event
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import LocalSettings
from tests.support.feedserver import FeedServer, Serve

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "feeds" / "gradient-descent.xml"
NOW = datetime(2026, 11, 26, tzinfo=UTC)

POISON = {
    "parens-250": "(" * 250 + "MLP" + ")" * 250,
    "not-1000": "NOT " * 1000 + "MLP",
    "duration-5000-digits": "MLP duration:>" + "9" * 5000 + "m",
    "duration-100-digits": "MLP duration:>" + "9" * 100 + "m",
    "not-40": "NOT " * 40 + "MLP OR perceptron",
}


@pytest.mark.parametrize("query", POISON.values(), ids=POISON.keys())
def test_topics_add_refuses_a_poison_query_with_one_line_and_stores_nothing(
        query: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "add", "deep", "--name", "Deep", f"--query={query}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "position" in err and err.count("\n") == 1 and "Traceback" not in err
    assert main(["topics", "list", "--json"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("query", POISON.values(), ids=POISON.keys())
def test_offline_match_refuses_a_poison_query_without_a_traceback(
        query: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["match", f"--query={query}", str(SAMPLE)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def _run_worker(local: LocalRuntime) -> list[dict]:
    local.invoke("dispatcher", {**sample_event("dispatcher_scheduled"), "force": True})
    return local.drain(local.fetch_queue, "fetch_worker")


def test_a_poison_topic_already_stored_never_stops_the_others(tmp_path: Path, feed_server: FeedServer) -> None:
    # Given a healthy topic and one whose query got into the store around today's limits
    url = feed_server.route("/gd.xml", Serve(SAMPLE.read_bytes()))
    with LocalRuntime(LocalSettings(EARSHOT_DB=tmp_path / "db", EARSHOT_OUTBOX=tmp_path / "out")) as local:
        from earshot.ingest.refresh import new_feed

        local.store.add_feed(new_feed(url, NOW))
        local.store.create_topic(Topic(slug="mlp", name="MLPs", query="MLP", created_at=NOW, updated_at=NOW))
        local.store.create_topic(Topic(slug="deep", name="Deep", query=POISON["parens-250"],
                                       created_at=NOW, updated_at=NOW))
        # When the real dispatcher and worker handlers check the feed
        responses = _run_worker(local)
        # Then no record failed, the healthy topic has its matches, the poison one none
        assert responses and all(r == {"batchItemFailures": []} for r in responses)
        assert local.store.count_matches("mlp") > 0
        assert local.store.count_matches("deep") == 0


def test_a_podcast_name_query_matches_on_the_feeds_first_ingest(tmp_path: Path, feed_server: FeedServer) -> None:
    url = feed_server.route("/gd.xml", Serve(SAMPLE.read_bytes()))
    with LocalRuntime(LocalSettings(EARSHOT_DB=tmp_path / "db", EARSHOT_OUTBOX=tmp_path / "out")) as local:
        from earshot.ingest.refresh import new_feed

        # Given a topic on a podcast's name, defined before the feed was ever fetched
        local.store.create_topic(Topic(slug="gd", name="GD", query='podcast:"Gradient Descent Radio"',
                                       created_at=NOW, updated_at=NOW))
        local.store.add_feed(new_feed(url, NOW))  # its title is not known yet
        _run_worker(local)
        matches = local.store.list_matches("gd")
        # Then every episode matched at first sight, each carrying the podcast's name
        assert len(matches) == len(local.store.list_episodes(matches[0].feed_id)) > 0
        assert {m.podcast for m in matches} == {"Gradient Descent Radio"}


# ------------------------------------------------------------------ other poison values
def test_absurd_header_numbers_are_bounded_not_errors() -> None:
    from earshot.ingest.fetcher import MAX_DELTA_SECONDS, parse_cache_max_age, parse_retry_after

    assert parse_retry_after("9" * 5000) == MAX_DELTA_SECONDS
    assert parse_cache_max_age("max-age=" + "9" * 5000) == MAX_DELTA_SECONDS


def test_a_json_body_nested_thousands_deep_is_a_400(tmp_path: Path) -> None:
    import json

    with LocalRuntime(LocalSettings(EARSHOT_DB=tmp_path / "db", EARSHOT_OUTBOX=tmp_path / "out")) as local:
        event = sample_event("api_subscribe")
        event["body"] = "[" * 12_000 + "]" * 12_000
        response = local.invoke("api", event)
        assert response["statusCode"] == 400 and json.loads(response["body"])["error"] == "bad_request"
        event = sample_event("api_topic_page")
        event["rawPath"] = event["requestContext"]["http"]["path"] = "/topics/nope"
        event["pathParameters"] = {"slug": "nope"}
        response = local.invoke("api", event)
        # The 404 echoes the slug as text: a browser must never sniff it into HTML
        assert response["statusCode"] == 404 and "nope" in response["body"]
        assert response["headers"]["X-Content-Type-Options"] == "nosniff"


# ------------------------------------------------------------------ text that lies on screen
BIDI_FEED = ("<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>Pipes\u200b Weekly</title>"
             "<item><title>MLP invoice \u202efdp.exe\u202c</title><guid>a</guid>"
             "<enclosure url='https://cdn.example/a.mp3' type='audio/mpeg'/>"
             "<description>MLP notes \u2066hidden\u2069 here</description></item>"
             "<item><title>\u200b\u200b\ufeff</title><guid>b</guid>"
             "<enclosure url='https://cdn.example/b.mp3' type='audio/mpeg'/><description>MLP b</description></item>"
             "</channel></rss>").encode()


def test_bidi_controls_and_invisible_titles_never_reach_a_page(tmp_path: Path, feed_server: FeedServer) -> None:
    from earshot.ingest.refresh import new_feed
    from earshot.topics.pages import render_topic_page
    from earshot.topics.service import topic_report

    url = feed_server.route("/bidi.xml", Serve(BIDI_FEED))
    with LocalRuntime(LocalSettings(EARSHOT_DB=tmp_path / "db", EARSHOT_OUTBOX=tmp_path / "out")) as local:
        local.store.create_topic(Topic(slug="mlp", name="MLPs", query="MLP", created_at=NOW, updated_at=NOW))
        local.store.add_feed(new_feed(url, NOW))
        _run_worker(local)
        episodes = {e.guid: e for e in local.store.list_episodes(next(local.store.list_feeds()).feed_id)}
        # Stored text is what a reader sees: no override reverses "fdp.exe" on screen
        assert episodes["a"].title == "MLP invoice fdp.exe"
        assert "\u2066" not in episodes["a"].summary and "hidden" in episodes["a"].summary
        # A title of only invisible characters is no title: the fallback names it
        assert episodes["b"].title and not set(episodes["b"].title) <= {"\u200b", "\ufeff"}
        html = render_topic_page(local.store.get_topic("mlp"), topic_report(local.store, "mlp", now=NOW),
                                 now=NOW)
    assert not any(ch in html for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200e\u200f")
    assert "></a>" not in html


def test_templates_neutralize_whatever_text_was_stored() -> None:
    from earshot.templating import environment

    template = environment().from_string("<p>{{ title }}</p>")
    assert template.render(title="invoice \u202efdp.exe") == "<p>invoice fdp.exe</p>"
