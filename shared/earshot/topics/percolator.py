"""Percolation: which topics can an episode match at all? Index topics by the words
their queries require and look an episode's words up, instead of evaluating every
topic's query against every new episode.

A query's *required key set* is a set of lowercased word forms of which every matching
document holds at least one (in some text field): for ``MLP AND (a OR b)`` it is the
forms of ``MLP`` (``mlp``, ``mlps``); for ``a OR b`` the forms of both; for ``NOT x`` or
``duration:>1h`` there is none. A topic whose query has a required set is filed under
each key of it; a topic without one goes on the always-evaluate list. The candidates for
an episode are the topics filed under any of its words, plus the always list; only they
are evaluated. The index is *conservative*: it may offer a topic that then does not
match (its other words are missing, a case-sensitive form differs, the word is in a
field the term does not look at), never hide one that would (``tests/topics/
test_percolator.py`` checks percolated matching equals evaluating every topic over
random queries and episodes).

Why the key set is right, node by node (``K(n)`` = the keys, ``None`` = no requirement):

- a term: every word of a term must occur (as one of its forms), so the forms of any one
  of its words will do; the longest word is taken (rarer, so fewer candidates);
- ``AND``: every child must hold, so any child's set is required: the smallest is taken;
- ``OR``: some child holds, so the union is required, and ``None`` if any child has none;
- ``NOT`` and ``duration:``: a document can satisfy them with no word at all: ``None``.

>>> required_keys(parse_query('MLP (midstream OR pipeline) -pony').root) == {"mlp", "mlps"}
True
>>> sorted(required_keys(parse_query('podcast:"Odd Lots" OR pony').root))
['lot', 'lots', 'lotses', 'ponies', 'pony']
>>> sorted(required_keys(parse_query('duration:>1h -news (AI OR robot)').root))
['ai', 'ais', 'robot', 'robots']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

from earshot.topics.query import (
    TEXT_FIELDS,
    And,
    Document,
    FieldName,
    Node,
    Not,
    Or,
    Term,
    parse_query,
    terms_of,
    word_forms,
)

__all__ = ["Percolator", "document_keys", "parse_query", "required_keys"]

T = TypeVar("T")


def _term_keys(term: Term) -> frozenset[str]:
    word = max(term.words, key=len)  # every word is required; the longest is the rarest, usually
    case_sensitive = word != word.lower()
    return frozenset(f.lower() for f in word_forms(word if case_sensitive else word.lower()))


def required_keys(node: Node) -> frozenset[str] | None:
    """Lowercased word forms of which every document ``node`` matches holds one, or None
    when a document could match without any particular word."""
    if isinstance(node, Term):
        return _term_keys(node)
    if isinstance(node, And):
        sets = [s for s in (required_keys(c) for c in node.children) if s is not None]
        return min(sets, key=lambda s: (len(s), -min(map(len, s)))) if sets else None
    if isinstance(node, Or):
        union: set[str] = set()
        for child in node.children:
            keys = required_keys(child)
            if keys is None:
                return None
            union |= keys
        return frozenset(union)
    if isinstance(node, Not):
        return None
    return None  # DurationFilter and anything that is not a word


def document_keys(doc: Document, fields: Iterable[FieldName] = TEXT_FIELDS) -> set[str]:
    """Every lowercased word of ``fields`` of ``doc`` (the index's lookup keys)."""
    out: set[str] = set()
    for name in fields:
        out |= doc.word_sets(name)[1]
    return out


class Percolator(Generic[T]):
    """Items (topics) filed under their queries' required keys; ``candidates`` answers,
    for a document, the items worth evaluating, in their original order."""

    def __init__(self, items: Sequence[T], roots: Sequence[Node]) -> None:
        self.items = list(items)
        self._by_key: dict[str, list[int]] = {}
        self._always: list[int] = []
        # The fields some term looks at: a document's words are read from these only.
        fields: dict[FieldName, None] = {}
        for root in roots:
            fields.update((name, None) for term in terms_of(root) for name in term.fields)
        self._fields = tuple(fields)
        for i, root in enumerate(roots):
            keys = required_keys(root)
            if keys is None:
                self._always.append(i)
                continue
            for key in keys:
                self._by_key.setdefault(key, []).append(i)

    @property
    def always_evaluated(self) -> int:
        """How many items have no required word (evaluated against every document)."""
        return len(self._always)

    def candidate_indexes(self, doc: Document) -> list[int]:
        found = set(self._always)
        by_key = self._by_key
        for word in document_keys(doc, self._fields):
            hit = by_key.get(word)
            if hit is not None:
                found.update(hit)
        return sorted(found)

    def candidates(self, doc: Document) -> list[T]:
        return [self.items[i] for i in self.candidate_indexes(doc)]
