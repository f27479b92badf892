"""Percolation never hides a match: over many random queries and episodes, evaluating
only the index's candidates finds exactly what evaluating every topic finds."""

from __future__ import annotations

import random

import pytest

from earshot.errors import QueryError
from earshot.models import Episode, Topic
from earshot.topics.matching import TopicIndex, compile_topics, match_every_topic, match_percolated
from earshot.topics.percolator import Percolator, required_keys
from earshot.topics.query import parse_query

# Words chosen to exercise the matching rules: acronyms (case-sensitive), plurals (-s,
# -es, -ies), possessives, a multi-word term, words that look like plurals but are not.
VOCAB = ["MLP", "mlp", "pony", "ponies", "box", "boxes", "midstream", "pipeline", "news", "series",
         "K-1", "AI", "ai", "energy", "Odd", "lots", "partnership", "partnerships", "US", "us", "analysis"]
EPISODE_WORDS = [*VOCAB, "MLPs", "MLP's", "MLPS", "Pony", "PONY", "K-1s", "AIs", "the", "and", "Energy",
                 "pipelines", "partnership's", "&amp;", "<b>MLP</b>", "mid", "stream", "box's"]


def random_query(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 2 or roll < 0.35:
        word = rng.choice(VOCAB)
        form = rng.random()
        if form < 0.15:
            return f'"{word} {rng.choice(VOCAB)}"'
        if form < 0.25:
            return f"{rng.choice(['title', 'description', 'podcast'])}:{word}"
        return word
    if roll < 0.45:
        return f"-{random_query(rng, depth + 1)}"
    if roll < 0.5:
        return rng.choice(["duration:>20m", "duration:<1h"])
    op = rng.choice([" ", " AND ", " OR "])
    parts = [random_query(rng, depth + 1) for _ in range(rng.randint(2, 3))]
    return "(" + op.join(parts) + ")"


def random_episode(rng: random.Random, i: int) -> tuple[Episode, str]:
    def text(n: int) -> str:
        return " ".join(rng.choice(EPISODE_WORDS) for _ in range(rng.randint(0, n)))
    episode = Episode(id=f"e{i}", title=text(6), summary=text(12),
                      duration_seconds=rng.choice([None, 600, 3000, 5000]))
    return episode, text(3)


def test_percolated_matching_equals_evaluating_every_topic() -> None:
    # Given 400 random (valid) queries and 1,500 random episodes
    rng = random.Random(20261201)
    topics = []
    while len(topics) < 400:
        query = random_query(rng)
        try:
            parse_query(query)
        except QueryError:
            continue  # e.g. only negations: refused when written, never stored
        topics.append(Topic(slug=f"t{len(topics)}", name="t", query=query))
    index = TopicIndex(compile_topics(topics))
    compared = matched = 0
    for i in range(1500):
        episode, podcast = random_episode(rng, i)
        # When matched with and without the index, Then the matches are identical
        expected = match_every_topic(index.topics, episode, podcast)
        assert match_percolated(index, episode, podcast) == expected, (episode, podcast)
        compared += len(index.topics)
        matched += len(expected)
    # The random workload is not vacuous: some matches, and the index skips most topics.
    assert matched > 500
    assert compared == 400 * 1500


@pytest.mark.parametrize(("query", "keys"), [
    ("MLP", {"mlp", "mlps"}),
    ("MLP (midstream OR pipeline)", {"mlp", "mlps"}),  # the smaller set of the AND
    ("pony OR box", {"pony", "ponies", "box", "boxes"}),
    ('"limited partnership"', {"partnership", "partnerships"}),  # a phrase: its longest word
    ("-pony midstream", {"midstream", "midstreams"}),
    ("duration:>20m news", {"news", "newses"}),  # not a plural: "new" is not a form of it
    ("podcast:Odd", {"odd", "odds"}),
], ids=["acronym", "and-picks-one", "or-unites", "phrase", "negation-skipped", "duration-skipped", "field"])
def test_required_keys(query: str, keys: set[str]) -> None:
    assert required_keys(parse_query(query).root) == keys


def test_topics_without_a_required_word_are_always_evaluated() -> None:
    # A stored query that today's parser would refuse (only a negation) still gets evaluated.
    from earshot.topics.query import Not, Term
    pure_negation = Not(Term("pony", 0, ("pony",)))
    index = Percolator(["neg", "mlp"], [pure_negation, parse_query("MLP").root])
    assert index.always_evaluated == 1
    from earshot.topics.query import Document
    assert index.candidates(Document(title="nothing here")) == ["neg"]
    assert index.candidates(Document(title="MLPs rally")) == ["neg", "mlp"]
