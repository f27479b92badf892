"""The backfill as a fan-out on the embedded stack (moto; table and queues from
template.yaml): the coordinator queues one message per segment, the backfill worker
function runs them, a worker that fails mid-way is retried, and the topic ends with
exactly the matches a single pass over the whole archive finds; locally the same
segments run in-process over SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from earshot import runtime
from earshot.models import Episode, FeedState, MatchedEpisode
from earshot.store import Store, feed_id_for
from earshot.store.dynamodb import DynamoStore
from earshot.topics.backfill import SegmentTask, run_backfill, run_segment
from earshot.topics.matching import Podcast, clear_topic_cache, match_episodes
from earshot.topics.query import parse_query
from earshot.topics.service import add_topic, backfill_status, edit_topic, topic_matches
from earshot_local.sqlite_store import SqliteStore
from tests.support.aws_stack import REGION, EmbeddedBackend, sample_event

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
WORDS = ["MLP", "midstream", "pipeline", "pony", "neural", "energy", "tax", "news", "K-1", "yield"]


def _archive(repo: Store, feeds: int = 24, per_feed: int = 15) -> None:
    """Synthetic feeds whose episodes mix the words above (deterministically)."""
    for f in range(feeds):
        url = f"https://f{f}.example/feed.xml"
        repo.add_feed(FeedState(feed_id=feed_id_for(url), url=url, title=f"Show {f}", created_at=NOW))
        episodes = []
        for e in range(per_feed):
            words = [WORDS[(f * 7 + e * 3 + k) % len(WORDS)] for k in range(1 + (f + e) % 4)]
            episodes.append(Episode(id=f"ep{e}", title=" ".join(words[:2]), summary=" ".join(words[2:]),
                                    published=NOW.replace(day=1 + e)))
        repo.put_new_episodes(feed_id_for(url), episodes, NOW)


def _single_pass(repo: Store, query: str) -> set[tuple[str, str, str]]:
    """The archive matched in one process, the way backfill used to: every episode, its feed's podcast."""
    podcasts = {feed.feed_id: Podcast.of(feed) for feed in repo.list_feeds()}
    found: list[MatchedEpisode] = []
    for episode in repo.iter_all_episodes():
        assert episode.feed_id is not None
        found += match_episodes(parse_query(query), [episode], feed_id=episode.feed_id,
                                podcast=podcasts[episode.feed_id])
    return {(m.feed_id, m.episode_id, m.reason) for m in found}


def _stored(repo: Store, slug: str) -> set[tuple[str, str, str]]:
    return {(m.feed_id, m.episode_id, m.reason) for m in topic_matches(repo, slug)[1]}


@pytest.fixture
def fanout() -> Iterator[EmbeddedBackend]:
    # Pages of 20 items, so a segment takes several pages and can fail between them.
    with EmbeddedBackend(extra_env={"EARSHOT_BACKFILL_PAGE_SIZE": "20"}) as backend:
        clear_topic_cache()
        yield backend


def _drain(backend: EmbeddedBackend) -> None:
    """Run the backfill worker on each queued message, one at a time, as the event source would."""
    url = backend.settings.backfill_queue_url
    while (event := backend.receive_sqs_event(url, max_messages=1)) is not None:
        assert backend.invoke("backfill_worker", event)["batchItemFailures"] == []
        boto3.client("sqs", region_name=REGION).delete_message(
            QueueUrl=url, ReceiptHandle=event["Records"][0]["receiptHandle"])


def test_segmented_backfill_with_a_failing_worker_ends_with_the_single_pass_matches(
    fanout: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = runtime.store()
    _archive(repo)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = fanout.settings.backfill_queue_url
    send = runtime.backfill_queue().send_messages

    # Given a topic whose old query left matches the new query will not keep
    add_topic(repo, "mlp", name="MLPs", query="pony", now=NOW, fan_out=send, segments=6)
    _drain(fanout)
    assert _stored(repo, "mlp") == _single_pass(repo, "pony") != set()
    assert backfill_status(repo, "mlp") == "backfilled"

    # When the query is edited: the coordinator records a run and queues 6 segments
    query = "MLP (midstream OR pipeline OR tax) -neural"
    result = edit_topic(repo, "mlp", query=query, now=NOW, fan_out=send, segments=6)
    assert result.job is not None and result.job.status == "backfilling 0 %"
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "6"

    # ... and one worker dies after writing its second page's matches, before recording it
    original = DynamoStore.save_segment_progress
    pages: dict[int, int] = {}

    def flaky(self: DynamoStore, slug: str, run_id: str, segment: int, progress: Any) -> Any:
        pages[segment] = pages.get(segment, 0) + 1
        if pages[segment] == 2 and not failed_events:
            raise RuntimeError("worker lost mid-segment")
        return original(self, slug, run_id, segment, progress)

    monkeypatch.setattr(DynamoStore, "save_segment_progress", flaky)
    failed_events: list[dict[str, Any]] = []
    statuses: list[str | None] = []
    url = fanout.settings.backfill_queue_url
    while (event := fanout.receive_sqs_event(url, max_messages=1)) is not None:
        statuses.append(backfill_status(repo, "mlp"))
        try:
            result = fanout.invoke("backfill_worker", event)
        except BatchProcessingError:  # the invocation fails (alarmed); SQS keeps the message
            failed_events.append(event)  # in flight until its visibility timeout
            continue
        assert result["batchItemFailures"] == []
        sqs.delete_message(QueueUrl=url, ReceiptHandle=event["Records"][0]["receiptHandle"])
    assert len(failed_events) == 1
    (failed,) = failed_events
    segment = json.loads(failed["Records"][0]["body"])["segment"]
    mid = repo.get_backfill("mlp")
    assert mid is not None and mid.finished_at is None and mid.done_segments == 5
    assert mid.segments[segment].cursor is not None, "the first page's progress is kept"
    # Then stale matches are still shown while a segment is outstanding
    assert _stored(repo, "mlp") & (_single_pass(repo, "pony") - _single_pass(repo, query))

    # When the failed message comes back (redelivered after its visibility timeout)
    assert fanout.invoke("backfill_worker", failed)["batchItemFailures"] == []
    sqs.delete_message(QueueUrl=url, ReceiptHandle=failed["Records"][0]["receiptHandle"])
    # ... and a segment's message is delivered once more (SQS delivers at least once)
    replay = sample_event("backfill_worker_segment")
    replay["Records"][0]["body"] = failed["Records"][0]["body"]
    assert fanout.invoke("backfill_worker", replay)["batchItemFailures"] == []

    # Then the topic holds exactly what one pass over the whole archive finds
    expected = _single_pass(repo, query)
    assert expected and _stored(repo, "mlp") == expected
    job = repo.get_backfill("mlp")
    assert job is not None and job.status == "backfilled" and job.matched >= len(expected)
    assert job.scanned >= 24 * 15 and job.removed == len(_single_pass(repo, "pony") - expected)
    percents = [int(s.split()[1]) for s in statuses if s and s.startswith("backfilling")]
    assert percents == sorted(percents) and percents[0] == 0 and len(set(percents)) > 2


def test_a_superseded_run_stops_and_a_paused_segment_resumes(fanout: EmbeddedBackend) -> None:
    repo = runtime.store()
    _archive(repo, feeds=8)
    add_topic(repo, "t", name="T", query="pony", now=NOW)
    # Given run 1 queued, then the query edited again before any worker ran (run 2)
    first = edit_topic(repo, "t", query="energy", now=NOW, fan_out=lambda bodies: len(bodies), segments=2)
    second = edit_topic(repo, "t", query="midstream", now=NOW, fan_out=lambda bodies: len(bodies), segments=2)
    assert first.job is not None and second.job is not None
    stale = SegmentTask(slug="t", run_id=first.job.run_id, segment=0, total_segments=2)
    # When run 1's segment arrives: it stops without writing
    assert run_segment(repo, stale, now=lambda: NOW).state == "superseded"
    # When run 2's segment is paused after each page (a Lambda running out of time)...
    task = SegmentTask(slug="t", run_id=second.job.run_id, segment=0, total_segments=2)
    paused = run_segment(repo, task, now=lambda: NOW, page_size=10, should_continue=lambda: False)
    assert paused.state == "paused" and paused.pages == 1
    # ... it resumes where it stopped, and the run finishes with the second segment
    while (outcome := run_segment(repo, task, now=lambda: NOW, page_size=10, should_continue=lambda: False)).state \
            == "paused":
        pass
    assert outcome.state == "done"
    done = run_segment(repo, task.model_copy(update={"segment": 1}), now=lambda: NOW, page_size=10)
    assert done.finished_run
    assert _stored(repo, "t") == _single_pass(repo, "midstream")


def test_local_backfill_runs_the_same_segments_in_process(tmp_path: Path) -> None:
    repo = SqliteStore(tmp_path / "earshot.db")
    _archive(repo)
    result = add_topic(repo, "mlp", name="MLPs", query="pony", now=NOW)
    assert result.job is not None and result.job.status == "backfilled"
    assert _stored(repo, "mlp") == _single_pass(repo, "pony")
    edited = edit_topic(repo, "mlp", query="MLP tax", now=NOW)
    assert _stored(repo, "mlp") == _single_pass(repo, "MLP tax")
    assert edited.removed == len(_single_pass(repo, "pony") - _single_pass(repo, "MLP tax"))
    topic = repo.get_topic("mlp")
    assert topic is not None
    job = run_backfill(repo, topic, total_segments=5, now=lambda: NOW, page_size=7)
    assert job.matched == len(_single_pass(repo, "MLP tax")) and job.removed == 0
    repo.close()


def test_the_cli_fans_out_on_aws_and_shows_progress(fanout: EmbeddedBackend,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from earshot_local.cli import main

    _archive(runtime.store(), feeds=12)
    # Given the stack's backfill queue (BACKFILL_QUEUE_URL is set), When a topic is added
    assert main(["topics", "--backend", "aws", "add", "mlp", "--name", "MLPs", "--query", "pony OR tax"]) == 0
    out = capsys.readouterr().out
    # Then the CLI queued the segments and says so, and the topic shows its progress
    assert out.startswith("added mlp: backfilling 0 %: 32 segments queued"), out
    assert main(["topics", "--backend", "aws", "list"]) == 0
    assert "mlp                      MLPs  (backfilling 0 %)" in capsys.readouterr().out
    assert main(["topics", "--backend", "aws", "show", "mlp"]) == 0
    assert "backfilling 0 %: the numbers below grow until it is done" in capsys.readouterr().out
    # When the workers have run every segment, Then the topic is complete
    _drain(fanout)
    assert main(["topics", "--backend", "aws", "show", "mlp", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["backfill"] == "backfilled"
    assert _stored(runtime.store(), "mlp") == _single_pass(runtime.store(), "pony OR tax") != set()
