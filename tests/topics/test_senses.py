"""The pure pieces of ``earshot.topics.senses``: words, term statistics, clustering, queries,
main terms and coverage (table-driven), then the whole line on a small fixed set."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import pytest

from earshot.models import LeftOut, Topic
from earshot.topics import senses
from earshot.topics.pages import render_topic_page
from earshot.topics.query import parse_query
from earshot.topics.senses import (
    SenseDoc,
    cluster,
    context_words,
    coverage,
    distinctive_words,
    document_frequency,
    episode_vectors,
    find_senses,
    fold,
    idf,
    main_term,
    query_text,
    suggest_query,
)
from earshot.topics.stats import build_report


@pytest.mark.parametrize(("word", "folded"), [
    ("Pipelines", "pipeline"), ("ponies", "pony"), ("boxes", "box"), ("news", "news"), ("gas", "gas"),
    ("basis", "basis"), ("class", "class"), ("MLPs", "mlp"), ("K", "k"),
], ids=lambda v: str(v))
def test_fold_is_the_word_a_query_would_use(word: str, folded: str) -> None:
    assert fold(word) == folded


@pytest.mark.parametrize(("title", "description", "exclude", "expected"), [
    ("MLPs & pipelines", "The K-1 season; 2024 tax forms", {"mlp"}, {"pipeline", "tax", "form"}),
    ("<b>Neural</b> networks", "an MLP&rsquo;s hidden layers", {"mlp"}, {"neural", "network", "hidden", "layer"}),
    ("Episode 12: the podcast", "subscribe today", set(), set()),
    ("3rd quarter, 10x", "go go go", set(), {"quarter"}),
], ids=["plurals-and-numbers", "html-and-possessive", "podcast-words", "no-letters-first"])
def test_context_words(title: str, description: str, exclude: set[str], expected: set[str]) -> None:
    assert context_words(title, description, exclude=frozenset(exclude)) == expected


def test_term_statistics() -> None:
    docs = [frozenset({"midstream", "yield"}), frozenset({"yield"}), frozenset({"neural"})]
    df = document_frequency(docs)
    assert df == Counter({"yield": 2, "midstream": 1, "neural": 1})
    weights = idf(df, len(docs))
    assert weights["midstream"] > weights["yield"] >= 1.0  # rarer words weigh more


def test_episode_vectors_bring_together_words_that_keep_the_same_company() -> None:
    # 0 and 2 share no word, but both their words occur with "pipeline" in 1.
    docs = [frozenset({"midstream"}), frozenset({"midstream", "pipeline", "coverage"}),
            frozenset({"coverage"}), frozenset({"neural"})]
    vectors = episode_vectors(docs, {w: 1.0 for d in docs for w in d})
    similarity = sum(x * vectors[2].get(k, 0.0) for k, x in vectors[0].items())
    assert similarity > 0.1
    assert not set(vectors[3]) & set(vectors[0])


@pytest.mark.parametrize(("vectors", "min_similarity", "expected"), [
    ([{"a": 1.0}, {"a": 1.0}, {"b": 1.0}], 0.5, [[0, 1], [2]]),
    ([{"a": 1.0}, {"a": 0.6, "b": 0.8}, {"b": 1.0}], 0.5, [[1, 2], [0]]),  # closest pair first
    ([{"a": 1.0}, {"a": 0.6, "b": 0.8}, {"b": 1.0}], 0.3, [[0, 1, 2]]),  # average 0.47 joins all
    ([{"a": 1.0}, {}, {}], 0.1, [[0], [1], [2]]),  # an episode with no words stays alone
    ([], 0.1, []),
], ids=["two-groups", "closest-first", "lower-threshold-merges", "empty-vectors", "nothing"])
def test_cluster(vectors: list[dict[str, float]], min_similarity: float, expected: list[list[int]]) -> None:
    assert cluster(vectors, min_similarity=min_similarity) == expected


def test_distinctive_words_rank_by_share_inside_minus_share_outside() -> None:
    inside = [frozenset({"pony", "yield"}), frozenset({"pony", "fan"}), frozenset({"pony", "fan", "yield"})]
    outside = [frozenset({"yield"}), frozenset({"yield", "tax"})]
    assert distinctive_words(inside, outside, ["pony", "fan", "yield", "tax"], 3) == ["pony", "fan"]


@pytest.mark.parametrize(("term", "include", "exclude", "expected"), [
    ("MLP", ["midstream"], [], "MLP midstream"),
    ("MLP", ["midstream", "pipeline"], ["neural", "pony"], "MLP (midstream OR pipeline) -neural -pony"),
    ("MLP", [], [], "MLP"),
    ("machine learning", ["model"], [], '"machine learning" model'),
], ids=["one-word", "or-and-not", "alone", "phrase-term"])
def test_query_text(term: str, include: list[str], exclude: list[str], expected: str) -> None:
    assert query_text(term, include, exclude) == expected
    parse_query(expected)  # every suggestion is a valid query


def test_suggest_query_covers_then_excludes() -> None:
    # "pipeline" is 4/5 the sense's: included, then "fan" removes the one it caught wrongly.
    words = [frozenset({"pipeline", "tax"}), frozenset({"pipeline"}), frozenset({"tax"}), frozenset({"pipeline"}),
             frozenset({"pipeline"}), frozenset({"pipeline", "fan"}), frozenset({"fan"}), frozenset({"pony"})]
    include, exclude = suggest_query("MLP", words, {0, 1, 2, 3, 4}, {5, 6, 7},
                                     ["pipeline", "tax", "fan", "pony"])
    assert set(include) == {"pipeline", "tax"} and exclude == ["fan"]


@pytest.mark.parametrize(("query", "term"), [
    ('"master limited partnership" OR (MLP (midstream OR K-1) -neural)', "MLP"),
    ("pony -MLP", "pony"),
    ("title:MLP midstream", "MLP"),
    ('"a b"', None),
], ids=["acronym-in-a-branch", "negated-acronym-is-not-it", "fielded", "phrase-only"])
def test_main_term(query: str, term: str | None) -> None:
    assert main_term(parse_query(query)) == term


# A small fixed set: two senses of MLP, three episodes each, plus noise the case rule drops.
DOCS = [
    SenseDoc("f1", "Midstream Minute", "MLP distributions and midstream pipelines", "Coverage ratios rise."),
    SenseDoc("f2", "Midstream Minute", "Why MLP units trade on yield", "Midstream pipelines, distributions."),
    SenseDoc("f3", "Income Show", "MLPs for income", "Pipelines, coverage and distributions."),
    SenseDoc("m1", "Gradient", "A two-layer MLP from scratch", "Hidden layer, neural network training."),
    SenseDoc("m2", "Gradient", "MLP vs attention", "Neural network layers and training."),
    SenseDoc("m3", "Talking Machines", "Why MLPs overfit", "Training a neural network with a hidden layer."),
    SenseDoc("x1", "Twin Cities", "MLPS council vote", "The mlp city council."),
]


def test_find_senses_on_a_small_fixed_set() -> None:
    report = find_senses("MLP", DOCS)
    assert report.mentions == 6 and not report.unassigned
    assert [sorted(s.episodes) for s in report.senses] == [["f1", "f2", "f3"], ["m1", "m2", "m3"]]
    finance, ml = report.senses
    assert {"midstream", "distribution", "pipeline"} & set(finance.label.split(", "))
    assert {"neural", "network", "layer", "training"} & set(ml.label.split(", "))
    assert finance.podcasts == 2 and len(finance.examples) == 3
    for sense in report.senses:  # each query selects its sense and nothing else
        query = parse_query(sense.query)
        matched = {d.id for d in DOCS if query.evaluate(d.document()).matched}
        assert matched == set(sense.episodes)
    assert find_senses("MLP", list(reversed(DOCS))) == report  # deterministic, order-free


def test_beyond_the_clustered_sample_mentions_join_the_closest_sense(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the first four (undated: by id) are clustered; the rest join a sense only when
    # close enough to it: the ML episodes are far from the finance sense.
    monkeypatch.setattr(senses, "MAX_CLUSTERED", 4)
    more = [SenseDoc("f4", "Income Show", "MLP distributions", "Midstream pipelines and coverage.")]
    report = find_senses("MLP", DOCS + more)
    assert [s.episodes for s in report.senses] == [("f1", "f2", "f3", "f4")]
    assert report.unassigned == ("m1", "m2", "m3")


def test_examples_are_distinct_titles() -> None:
    copies = [SenseDoc(f"{d.id}-copy", "Mirror", d.title, d.description) for d in DOCS[:3]]
    report = find_senses("MLP", DOCS[:3] + copies)
    [sense] = report.senses
    assert len(sense.examples) == len(set(sense.examples)) == 3


def test_a_sense_needs_three_episodes() -> None:
    report = find_senses("MLP", DOCS[:2] + DOCS[3:5])
    assert report.senses == () and len(report.unassigned) == 4


def test_coverage_names_the_senses_a_query_leaves_out() -> None:
    found = coverage(parse_query("MLP (midstream OR pipeline)"), DOCS)
    assert found is not None and found.term == "MLP" and found.senses == 2
    assert [s.episodes for s in found.covered] == [("f1", "f2", "f3")]
    assert [(sense.episodes, missed) for sense, missed in found.left_out] == [(("m1", "m2", "m3"), 3)]
    assert found.warning == "MLP has 2 senses here; this query covers 1 — see `earshot senses MLP`"
    assert coverage(parse_query("MLP"), DOCS).warning == ""  # type: ignore[union-attr]


@pytest.mark.parametrize(("left_out", "lines"), [
    ([], []),
    ([LeftOut(term="MLP", label="layer, network, perceptron", episodes=22)],
     ["22 episodes about layer, network, perceptron are not included: another sense of MLP."]),
    ([LeftOut(term="MLP", label="pony, <b>fan</b>", episodes=1)],
     ["1 episode about pony, &lt;b&gt;fan&lt;/b&gt; is not included: another sense of MLP."]),
], ids=["nothing-left-out", "plural", "singular-and-escaped"])
def test_the_page_says_what_it_left_out(left_out: list[LeftOut], lines: list[str]) -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    topic = Topic(slug="mlp", name="MLPs", query="MLP midstream", left_out=left_out)
    page = render_topic_page(topic, build_report([], now=now), now=now)
    found = [re.sub(r"<[^>]*>", "", line).strip() for line in page.splitlines() if "left-out" in line]
    assert found == lines
