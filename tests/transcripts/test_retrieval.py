"""Fetching transcripts over real loopback sockets: the straight line (fetch, parse, archive,
state, match), conditional GETs, hostile transcripts ending as typed errors while the
episode stays, retries that back off; then the whole product through the CLI: a
transcript-only match on the topic page and in the digest with a working ``#t=`` link."""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from earshot.errors import TranscriptMalformed
from earshot.models import Episode, Transcript
from earshot.settings import Settings
from earshot.store.port import feed_id_for
from earshot.topics.matching import clear_topic_cache
from earshot.topics.service import add_topic
from earshot.transcripts.retrieval import (
    TranscriptJob,
    fetch_transcript,
    process_transcript_job,
    process_transcript_jobs,
    retry_jobs,
)
from earshot_local.cli import main
from earshot_local.sqlite_store import SqliteStore
from tests.support.feedserver import DeclaredHuge, Delayed, FeedServer, GiB, Serve, Validated

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
JSON_TYPE = {"Content-Type": "application/json"}


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "earshot.db")
    clear_topic_cache()
    yield store
    clear_topic_cache()
    store.close()


@pytest.fixture
def settings(feed_server: FeedServer) -> Settings:
    return Settings(EARSHOT_ALLOWED_HOSTS=",".join(feed_server.authorities), EARSHOT_TOTAL_TIMEOUT_S=2.0,
                    EARSHOT_TRANSCRIPT_MAX_BYTES=64 * 1024)


def _episode_with(repo: SqliteStore, *transcripts: Transcript, title: str = "Weekly markets") -> Episode:
    """A stored feed with one stored episode listing ``transcripts``."""
    from earshot.ingest.refresh import new_feed

    feed = new_feed("https://pod.example/feed.xml", NOW).model_copy(update={"title": "Midstream Minute"})
    repo.add_feed(feed)
    episode = Episode(id="ep-142", guid="ep-142", title=title, summary="Rates and oil.", published=NOW,
                      audio_url="https://media.example/142.mp3", transcripts=transcripts)
    repo.put_new_episodes(feed.feed_id, [episode], NOW)
    return episode


def _job(episode: Episode, attempt: int = 0) -> TranscriptJob:
    return TranscriptJob(feed_id=feed_id_for("https://pod.example/feed.xml"), episode_id=episode.id, attempt=attempt)


def test_a_transcript_is_fetched_archived_and_matched_at_its_moment(
    repo: SqliteStore, settings: Settings, feed_server: FeedServer
) -> None:
    # Given a topic that searches transcripts, and an episode whose notes never say MLP
    add_topic(repo, "mlp", name="MLPs", query="MLP", now=NOW, search_transcripts=True, archive=repo)
    assert repo.count_matches("mlp") == 0
    url = feed_server.route("/142.json", Validated((FIXTURES / "podcasting20.json").read_bytes(), etag='"t1"'))
    episode = _episode_with(repo, Transcript(url=feed_server.url("/142.html"), type="text/html"),
                            Transcript(url=url, type="application/json"))
    # When the transcript worker's line runs
    outcome = process_transcript_job(_job(episode), repo=repo, archive=repo, settings=settings, now=NOW)
    # Then the JSON (the richest format) was fetched once, archived, and the episode matched at 12:34
    assert (outcome.result, outcome.format, outcome.matches, outcome.url) == ("fetched", "json", 1, url)
    assert len(feed_server.requests_to("/142.json")) == 1 and feed_server.requests_to("/142.html") == []
    state = repo.get_transcript_state(outcome.feed_id, episode.id)
    assert state is not None and (state.status, state.etag, state.cue_count, state.has_times) == ("fetched", '"t1"', 10, True)
    assert repo.get_transcript(outcome.feed_id, episode.id)[5].text == "MLPs"  # type: ignore[index]
    [match] = repo.list_matches("mlp")
    assert match.reason == "MLPs in transcript at 12:34 — 'Welcome back. This is why MLPs cut distributions. Master…'"
    assert (match.moment.start_seconds, match.transcript_url) == (754, url)  # type: ignore[union-attr]

    # When it is processed again (the episode changed): a conditional GET, 304, the archive stands
    again = process_transcript_job(_job(episode), repo=repo, archive=repo, settings=settings, now=NOW)
    assert (again.result, again.matches) == ("not_modified", 1)
    assert feed_server.requests_to("/142.json")[-1].headers.get("if-none-match") == '"t1"'
    assert feed_server.requests_to("/142.json")[-1].status == 304
    assert repo.get_transcript_state(outcome.feed_id, episode.id).etag == '"t1"'  # type: ignore[union-attr]


def test_backfill_on_topic_add_and_edit_covers_stored_transcripts(
    repo: SqliteStore, settings: Settings, feed_server: FeedServer
) -> None:
    url = feed_server.route("/142.vtt", Serve((FIXTURES / "captions.vtt").read_bytes(), headers={}))
    episode = _episode_with(repo, Transcript(url=url))  # no type: sniffed once fetched
    assert process_transcript_job(_job(episode), repo=repo, archive=repo, settings=settings, now=NOW).matches == 0
    # A topic added later finds the stored transcript; one without the switch does not.
    result = add_topic(repo, "k1", name="K-1s", query='transcript:"K-1s"', now=NOW, archive=repo)
    assert result.matched == 1
    assert repo.list_matches("k1")[0].moment.start_seconds == 754  # type: ignore[union-attr]
    assert add_topic(repo, "plain", name="P", query="Midstream", now=NOW, archive=repo).matched == 0
    from earshot.topics.service import edit_topic

    switched = edit_topic(repo, "plain", search_transcripts=True, now=NOW, archive=repo)
    assert switched.matched == 1 and repo.list_matches("plain")[0].moment.start_seconds == 0  # type: ignore[union-attr]


HOSTILE = [
    ("/missing.json", None, "http_404"),
    ("/huge.json", DeclaredHuge(declared_bytes=GiB, body=b"{}"), "body_too_large"),  # a 1 GB declared length
    ("/endless.vtt", Serve(b"WEBVTT\n\n" + b"00:01.000 --> 00:02.000\nMLPs\n\n" * 4000, headers={}), "body_too_large"),
    ("/audio.json", Serve((FIXTURES / "binary.json").read_bytes(), headers={"Content-Type": "audio/mpeg"}),
     "transcript_unreadable"),
    ("/scripts.html", Serve((FIXTURES / "script-only.html").read_bytes(), headers={"Content-Type": "text/html"}),
     "transcript_malformed"),
    ("/broken.json", Serve((FIXTURES / "broken.json").read_bytes(), headers=JSON_TYPE), "transcript_malformed"),
]


@pytest.mark.parametrize(("path", "behaviour", "kind"), HOSTILE, ids=[k for _, _, k in HOSTILE])
def test_hostile_transcripts_end_as_typed_errors_while_the_episode_stays(
    repo: SqliteStore, settings: Settings, feed_server: FeedServer, path: str, behaviour: object, kind: str
) -> None:
    url = feed_server.route(path, behaviour) if behaviour else feed_server.url(path)  # type: ignore[arg-type]
    episode = _episode_with(repo, Transcript(url=url, type="application/json"))
    add_topic(repo, "weekly", name="Weekly", query="weekly", now=NOW, search_transcripts=True, archive=repo)
    outcome = process_transcript_job(_job(episode), repo=repo, archive=repo, settings=settings, now=NOW)
    assert (outcome.result, outcome.error_kind) == ("failed", kind)
    state = repo.get_transcript_state(outcome.feed_id, episode.id)
    assert state is not None and (state.status, state.last_error_kind, state.attempts) == ("failed", kind, 1)
    assert state.last_error_message
    assert repo.get_transcript(outcome.feed_id, episode.id) is None
    # the episode is untouched and still matched on its title
    assert repo.get_episode(outcome.feed_id, episode.id) is not None
    assert [m.reason for m in repo.list_matches("weekly")] == ["Weekly in title"]


def test_a_failing_first_choice_falls_back_to_the_next(
    repo: SqliteStore, settings: Settings, feed_server: FeedServer
) -> None:
    srt = feed_server.route("/142.srt", Serve((FIXTURES / "subtitles.srt").read_bytes(), headers={}))
    episode = _episode_with(repo, Transcript(url=feed_server.url("/gone.json"), type="application/json"),
                            Transcript(url=srt, type="application/x-subrip"))
    outcome = process_transcript_job(_job(episode), repo=repo, archive=repo, settings=settings, now=NOW)
    assert (outcome.result, outcome.url, outcome.format, outcome.requests) == ("fetched", srt, "srt", 2)


def test_failures_that_may_pass_are_retried_with_backoff_then_recorded(
    repo: SqliteStore, settings: Settings, feed_server: FeedServer
) -> None:
    url = feed_server.route("/busy.json", Serve(b"busy", status=503, headers={"Retry-After": "120"}))
    slow = feed_server.route("/slow.vtt", Delayed(5.0))
    episode = _episode_with(repo, Transcript(url=url, type="application/json"))
    delays = []
    for attempt in range(settings.transcript_max_attempts):
        [outcome] = process_transcript_jobs([_job(episode, attempt)], repo=repo, archive=repo, settings=settings,
                                            now=NOW)
        delays.append(outcome.retry_in_s)
        requeued = retry_jobs([outcome])
        if outcome.retry_in_s:
            assert requeued == {outcome.retry_in_s: [_job(episode, attempt + 1).model_dump()]}
    # 503 with Retry-After: 120 -> 120 s, then 300, 900; the fourth failure is final
    assert delays == [120, 300, 900, None]
    state = repo.get_transcript_state(outcome.feed_id, episode.id)
    assert state is not None and (state.status, state.last_error_kind, state.attempts) == ("failed", "http_503", 4)
    # a timeout is retried too; its state says when
    timed = _episode_with(repo, Transcript(url=slow, type="text/vtt"), title="Slow one")
    outcome = process_transcript_job(_job(timed), repo=repo, archive=repo, settings=settings, now=NOW)
    assert (outcome.result, outcome.error_kind, outcome.retry_in_s) == ("retrying", "timeout", 60)
    assert repo.get_transcript_state(outcome.feed_id, timed.id).next_attempt_at == NOW + timedelta(seconds=60)  # type: ignore[union-attr]


def test_no_fetchable_transcript_is_a_typed_error(repo: SqliteStore, settings: Settings) -> None:
    episode = _episode_with(repo, Transcript(url="ftp://pod.example/142.txt", type="text/plain"))
    outcome = process_transcript_job(_job(episode), repo=repo, archive=repo, settings=settings, now=NOW)
    assert (outcome.result, outcome.error_kind) == ("failed", "no_transcript")


def test_the_ssrf_guard_applies_to_transcripts(repo: SqliteStore, feed_server: FeedServer) -> None:
    url = feed_server.route("/t.vtt", Serve((FIXTURES / "captions.vtt").read_bytes()))
    episode = _episode_with(repo, Transcript(url=url, type="text/vtt"))
    outcome = process_transcript_job(_job(episode), repo=repo, archive=repo, settings=Settings(), now=NOW)
    assert (outcome.result, outcome.error_kind) == ("failed", "blocked_address")
    assert feed_server.requests_to("/t.vtt") == []


def test_a_job_for_a_removed_feed_is_skipped(repo: SqliteStore, settings: Settings) -> None:
    episode = _episode_with(repo, Transcript(url="https://x.example/t.vtt", type="text/vtt"))
    repo.delete_feed(feed_id_for("https://pod.example/feed.xml"))
    outcome = process_transcript_job(_job(episode), repo=repo, archive=repo, settings=settings, now=NOW)
    assert outcome.result == "skipped"


def test_fetch_transcript_reads_local_files_only_where_allowed(tmp_path: Path) -> None:
    path = FIXTURES / "captions.vtt"
    _, parsed = fetch_transcript(Transcript(url=str(path)), settings=Settings(EARSHOT_ALLOW_LOCAL_FILES=True))
    assert parsed is not None and parsed.format == "vtt"
    with pytest.raises(Exception, match="not an http"):
        fetch_transcript(Transcript(url=str(path)), settings=Settings())
    with pytest.raises(TranscriptMalformed):
        fetch_transcript(Transcript(url=str(FIXTURES / "broken.json")), settings=Settings(EARSHOT_ALLOW_LOCAL_FILES=True))


# ------------------------------------------------------------------ the product, through the CLI
def _feed(transcript_url: str, published: str = "Tue, 24 Nov 2026 10:00:00 GMT") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0"><channel><title>Midstream Minute</title>
<item><title>Weekly markets, episode 142</title><guid>ep-142</guid><pubDate>{published}</pubDate>
<description>Rates and oil.</description>
<enclosure url="https://media.example/142.mp3" type="audio/mpeg" length="1000"/>
<podcast:transcript url="{transcript_url}" type="application/json"/>
</item>
<item><title>No transcript here</title><guid>ep-141</guid><pubDate>Tue, 17 Nov 2026 10:00:00 GMT</pubDate>
<description>MLPs in the notes.</description><enclosure url="https://media.example/141.mp3" type="audio/mpeg"/></item>
</channel></rss>""".encode()


def test_a_transcript_only_match_reaches_the_page_and_the_digest_with_a_working_link(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a feed whose episode 142 says MLPs only in its transcript, and a topic that
    # searches transcripts
    transcript = feed_server.route("/142.json", Serve((FIXTURES / "podcasting20.json").read_bytes(), headers=JSON_TYPE))
    feed = feed_server.route("/feed.xml", Serve(_feed(transcript)))
    assert main(["feeds", "add", feed]) == 0
    assert main(["topics", "add", "mlp", "--name", "MLPs", "--query", "MLP", "--search-transcripts"]) == 0
    # When Earshot runs: the feed, then its transcripts
    capsys.readouterr()
    assert main(["run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["new_episodes"] == 2 and report["transcripts"] == {"fetched": 1}
    # Then the topic page shows the moment with a #t= link on the enclosure and the transcript link
    assert main(["topics", "page", "mlp", "--out", str(tmp_path / "page.html")]) == 0
    page = (tmp_path / "page.html").read_text()
    assert 'href="https://media.example/142.mp3#t=754"' in page and "Play from 12:34" in page
    assert f'href="{transcript}"' in page and "Transcript available" in page
    assert "MLPs in transcript at 12:34" in page
    # And the digest (HTML and text) links to the moment
    assert main(["digest", "preview", "mlp", "--out", str(tmp_path / "digest"), "--week", "2026-W48"]) == 0
    html = (tmp_path / "digest" / "digest.html").read_text()
    text = (tmp_path / "digest" / "digest.txt").read_text()
    assert 'href="https://media.example/142.mp3#t=754"' in html and "Listen from 12:34" in html
    assert "TRANSCRIPT" in html and f'href="{transcript}"' in html
    assert "Listen from 12:34: https://media.example/142.mp3#t=754" in text
    message = email.message_from_bytes((tmp_path / "digest" / "digest.eml").read_bytes(), policy=email.policy.default)
    assert "#t=754" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # And the link works: a Media Fragment is not sent to the server, the enclosure URL is
    assert re.search(r"#t=754\b", page)


def test_offline_match_with_transcripts_puts_the_moment_in_the_reason(
    feed_server: FeedServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    transcript = feed_server.route("/142.json", Serve((FIXTURES / "podcasting20.json").read_bytes(), headers=JSON_TYPE))
    feed = tmp_path / "feed.xml"
    feed.write_bytes(_feed(transcript))
    # the feed's own transcript, fetched
    assert main(["match", "--query", "MLP", str(feed), "--transcripts"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_guid = {line["guid"]: line for line in lines}
    assert by_guid["ep-142"]["reason"].startswith("MLPs in transcript at 12:34")
    assert by_guid["ep-142"]["moment"] == {"start_seconds": 754, "text": "Welcome back. This is why MLPs cut distributions. Master…"}
    assert by_guid["ep-141"]["reason"] == "MLPs in description" and by_guid["ep-141"]["moment"] is None
    # a file given for the episode's guid instead
    assert main(["match", "--query", "transcript:K-1", str(feed), "--transcripts",
                 f"ep-142={FIXTURES / 'captions.vtt'}"]) == 0
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["moment"]["start_seconds"] == 754
    # without --transcripts nothing is fetched and the transcript is not searched
    before = len(feed_server.requests_to("/142.json"))
    assert main(["match", "--query", "MLP", str(feed)]) == 0
    assert [json.loads(x)["guid"] for x in capsys.readouterr().out.splitlines()] == ["ep-141"]
    assert len(feed_server.requests_to("/142.json")) == before


def test_parse_lists_the_chosen_transcript(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(_feed("https://pod.example.org/142.json").replace(
        b'<podcast:transcript url="https://pod.example.org/142.json" type="application/json"/>',
        b'<podcast:transcript url="https://pod.example.org/142.html" type="text/html"/>'
        b'<podcast:transcript url="https://pod.example.org/142.vtt" type="text/vtt"/>'))
    assert main(["parse", str(feed)]) == 0
    episodes = json.loads(capsys.readouterr().out)["episodes"]
    assert episodes[0]["transcript"] == {"url": "https://pod.example.org/142.vtt", "type": "text/vtt", "language": None,
                                         "rel": None}
    assert episodes[1]["transcript"] is None
