"""Discovery end to end: loopback fakes of both directories (tests/support/directories.py,
in their documented shapes), candidate feeds served by the test's own feed server, and
the public entry points (``earshot discover``, ``earshot topics discover|candidates|
approve|reject``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from earshot.directory.clients import CallPacer, PodcastIndex, podcastindex_auth_headers
from earshot.directory.ranking import search_terms
from earshot.errors import DirectoryError
from earshot.settings import Settings
from earshot.topics.query import parse_query
from earshot_local.cli import main
from earshot_local.cli.topics import FINANCE_QUERY
from tests.support.directories import FakeAppleSearch, FakePodcastIndex, Show, pi_episode
from tests.support.feedserver import FeedServer, Serve

FEEDS = Path(__file__).resolve().parents[2] / "samples" / "feeds"
GUID_MIDSTREAM = "5b1f8a52-1f3e-5c7e-9b7a-2d9c1c0a4e11"

OFF_TOPIC = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Weeknight Kitchen</title>
<item><title>Braised leeks, three ways</title><guid>k-1</guid><pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate>
<description>Leeks, butter and patience. Also: our listener MLP question about pie crust.</description></item>
<item><title>Sourdough for the impatient</title><guid>k-2</guid><pubDate>Mon, 16 Nov 2026 10:00:00 GMT</pubDate></item>
</channel></rss>
"""

# slug of the served feed -> (is on topic for FINANCE_QUERY, keywords the directories index)
FEED_SET = {
    "midstream-minute": (True, ("MLP", "midstream", "pipelines", "energy income")),
    "energy-capital-weekly": (True, ("MLP", "LNG", "energy", "midstream")),
    "gradient-descent": (False, ("MLP", "neural networks", "machine learning")),
    "friendship-is-podcasts": (False, ("MLP", "pony", "fandom")),
    "health-law-hour": (False, ("MLP", "medical-legal partnership")),
    "twin-cities-tonight": (False, ("MLPS", "Minneapolis", "local news")),
    "weeknight-kitchen": (False, ("MLP", "cooking")),
}


@pytest.fixture
def directories(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    """Both fakes on the feed server, every candidate feed served there, settings pointing at them."""
    shows = []
    for n, (slug, (_on_topic, keywords)) in enumerate(FEED_SET.items(), 1):
        body = OFF_TOPIC if slug == "weeknight-kitchen" else (FEEDS / f"{slug}.xml").read_bytes()
        url = feed_server.route(f"/feeds/{slug}.xml", Serve(body))
        shows.append(Show(title=slug.replace("-", " ").title(), feed_url=url, keywords=keywords, pi_id=100 + n,
                          itunes_id=9000 + n, guid=GUID_MIDSTREAM if slug == "midstream-minute" else None))
    # The Podcast Index knows the Midstream Minute by another URL (the other host):
    # one podcast, folded by its podcast:guid.
    index_shows = [Show(**{**s.__dict__, "feed_url": feed_server.url("/feeds/midstream-minute.xml", alt=True)})
                   if s.guid else s for s in shows]
    apple = FakeAppleSearch(shows)
    index = FakePodcastIndex(index_shows)
    feed_server.route("/search", apple)
    feed_server.route("/api/1.0/search/byterm", index)
    feed_server.route("/api/1.0/episodes/byfeedid", index)
    for name, value in {
        "EARSHOT_APPLE_SEARCH_URL": feed_server.url("/search"),
        "EARSHOT_PODCASTINDEX_URL": feed_server.url("/api/1.0"),
        "EARSHOT_PODCASTINDEX_KEY": index.key, "EARSHOT_PODCASTINDEX_SECRET": index.secret,
        "EARSHOT_APPLE_CALLS_PER_MINUTE": "600000", "EARSHOT_DISCOVERY_MAX_TERMS": "3",
    }.items():
        monkeypatch.setenv(name, value)
    yield {"apple": apple, "index": index, "shows": shows}


def _json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_every_on_topic_feed_ranks_above_every_other(directories: dict[str, object],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # Given: seven podcasts listed for "MLP": two on master limited partnerships, the
    # others MLP in another sense (neural nets, ponies, medical-legal, a typo) or off topic
    # When
    assert main(["discover", "--query", FINANCE_QUERY, "--json"]) == 0
    captured = capsys.readouterr()
    found = _json_lines(captured.out)
    # Then: the two on-topic feeds lead, each explained; the rest have no match
    on_topic = [slug for slug, (yes, _) in FEED_SET.items() if yes]
    slugs = [next(s for s in FEED_SET if f"/{s}.xml" in str(c["feed_url"])) for c in found]
    assert set(slugs) == set(FEED_SET), "one candidate per podcast"
    assert sorted(slugs[:len(on_topic)]) == sorted(on_topic)
    assert all(c["matches"] > 0 and c["score"] > 0 for c in found[:2])
    assert all(c["matches"] == 0 and c["score"] == 0 for c in found[2:])
    assert set(found[0]) == {"feed_url", "title", "sources", "checked", "matches", "score", "examples",
                             "explanation", "error"}
    best = found[slugs.index("midstream-minute")]
    assert best["sources"] == ["apple", "podcastindex"], "folded by podcast:guid across the two directories"
    assert f"of the last {best['checked']} episodes match; latest " in str(best["explanation"])
    assert "directory calls" in captured.err and "feeds checked" in captured.err


@pytest.mark.parametrize(("query", "expected"), [
    (FINANCE_QUERY, ["master limited partnership", "MLP", "midstream"]),
    ('MLP -pony -"medical-legal"', ["MLP"]),
    ('title:"multilayer perceptron" OR (MLP (neural OR NOT pony))', ["multilayer perceptron", "MLP", "neural"]),
    ('podcast:"Odd Lots" duration:>20m', ["Odd Lots"]),
], ids=["finance", "negations-dropped", "not-inside-or", "fielded-and-duration"])
def test_search_terms_are_the_positive_words_and_phrases(query: str, expected: list[str]) -> None:
    assert search_terms(parse_query(query), limit=3) == expected


def test_podcastindex_auth_follows_the_documented_algorithm(directories: dict[str, object]) -> None:
    index = directories["index"]
    assert isinstance(index, FakePodcastIndex)
    settings = Settings.from_env(EARSHOT_ALLOW_PRIVATE_ADDRESSES="true")
    hits = PodcastIndex(settings).search("midstream")
    assert hits and index.auth_failures == 0
    headers = podcastindex_auth_headers("k", "s", 1700000000)
    assert headers == {"X-Auth-Key": "k", "X-Auth-Date": "1700000000",
                       "Authorization": "e5b405233537c8825f2c365d91c7dec6669650de"}
    wrong = PodcastIndex(settings.with_(podcastindex_secret="not-the-secret"))
    with pytest.raises(DirectoryError, match="HTTP 401"):
        wrong.search("midstream")
    assert index.auth_failures == 1


def test_directory_endpoints_pass_the_ssrf_guard(directories: dict[str, object]) -> None:
    # The deployed default: no private addresses; a loopback endpoint is refused.
    with pytest.raises(DirectoryError, match="loopback"):
        PodcastIndex(Settings.from_env()).search("midstream")


@pytest.mark.parametrize("trouble", ["throttle", "malformed"])
def test_a_failing_directory_is_a_clear_warning_and_loses_nothing(
        trouble: str, directories: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    apple = directories["apple"]
    assert isinstance(apple, FakeAppleSearch)
    if trouble == "throttle":
        apple.throttle = 429
    else:
        apple.malformed = True
    assert main(["topics", "add", "mlp-finance", "--name", "MLPs", f"--query={FINANCE_QUERY}"]) == 0
    capsys.readouterr()

    assert main(["topics", "discover", "mlp-finance", "--json"]) == 0
    captured = capsys.readouterr()
    expected = "HTTP 429" if trouble == "throttle" else "not JSON"
    assert "warning: Apple Podcasts search" in captured.err and expected in captured.err
    found = _json_lines(captured.out)
    assert {s for c in found for s in c["sources"]} == {"podcastindex"}, "the other directory's finds are kept"
    assert any("midstream-minute" in str(c["feed_url"]) for c in found)

    if trouble == "throttle":
        asked = len(apple.calls)
        assert asked == 1, "a throttled directory is left for the rest of the run"
        assert main(["topics", "discover", "mlp-finance"]) == 0
        assert "not asked again yet" in capsys.readouterr().err
        assert len(apple.calls) == asked, "and not asked again while it cools down"


def test_topic_candidates_approve_reject_and_never_again(directories: dict[str, object],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "add", "mlp-finance", "--name", "MLPs", f"--query={FINANCE_QUERY}"]) == 0
    capsys.readouterr()

    # Given a discovery run: only candidates with matching episodes wait for a decision
    assert main(["topics", "discover", "mlp-finance"]) == 0
    out = capsys.readouterr().out
    assert "2 candidates with matching episodes, 0 added, 2 waiting" in out
    assert main(["topics", "candidates", "mlp-finance", "--json"]) == 0
    waiting = _json_lines(capsys.readouterr().out)
    assert [c["status"] for c in waiting] == ["proposed", "proposed"]
    first, second = (str(c["feed_url"]) for c in waiting)

    # When one is approved and the other rejected
    assert main(["topics", "approve", "mlp-finance", "1"]) == 0
    assert f"added {first}" in capsys.readouterr().out
    assert main(["topics", "reject", "mlp-finance", second]) == 0
    capsys.readouterr()

    # Then the approved one is a feed with its provenance, checked at once by `run`
    assert main(["feeds", "list", "--json"]) == 0
    feeds = _json_lines(capsys.readouterr().out)
    assert [f["url"] for f in feeds] == [first]
    provenance = feeds[0]["provenance"]
    assert provenance["topic"] == "mlp-finance" and "apple" in provenance["sources"] and provenance["terms"]
    # and neither is proposed again; the directories' answers come from the cache
    apple = directories["apple"]
    assert isinstance(apple, FakeAppleSearch)
    asked = len(apple.calls)
    assert main(["topics", "discover", "mlp-finance"]) == 0
    captured = capsys.readouterr()
    assert "0 candidates with matching episodes; 2 listings of feeds already followed; 1 decided before, " \
           "0 added, 0 waiting" in captured.out, "the approved podcast is listed by both directories"
    assert "0 directory calls" in captured.err and len(apple.calls) == asked
    assert "5 feeds checked" in captured.err, "neither the followed nor the rejected feed is fetched again"


def test_add_takes_those_above_the_threshold(directories: dict[str, object],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "add", "mlp-finance", "--name", "MLPs", f"--query={FINANCE_QUERY}"]) == 0
    capsys.readouterr()
    assert main(["topics", "discover", "mlp-finance", "--add", "--min-matches", "5"]) == 0
    out = capsys.readouterr().out
    added = [line for line in out.splitlines() if line.startswith("added ")]
    assert len(added) == 1 and "midstream-minute" in added[0], "only the feed with 5+ matching episodes"
    assert "1 added, 1 waiting" in out


def test_an_unfetchable_feed_is_judged_on_the_index_copy(directories: dict[str, object], feed_server: FeedServer,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    shows = directories["shows"]
    assert isinstance(shows, list)
    gone = Show(title="Pipeline Talk", feed_url=feed_server.url("/feeds/pipeline-talk.xml"), keywords=("MLP",),
                pi_id=555, pi_episodes=[pi_episode(1, 555, "MLP distribution coverage in Q3",
                                                   "Midstream names held up.", datetime(2026, 11, 2, tzinfo=UTC))])
    feed_server.route("/feeds/pipeline-talk.xml", Serve(b"", status=404))
    index = directories["index"]
    assert isinstance(index, FakePodcastIndex)
    index.shows.append(gone)
    assert main(["discover", "--query", FINANCE_QUERY, "--source", "podcastindex", "--json"]) == 0
    found = {str(c["feed_url"]): c for c in _json_lines(capsys.readouterr().out)}
    judged = found[gone.feed_url]
    assert judged["matches"] == 1 and "HTTP 404" in str(judged["error"])
    assert "(the Podcast Index's copy; the feed itself: HTTP 404" in str(judged["explanation"])


def test_unknown_source_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover", "--query", "MLP", "--source", "spotify"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown source spotify")


def test_pacer_spaces_calls_by_the_published_rate() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    pacer = CallPacer(20, monotonic=lambda: clock[0], sleep=sleep)
    for _ in range(3):
        pacer.wait()
    clock[0] += 10  # a pause longer than the interval: the next call goes at once
    pacer.wait()
    assert slept == [3.0, 3.0]


def test_settings_default_to_the_public_endpoints() -> None:
    settings = Settings.from_env({})
    assert settings.apple_search_url == "https://itunes.apple.com/search"
    assert settings.podcastindex_url == "https://api.podcastindex.org/api/1.0"
    assert settings.apple_calls_per_minute == 20
    assert timedelta(seconds=settings.directory_cache_ttl_s) == timedelta(days=7)


@pytest.mark.parametrize(("answer", "expected"), [
    (Serve(b"", status=302, headers={"Location": "/elsewhere"}), "a redirect, not an answer"),
    (Serve(b'{"resultCount": 0, "results": []}' + b" " * 2048, headers={"Content-Type": "text/javascript"}),
     "cap"),
    (Serve(b'{"resultCount": 1, "results": {"feedUrl": "x"}}', headers={"Content-Type": "text/javascript"}),
     "without a 'results' list"),
    (Serve(b"", status=403), "HTTP 403"),
], ids=["redirect", "over-the-cap", "wrong-shape", "forbidden"])
def test_directory_answers_are_held_to_the_fetchers_rules(answer: Serve, expected: str,
                                                          feed_server: FeedServer) -> None:
    from earshot.directory.clients import AppleSearch

    settings = Settings.from_env({}, EARSHOT_ALLOWED_HOSTS=",".join(feed_server.authorities),
                                 EARSHOT_APPLE_SEARCH_URL=feed_server.route("/search", answer),
                                 EARSHOT_DIRECTORY_MAX_BODY_BYTES="1024", EARSHOT_APPLE_CALLS_PER_MINUTE="60000")
    with pytest.raises(DirectoryError, match=expected):
        AppleSearch(settings).search("MLP")


def test_feed_urls_the_door_refuses_are_no_candidates(directories: dict[str, object],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # Given: the directories also list shows whose feed URL Earshot may not store
    # (another scheme, a CR/LF, one longer than a key may be)
    hostile = ["javascript:alert(1)", "file:///etc/passwd", "https://evil.example/a\r\nb.xml",
               "https://long.example/" + "a" * 1_100 + ".xml"]
    shows = directories["shows"]
    assert isinstance(shows, list)
    for n, url in enumerate(hostile):
        shows.append(Show(title=f"Hostile {n}", feed_url=url, keywords=("MLP", "midstream"), pi_id=900 + n,
                          itunes_id=99000 + n))
    # When
    assert main(["discover", "--query", FINANCE_QUERY, "--json"]) == 0
    found = _json_lines(capsys.readouterr().out)
    # Then: the healthy candidates are all there, none of the refused URLs is
    urls = {str(c["feed_url"]) for c in found}
    assert not urls & set(hostile)
    assert len(found) == len(FEED_SET)
