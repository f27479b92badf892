"""The topic query language, table-driven: (query, episode, expected match)."""

from __future__ import annotations

import pytest

from earshot.errors import QueryError
from earshot.topics.query import Document, parse_query


def doc(title: str = "", description: str = "", podcast: str = "", duration_seconds: int | None = None) -> Document:
    return Document(title=title, description=description, podcast=podcast, duration_seconds=duration_seconds)


MATCH_CASES = [
    # case: uppercase terms are case-sensitive acronyms, lowercase terms are not
    ("case-acronym-exact", "MLP", doc("The MLP trade"), True),
    ("case-acronym-not-lowercase", "MLP", doc("the mlp trade"), False),
    ("case-acronym-not-allcaps-plural", "MLP", doc("MLPS council vote"), False),
    ("case-lowercase-any-case", "mlp", doc("MLPS council vote"), True),
    ("case-lowercase-title-case", "midstream", doc("Midstream Monday"), True),
    ("case-proper-noun", "Alerian", doc("the alerian index"), False),
    # plural / singular / possessive
    ("plural-acronym", "MLP", doc("Why MLPs rallied"), True),
    ("plural-to-singular", "MLPs", doc("One MLP rallied"), True),
    ("possessive-acronym", "MLP", doc("The MLP's distribution"), True),
    ("possessive-curly", "MLP", doc("The MLP\u2019s distribution"), True),
    ("possessive-plural", "partner", doc("the partners' capital"), True),
    ("plural-word", "partnership", doc("two partnerships merged"), True),
    ("plural-ies", "pony", doc("Ponies everywhere"), True),
    ("plural-es", "tax", doc("state taxes"), True),
    ("not-a-plural", "new", doc("the news tonight"), False),
    # whole words only
    ("whole-word", "MLPS", doc("Sponsored by MLPSHOW"), False),
    ("whole-word-prefix", "pipe", doc("pipeline news"), False),
    # normalization: HTML, entities, NFKC, nbsp
    ("html-inline-tags-join", "midstream", doc(description="The <b>mid</b>stream"), True),
    ("html-blocks-separate", "midstream", doc(description="<p>mid</p><p>stream</p>"), False),
    ("html-tags-not-text", "strong", doc(description="<strong>MLP</strong>"), False),
    ("html-entities", '"limited partnership"', doc(description="master limited&nbsp;partnership"), True),
    ("nfkc-fullwidth", "MLP", doc("\uff2d\uff2c\uff30 news"), True),
    ("nbsp-in-phrase", '"natural gas"', doc("natural\u00a0gas storage"), True),
    ("soft-hyphen-invisible", "midstream", doc("mid\u00adstream names"), True),
    ("zero-width-invisible", "MLP", doc("\u200bMLP\u200d rally"), True),
    ("curly-apostrophe-word", "don't", doc("Don\u2018t panic, don\u2019t"), True),
    ("possessive-curly-accented", "café", doc("Caf\u00e9\u2019s menu"), True),
    # phrases
    ("phrase", '"master limited partnership"', doc("What is a master limited partnership?"), True),
    ("phrase-order", '"master limited partnership"', doc("a limited master partnership"), False),
    ("phrase-plural", '"master limited partnership"', doc("master limited partnerships rally"), True),
    ("hyphen-term-is-phrase", "K-1", doc("your K-1s arrive in March"), True),
    ("hyphen-matches-space", '"medical-legal partnership"', doc("a medical legal partnership"), True),
    # boolean
    ("implicit-and", "MLP midstream", doc("MLP", "no context"), False),
    ("implicit-and-both", "MLP midstream", doc("MLP", "midstream"), True),
    ("explicit-and", "MLP AND midstream", doc("MLP midstream"), True),
    ("or", "perceptron OR MLP", doc("perceptrons"), True),
    ("not", "MLP NOT pony", doc("MLP pony"), False),
    ("minus", "MLP -pony", doc("MLP ponies"), False),
    ("minus-absent", "MLP -pony", doc("MLP units"), True),
    ("parentheses", "MLP (midstream OR pipeline) -pony", doc("MLP pipeline"), True),
    ("precedence-and-binds-tighter", "a b OR c", doc("c"), True),
    ("lowercase-or-is-a-word", "MLP or pony", doc("MLP pony"), False),
    ("not-group", "MLP -(pony OR neural)", doc("MLP neural"), False),
    # fields
    ("field-title", "title:MLP", doc("MLP", ""), True),
    ("field-title-miss", "title:MLP", doc("other", "MLP"), False),
    ("field-description", "description:midstream", doc("", "midstream"), True),
    ("field-podcast", "MLP podcast:Midstream", doc("MLP", "", "The Midstream Minute"), True),
    ("podcast-not-searched-by-default", "Midstream", doc("MLP", "", "The Midstream Minute"), False),
    ("field-group", 'title:(MLP OR "master limited")', doc("master limited stuff"), True),
    ("field-case-insensitive-name", "Title:MLP", doc("MLP"), True),
    # duration
    ("duration-gt", "MLP duration:>20m", doc("MLP", duration_seconds=1500), True),
    ("duration-gt-miss", "MLP duration:>20m", doc("MLP", duration_seconds=1200), False),
    ("duration-lt-hours", "MLP duration:<1h", doc("MLP", duration_seconds=3599), True),
    ("duration-combined", "MLP duration:>=1h30m", doc("MLP", duration_seconds=5400), True),
    ("duration-unknown", "MLP duration:<1h", doc("MLP"), False),
]


@pytest.mark.parametrize(("query", "document", "expected"), [c[1:] for c in MATCH_CASES], ids=[c[0] for c in MATCH_CASES])
def test_match(query: str, document: Document, expected: bool) -> None:
    assert parse_query(query).evaluate(document).matched is expected


def test_word_sets_answer_as_the_word_scan_does() -> None:
    # A term is looked for in a field's set of words first; where every word of it occurs,
    # the scan gives the span. Both must agree with the scan alone, term by term.
    from earshot.topics.query import words_of

    texts = ["The MLP's K-1s, MLPs' yields; MLPSHOW", "Ponies and a pony\u2019s café; natural gas, Natural  Gas",
             "<p>mid</p><p>stream</p> news series", "don\u2019t stop the U.S. K-1 master limited partnerships"]
    query = parse_query('MLP OR MLPs OR yield OR mlpshow OR pony OR café OR "natural gas" OR midstream OR new '
                        'OR "don\'t" OR U.S. OR K-1 OR "master limited partnership" OR stream OR Gas')
    for text in texts:
        document = doc(text)
        for term in query.terms:
            assert term.find_in(document, "title") == term.find(words_of(document.text("title"))), (term.source, text)


REASON_CASES = [
    ("spec-example", 'MLP "midstream"', doc("MLPs rally", "The midstream group"),
     'MLPs in title; "midstream" in description'),
    ("both-fields", "MLP", doc("MLP", "MLP's"), "MLP in title and description"),
    ("or-lists-every-hit", "pipeline OR midstream", doc("pipelines", "midstream"),
     "pipelines in title; midstream in description"),
    ("negations-not-shown", "MLP -pony", doc("MLP"), "MLP in title"),
    ("duration", "MLP duration:>20m", doc("MLP", duration_seconds=1872), "MLP in title; duration 31m12s > 20m"),
    ("phrase-as-written", '"medical legal"', doc("a Medical-Legal partnership"), '"Medical-Legal" in title'),
]


@pytest.mark.parametrize(("query", "document", "reason"), [c[1:] for c in REASON_CASES], ids=[c[0] for c in REASON_CASES])
def test_reason(query: str, document: Document, reason: str) -> None:
    assert parse_query(query).evaluate(document).reason == reason


ERROR_CASES = [
    ("unbalanced-quote", 'MLP "master limited', 4, "unbalanced quote"),
    ("unbalanced-open-paren", "MLP (midstream OR pipeline", 4, "unbalanced '('"),
    ("unbalanced-close-paren", "MLP midstream)", 13, "unbalanced ')'"),
    ("unknown-field", "MLP author:smith", 4, "unknown field 'author'"),
    ("empty", "   ", 0, "empty query"),
    ("dangling-or", "MLP OR", 4, "expected a term after OR"),
    ("leading-or", "OR MLP", 0, "expected a term before OR"),
    ("dangling-not", "MLP NOT", 4, "expected a term after NOT"),
    ("dangling-minus", "MLP - pony", 4, "expected a term after '-'"),
    ("empty-parens", "MLP ()", 4, "empty parentheses"),
    ("empty-phrase", 'MLP ""', 4, "empty phrase"),
    ("field-without-term", "MLP title:", 4, "expected a term after title:"),
    ("nested-field", "title:podcast:MLP", 6, "inside another field"),
    ("bad-duration", "MLP duration:long", 4, "duration needs"),
    ("duration-without-unit", "MLP duration:>20", 4, "duration needs"),
    ("only-negations", "-pony", 0, "at least one word"),
    ("only-duration", "duration:>1h", 0, "at least one word"),
    ("no-letters", "MLP &&", 4, "no letters or digits"),
]


@pytest.mark.parametrize(("query", "position", "message"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_errors_carry_position(query: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(query)
    assert info.value.position == position
    assert message in str(info.value)
    assert str(info.value).endswith(f"at position {position}")
