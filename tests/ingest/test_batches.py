"""``parse_in_batches`` gives what ``parse_feed`` gives: the same feed, warnings, id
choices and episodes in the same order, only handed out a batch at a time -- on the
sample feeds with both parsers, on generated feeds whose guids repeat across batch
boundaries, and on every corpus file the fast path reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from earshot.errors import ParseError
from earshot.ingest.parser import PARSER_CHOICES, ParserChoice, parse_in_batches
from earshot.ingest.parser import parse_feed as parse_whole
from tests.support.bigfeed import generated_feed

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "feeds"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "feeds"
URL = "https://feeds.example/show.xml"


def assert_same_as_whole(body: bytes, parser: ParserChoice, batch_size: int) -> None:
    try:
        whole = parse_whole(body, url=URL, parser=parser)
    except ParseError as exc:
        with pytest.raises(type(exc)):
            parse_in_batches(body, url=URL, parser=parser, batch_size=batch_size)
        return
    with parse_in_batches(body, url=URL, parser=parser, batch_size=batch_size) as batched:
        batches = list(batched.batches())
        assert batched.feed == whole.feed
        assert batched.warnings == whole.warnings
        assert batched.id_choices == whole.id_choices
        assert batched.episode_count == len(whole.episodes)
    assert all(0 < len(b) <= batch_size for b in batches)
    assert [e for b in batches for e in b] == whole.episodes


@pytest.mark.parametrize("parser", PARSER_CHOICES)
@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.xml")), ids=lambda p: p.name)
def test_samples_come_out_the_same_in_batches(path: Path, parser: ParserChoice) -> None:
    assert_same_as_whole(path.read_bytes(), parser, batch_size=3)


@pytest.mark.parametrize("parser", PARSER_CHOICES)
@pytest.mark.parametrize("batch_size", [1, 7, 50, 500])
def test_guids_repeated_across_batches_give_the_same_ids(parser: ParserChoice, batch_size: int) -> None:
    body = generated_feed(100)
    assert_same_as_whole(body, parser, batch_size)
    with parse_in_batches(body, url=URL, parser=parser, batch_size=batch_size) as batched:
        ids = [e.id for b in batched.batches() for e in b]
    assert len(ids) == len(set(ids)) == 99, "item 60 repeats item 5; every other item is an episode"
    assert sum(i.startswith("g-3#") for i in ids) == 3 and "g-3" not in ids


@pytest.mark.parametrize("body", [b"", b" \n\t ", b"<html><body>no</body></html>", b"<rss><channel><item>"])
def test_what_is_not_a_feed_fails_the_same_way(body: bytes) -> None:
    for parser in PARSER_CHOICES:
        assert_same_as_whole(body, parser, batch_size=5)


def test_every_corpus_file_comes_out_the_same_in_batches() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the team corpus is not at {CORPUS}")
    for path in sorted(CORPUS.iterdir()):
        assert_same_as_whole(path.read_bytes(), "auto", batch_size=10)
