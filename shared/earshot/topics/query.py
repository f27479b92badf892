"""Topic queries: a small search language, parsed to an AST and evaluated with reasons.

The language (reference with examples: ``docs/topics.md``)::

    query    := or_expr
    or_expr  := and_expr ( "OR" and_expr )*
    and_expr := unary ( ["AND"] unary )*          adjacent terms mean AND
    unary    := ( "NOT" | "-" ) unary | primary
    primary  := "(" or_expr ")"
              | FIELD ":" primary                  title: description: podcast: transcript:
              | "duration:" ( ">" | ">=" | "<" | "<=" ) AMOUNT    e.g. duration:>20m, duration:<1h30m
              | WORD | "quoted phrase"

Matching rules (why: a podcast page for "MLPs" is useless if it mixes up meanings):

- Text is normalized before matching: HTML stripped, entities decoded, Unicode NFKC (so a
  non-breaking space is a space and full-width letters are letters), curly apostrophes
  straightened. Matching is on whole words only: ``MLPS`` never matches inside ``MLPSHOW``.
- Singular, plural and possessive forms match each other: ``partnership`` matches
  ``partnerships``, ``MLP`` matches ``MLPs`` and ``MLP's``.
- An all-lowercase term is case-insensitive. A term with an uppercase letter is an
  acronym or proper noun and matches case-sensitively (plural and possessive allowed), so
  ``MLP`` matches ``MLP``, ``MLPs``, ``MLP's`` but neither ``mlp`` nor ``MLPS``.
- Unfielded terms look in the episode's title and description; ``podcast:`` must be
  asked for explicitly, because a show's name says little about each episode.
  ``transcript:`` looks in the publisher's transcript, and a topic that switches
  transcripts on (``Topic.search_transcripts``) has unfielded terms look there too
  (:func:`parse_query`'s ``default_fields``). A transcript hit names the moment: the
  reason reads ``MLPs in transcript at 12:34 — '…why MLPs cut distributions…'`` and the
  result carries the second (:attr:`MatchResult.moment`). Cues are joined into one text,
  so a phrase may span two cues (word-by-word JSON transcripts need this).
- ``OR`` / ``AND`` / ``NOT`` are operators only in capitals; in lowercase they are words.
- A term such as ``K-1`` or ``U.S.`` holds several words and is matched as a phrase.
- Errors (unbalanced quotes or parentheses, unknown fields, dangling operators, a query
  with nothing but negations) raise :class:`~earshot.errors.QueryError` with the
  0-based character position; nothing is silently reinterpreted.

>>> q = parse_query('MLP (midstream OR pipeline) -pony')
>>> q.evaluate(Document(title="MLPs rally", description="Midstream names led.")).reason
'MLPs in title; Midstream in description'
>>> q.evaluate(Document(title="MLPS council vote", description="pipeline news")).matched
False
>>> parse_query('title:"master limited').terms
Traceback (most recent call last):
...
earshot.errors.QueryError: unbalanced quote: no closing '"' at position 6
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, Union

from earshot.bounds import MAX_QUERY_CHARS
from earshot.errors import QueryError
from earshot.models import Cue
from earshot.templating import clock_text
from earshot.textutil import strip_html

FieldName = Literal["title", "description", "podcast", "transcript"]
TEXT_FIELDS: tuple[FieldName, ...] = ("title", "description", "podcast", "transcript")
DEFAULT_FIELDS: tuple[FieldName, ...] = ("title", "description")
# A topic with transcripts switched on: unfielded terms look in the transcript as well.
TRANSCRIPT_DEFAULT_FIELDS: tuple[FieldName, ...] = ("title", "description", "transcript")
# Characters of transcript shown each side of a match in a reason.
EXCERPT_CONTEXT_CHARS = 28
KNOWN_FIELDS = (*TEXT_FIELDS, "duration")

# A word: letters/digits, with inner apostrophes kept so "MLP's" and "don't" stay one word.
_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_LOOKS_LIKE_HTML = re.compile(r"<[a-zA-Z/!]|&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
# Invisible characters go, curly apostrophes become straight ones. Applied with str.replace
# (a C-speed scan per character) rather than str.translate, which walks a non-ASCII string
# in Python-level table lookups; no replacement produces a character of another pair.
_REPLACEMENTS = (
    *((ch, "") for ch in "\u00ad\u200b\u200c\u200d\u2060\ufeff"),
    *((ch, "'") for ch in "\u2019\u2018\u02bc\u2032"),
)
# Words ending in "s" that are not the plural of the word without it.
_NOT_PLURALS = frozenset({"news", "series", "species", "always", "perhaps", "analysis", "thus", "yes"})


# ----------------------------------------------------------------- normalization
def normalize_text(text: str) -> str:
    """Plain, NFKC-normalized text; HTML is stripped when the text looks like HTML.

    >>> normalize_text("<p>MLP&rsquo;s&nbsp;yield</p>")
    "MLP's yield"
    """
    if _LOOKS_LIKE_HTML.search(text):
        text = strip_html(text)
    if not text.isascii():  # NFKC leaves ASCII as it is, and the characters mapped below are not ASCII
        text = unicodedata.normalize("NFKC", text)
        for old, new in _REPLACEMENTS:
            if old in text:
                text = text.replace(old, new)
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Word:
    text: str  # as written, possessive removed
    start: int
    end: int


def words_of(text: str) -> list[Word]:
    """Whole words of normalized text, possessive endings removed.

    >>> [w.text for w in words_of("The MLP's K-1s, MLPs' yields; MLPSHOW")]
    ['The', 'MLP', 'K', '1s', 'MLPs', 'yields', 'MLPSHOW']
    """
    out = []
    for m in _WORD_RE.finditer(text):
        word = m.group()
        if word.endswith("'s") or word.endswith("'S"):
            word = word[:-2]
        out.append(Word(word, m.start(), m.end()))
    return out


def _plural_forms(word: str) -> set[str]:
    """Plurals of ``word``; the suffix is lowercase so an acronym's plural is ``MLPs``."""
    if word.lower().endswith(("s", "x", "z", "ch", "sh")):
        forms = {word + "es"} if len(word) >= 3 else set()
    else:
        forms = {word + "s"}
    if len(word) >= 3 and word[-1] == "y" and word[-2].lower() not in "aeiou":
        forms = {word[:-1] + "ies"}  # pony -> ponies (not "ponys")
    return {f for f in forms if f.lower() not in _NOT_PLURALS}


def word_forms(term: str) -> frozenset[str]:
    """Every written form a query word accepts: itself, its plurals, its singulars.

    >>> sorted(word_forms("MLP"))
    ['MLP', 'MLPs']
    >>> {"partnership", "partnerships"} <= word_forms("partnerships")
    True
    >>> sorted(word_forms("pony")), "box" in word_forms("boxes")
    (['ponies', 'pony'], True)
    """
    forms = {term} | _plural_forms(term)
    singulars = []
    if term.endswith("s"):
        singulars.append(term[:-1])
    if term.endswith("es"):
        singulars.append(term[:-2])
    if term.endswith("ies"):
        singulars.append(term[:-3] + "y")
    forms.update(s for s in singulars if s and term in _plural_forms(s))
    return frozenset(forms)


# ----------------------------------------------------------------------- AST
@dataclass(frozen=True)
class Term:
    """A word or phrase; ``words`` holds one entry per word to match in sequence."""

    source: str
    position: int
    words: tuple[str, ...]
    quoted: bool = False
    fields: tuple[FieldName, ...] = DEFAULT_FIELDS

    @cached_property
    def _matchers(self) -> tuple[tuple[bool, frozenset[str]], ...]:
        out = []
        for w in self.words:
            case_sensitive = w != w.lower()
            out.append((case_sensitive, word_forms(w if case_sensitive else w.lower())))
        return tuple(out)

    def find_in(self, doc: "Document", name: FieldName) -> tuple[int, int] | None:
        """:meth:`find` on a document's field, answered from the field's sets of words
        when a word of the term is not there at all (most fields, for most terms)."""
        exact, lowered = doc.word_sets(name)
        for case_sensitive, forms in self._matchers:
            if forms.isdisjoint(exact if case_sensitive else lowered):
                return None
        # Try only where the first word occurs (the field's positions of each lowercased
        # word), not at every word: a long description is scanned once per document.
        positions = doc.word_positions(name)
        starts = sorted(i for key in self._first_keys for i in positions.get(key, ()))
        return self.find(doc.words(name), starts=starts)

    @cached_property
    def _first_keys(self) -> frozenset[str]:
        return frozenset(form.lower() for form in self._matchers[0][1])

    def find(self, words: list[Word], *, starts: Iterable[int] | None = None) -> tuple[int, int] | None:
        """Span (start, end) of the first occurrence in ``words``, or None; ``starts``
        (ascending) limits where an occurrence may begin."""
        n = len(self._matchers)
        for i in range(len(words) - n + 1) if starts is None else starts:
            if i > len(words) - n:
                break
            for j, (case_sensitive, forms) in enumerate(self._matchers):
                text = words[i + j].text
                if (text if case_sensitive else text.lower()) not in forms:
                    break
            else:
                return words[i].start, words[i + n - 1].end
        return None


@dataclass(frozen=True)
class DurationFilter:
    source: str
    position: int
    op: str
    seconds: int

    def test(self, duration_seconds: int | None) -> bool:
        if duration_seconds is None:  # unknown duration never satisfies a bound
            return False
        return {
            ">": duration_seconds > self.seconds, ">=": duration_seconds >= self.seconds,
            "<": duration_seconds < self.seconds, "<=": duration_seconds <= self.seconds,
        }[self.op]


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Union[Term, DurationFilter, And, Or, Not]


# ------------------------------------------------------------------ documents
@dataclass
class Document:
    """What a query looks at: one episode with its podcast's title, and the cues of its
    transcript when one was fetched."""

    title: str = ""
    description: str = ""
    podcast: str = ""
    duration_seconds: int | None = None
    transcript: Sequence[Cue] = ()
    _cue_offsets: list[int] = field(default_factory=list, init=False, repr=False)
    _texts: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _words: dict[str, list[Word]] = field(default_factory=dict, init=False, repr=False)
    _word_sets: dict[str, tuple[set[str], set[str]]] = field(default_factory=dict, init=False, repr=False)
    _positions: dict[str, dict[str, list[int]]] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_episode(cls, episode: object, podcast: str = "", transcript: Sequence[Cue] = ()) -> "Document":
        """From an :class:`earshot.models.Episode` (or anything with the same attributes)."""
        return cls(
            title=getattr(episode, "title", "") or "",
            description=getattr(episode, "summary", "") or "",
            podcast=podcast,
            duration_seconds=getattr(episode, "duration_seconds", None),
            transcript=transcript,
        )

    def text(self, name: FieldName) -> str:
        if name not in self._texts:
            if name == "transcript":
                self._texts[name] = self._transcript_text()
            else:
                self._texts[name] = normalize_text(getattr(self, name) or "")
        return self._texts[name]

    def _transcript_text(self) -> str:
        """The cues' normalized texts joined by one space, each cue's offset noted, so a
        span found in the text maps back to the cue (and second) it starts in."""
        parts: list[str] = []
        offset = 0
        for cue in self.transcript:
            text = normalize_text(cue.text)
            self._cue_offsets.append(offset)
            parts.append(text)
            offset += len(text) + 1
        return " ".join(parts)

    def transcript_second(self, position: int) -> float | None:
        """The start time of the cue holding character ``position`` of the transcript
        text (the latest earlier time when that cue has none), or None."""
        self.text("transcript")
        index = bisect_right(self._cue_offsets, position) - 1
        while index >= 0:
            start = self.transcript[index].start_s
            if start is not None:
                return start
            index -= 1
        return None

    def transcript_excerpt(self, start: int, end: int) -> str:
        """``…why MLPs cut distributions…``: the match with a few words either side."""
        text = self.text("transcript")
        left = max(0, start - EXCERPT_CONTEXT_CHARS)
        right = min(len(text), end + EXCERPT_CONTEXT_CHARS)
        if left > 0:
            space = text.find(" ", left, start)
            left = space + 1 if space >= 0 else left
        if right < len(text):
            space = text.rfind(" ", end, right)
            right = space if space >= 0 else right
        return ("…" if left > 0 else "") + text[left:right].strip() + ("…" if right < len(text) else "")

    def words(self, name: FieldName) -> list[Word]:
        if name not in self._words:
            self._words[name] = words_of(self.text(name))
        return self._words[name]

    def word_positions(self, name: FieldName) -> dict[str, list[int]]:
        """Each lowercased word of the field -> its indexes in :meth:`words`, ascending."""
        if name not in self._positions:
            positions: dict[str, list[int]] = {}
            for i, word in enumerate(self.words(name)):
                positions.setdefault(word.text.lower(), []).append(i)
            self._positions[name] = positions
        return self._positions[name]

    def word_sets(self, name: FieldName) -> tuple[set[str], set[str]]:
        """The field's words (as :func:`words_of` writes them) and the same lowercased."""
        if name not in self._word_sets:
            exact = {w[:-2] if w.endswith(("'s", "'S")) else w for w in _WORD_RE.findall(self.text(name))}
            self._word_sets[name] = (exact, {w.lower() for w in exact})
        return self._word_sets[name]


# ------------------------------------------------------------------ evaluation
@dataclass(frozen=True)
class Hit:
    """One reason: a term found in a field (``label`` is the text as written there). A
    transcript hit says where: ``at_s`` (None for a transcript without times) and the
    words around it (``excerpt``)."""

    label: str
    fields: tuple[str, ...]
    at_s: float | None = None
    excerpt: str = ""

    @property
    def text(self) -> str:
        if not self.fields:
            return self.label
        said = f"{self.label} in {' and '.join(self.fields)}"
        if "transcript" in self.fields:
            if self.at_s is not None:
                said += f" at {clock_text(int(self.at_s))}"
            if self.excerpt:
                said += f" — '{self.excerpt}'"
        return said


@dataclass(frozen=True)
class MatchResult:
    matched: bool
    hits: tuple[Hit, ...] = ()

    @property
    def reason(self) -> str:
        """``MLPs in title; "midstream" in description`` (empty when not matched)."""
        return "; ".join(h.text for h in self.hits)

    @property
    def moment(self) -> Hit | None:
        """The first transcript hit with a time: where a listener should start."""
        return next((h for h in self.hits if h.at_s is not None), None)

    @property
    def in_transcript_only(self) -> bool:
        """Every hit was in the transcript (title and description alone would not match)."""
        return bool(self.hits) and all(h.fields == ("transcript",) for h in self.hits if h.fields)


def _fmt_duration(seconds: int) -> str:
    """>>> _fmt_duration(5400), _fmt_duration(1200), _fmt_duration(45)
    ('1h30m', '20m', '45s')
    """
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def _evaluate(node: Node, doc: Document) -> tuple[bool, list[Hit]]:
    if isinstance(node, Term):
        found_in: list[str] = []
        label = ""
        at_s: float | None = None
        excerpt = ""
        for name in node.fields:
            span = node.find_in(doc, name)
            if span is not None:
                found_in.append(name)
                if not label:
                    text = doc.text(name)[span[0]:span[1]]
                    label = f'"{text}"' if node.quoted or len(node.words) > 1 else text
                if name == "transcript":
                    at_s, excerpt = doc.transcript_second(span[0]), doc.transcript_excerpt(*span)
        return bool(found_in), [Hit(label, tuple(found_in), at_s, excerpt)] if found_in else []
    if isinstance(node, DurationFilter):
        ok = node.test(doc.duration_seconds)
        if not ok:
            return False, []
        label = f"duration {_fmt_duration(doc.duration_seconds or 0)} {node.op} {_fmt_duration(node.seconds)}"
        return True, [Hit(label, ())]
    if isinstance(node, Not):
        ok, _ = _evaluate(node.child, doc)
        return not ok, []  # an absent term is not a reason worth showing
    if isinstance(node, And):
        hits: list[Hit] = []
        for child in node.children:
            ok, child_hits = _evaluate(child, doc)
            if not ok:
                return False, []
            hits.extend(child_hits)
        return True, hits
    # Or: evaluate every branch so the explanation lists every alternative that matched.
    results = [_evaluate(child, doc) for child in node.children]
    return any(ok for ok, _ in results), [h for ok, hs in results if ok for h in hs]


@dataclass(frozen=True)
class Query:
    """A parsed query. Build with :func:`parse_query`."""

    source: str
    root: Node

    def evaluate(self, doc: Document) -> MatchResult:
        ok, hits = _evaluate(self.root, doc)
        if not ok:
            return MatchResult(False)
        unique = tuple(dict.fromkeys(hits))  # same term reached through two branches
        return MatchResult(True, unique)

    @property
    def terms(self) -> list[Term]:
        return terms_of(self.root)


def terms_of(node: Node) -> list[Term]:
    """Every term under ``node``, negated ones too, in query order."""
    return [n for n in _walk(node) if isinstance(n, Term)]


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, (And, Or)):
        for child in node.children:
            yield from _walk(child)
    elif isinstance(node, Not):
        yield from _walk(node.child)


# ------------------------------------------------------------------- tokenizer
TokenKind = Literal["word", "phrase", "lparen", "rparen", "or", "and", "not", "minus", "field", "duration"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    value: str
    position: int


_FIELD_RE = re.compile(r"([A-Za-z]+):(.*)", re.S)
_DURATION_RE = re.compile(r"(>=|<=|>|<)((?:\d+h)?(?:\d+m)?(?:\d+s)?)")
_BARE_END = frozenset('()"') | frozenset(" \t\r\n\f\v")


def tokenize(text: str) -> list[Token]:
    """Split a query into tokens, with 0-based positions.

    >>> tokens = tokenize('title:MLP -"limited partner" OR x')
    >>> [(t.kind, t.value, t.position) for t in tokens]  # doctest: +NORMALIZE_WHITESPACE
    [('field', 'title', 0), ('word', 'MLP', 6), ('minus', '-', 10), ('phrase', 'limited partner', 11),
     ('or', 'OR', 29), ('word', 'x', 32)]
    """
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            tokens.append(Token("lparen", ch, i))
            i += 1
        elif ch == ")":
            tokens.append(Token("rparen", ch, i))
            i += 1
        elif ch == '"':
            close = text.find('"', i + 1)
            if close < 0:
                raise QueryError("""unbalanced quote: no closing '"'""", i)
            phrase = text[i + 1:close]
            if not words_of(normalize_text(phrase)):
                raise QueryError("empty phrase", i)
            tokens.append(Token("phrase", phrase, i))
            i = close + 1
        elif ch == "-":  # only reached at a token's start: "K-1" is read as one word below
            if i + 1 >= n or text[i + 1].isspace() or text[i + 1] == ")":
                raise QueryError("expected a term after '-'", i)
            tokens.append(Token("minus", "-", i))
            i += 1
        else:
            start = i
            while i < n and text[i] not in _BARE_END:
                i += 1
            tokens.extend(_bare_word(text[start:i], start))
    return tokens


def _bare_word(word: str, position: int) -> list[Token]:
    if word in ("OR", "AND", "NOT"):
        return [Token(word.lower(), word, position)]  # type: ignore[arg-type]
    m = _FIELD_RE.fullmatch(word)
    if m is None:
        return [Token("word", word, position)]
    name, rest = m.group(1), m.group(2)
    if name.lower() not in KNOWN_FIELDS:
        raise QueryError(
            f"unknown field {name!r} (known: {', '.join(KNOWN_FIELDS)}; quote the text to search for it)",
            position,
        )
    name = name.lower()
    if name == "duration":
        m = _DURATION_RE.fullmatch(rest)
        if m is None or not m.group(2):
            raise QueryError(
                "duration needs a comparison and an amount with units, e.g. duration:>20m or duration:<1h30m",
                position,
            )
        return [Token("duration", rest, position)]
    out = [Token("field", name, position)]
    if rest:
        out.extend(_bare_word(rest, position + len(name) + 1))
    return out


# ---------------------------------------------------------------------- parser
# Limits that keep parsing and matching bounded whatever a query holds: a topic is matched
# against every new episode, so a query too deep or too long must be refused when it is
# written (with a position), never discovered by the worker.
MAX_DEPTH = 32  # nested parentheses and NOTs
MAX_DURATION_DIGITS = 6


class _Parser:
    def __init__(self, text: str, default_fields: tuple[FieldName, ...] = DEFAULT_FIELDS) -> None:
        self.text = text
        self.default_fields = default_fields
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    def _deeper(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"nested deeper than {MAX_DEPTH} levels of parentheses or NOT", tok.position)

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        if not self.tokens:
            raise QueryError("empty query", 0)
        node = self.or_expr(self.default_fields, in_field=False)
        tok = self.peek()
        if tok is not None:  # only a stray ')' can stop or_expr early
            raise QueryError("unbalanced ')': no matching '('", tok.position)
        return node

    def or_expr(self, fields: tuple[FieldName, ...], in_field: bool) -> Node:
        children = [self.and_expr(fields, in_field)]
        while (tok := self.peek()) is not None and tok.kind == "or":
            self.take()
            if self.peek() is None or self.peek().kind in ("or", "rparen"):  # type: ignore[union-attr]
                raise QueryError("expected a term after OR", tok.position)
            children.append(self.and_expr(fields, in_field))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self, fields: tuple[FieldName, ...], in_field: bool) -> Node:
        tok = self.peek()
        if tok is not None and tok.kind in ("or", "and"):
            raise QueryError(f"expected a term before {tok.value}", tok.position)
        children = [self.unary(fields, in_field)]
        while (tok := self.peek()) is not None and tok.kind not in ("or", "rparen"):
            if tok.kind == "and":
                self.take()
                if self.peek() is None or self.peek().kind in ("or", "and", "rparen"):  # type: ignore[union-attr]
                    raise QueryError("expected a term after AND", tok.position)
            children.append(self.unary(fields, in_field))
        return children[0] if len(children) == 1 else And(tuple(children))

    def unary(self, fields: tuple[FieldName, ...], in_field: bool) -> Node:
        tok = self.peek()
        if tok is not None and tok.kind in ("not", "minus"):
            self.take()
            nxt = self.peek()
            if nxt is None or nxt.kind in ("or", "and", "rparen"):
                raise QueryError(f"expected a term after {tok.value}", tok.position)
            self._deeper(tok)
            node = Not(self.unary(fields, in_field))
            self.depth -= 1
            return node
        return self.primary(fields, in_field)

    def primary(self, fields: tuple[FieldName, ...], in_field: bool) -> Node:
        tok = self.peek()
        if tok is None:
            raise QueryError("unexpected end of query", len(self.text))
        self.take()
        if tok.kind == "lparen":
            if self.peek() is None:
                raise QueryError("unbalanced '(': no matching ')'", tok.position)
            if self.peek().kind == "rparen":  # type: ignore[union-attr]
                raise QueryError("empty parentheses", tok.position)
            self._deeper(tok)
            node = self.or_expr(fields, in_field)
            self.depth -= 1
            close = self.peek()
            if close is None or close.kind != "rparen":
                raise QueryError("unbalanced '(': no matching ')'", tok.position)
            self.take()
            return node
        if tok.kind == "field":
            if in_field:
                raise QueryError(f"field {tok.value}: inside another field", tok.position)
            nxt = self.peek()
            if nxt is None or nxt.kind in ("or", "and", "rparen"):
                raise QueryError(f"expected a term after {tok.value}:", tok.position)
            return self.primary((tok.value,), in_field=True)  # type: ignore[arg-type]
        if tok.kind == "duration":
            m = _DURATION_RE.fullmatch(tok.value)
            assert m is not None  # checked by the tokenizer
            if any(len(n) > MAX_DURATION_DIGITS for n in re.findall(r"\d+", m.group(2))):
                raise QueryError(f"duration {tok.value!r} is out of range", tok.position)
            return DurationFilter(f"duration:{tok.value}", tok.position, m.group(1), parse_amount(m.group(2)))
        if tok.kind in ("word", "phrase"):
            words = tuple(w.text for w in words_of(normalize_text(tok.value)))
            if not words:
                raise QueryError(f"{tok.value!r} has no letters or digits to search for", tok.position)
            return Term(tok.value, tok.position, words, quoted=tok.kind == "phrase", fields=fields)
        if tok.kind == "rparen":
            raise QueryError("unbalanced ')': no matching '('", tok.position)
        raise QueryError(f"expected a term, found {tok.value}", tok.position)


def parse_amount(text: str) -> int:
    """Seconds in ``1h30m``, ``20m``, ``45s``.

    >>> parse_amount("1h30m"), parse_amount("20m")
    (5400, 1200)
    """
    seconds = 0
    for value, unit in re.findall(r"(\d+)([hms])", text):
        seconds += int(value) * {"h": 3600, "m": 60, "s": 1}[unit]
    return seconds


def _has_positive_term(node: Node) -> bool:
    if isinstance(node, Term):
        return True
    if isinstance(node, Not):
        return False
    if isinstance(node, DurationFilter):
        return False
    if isinstance(node, And):
        return any(_has_positive_term(c) for c in node.children)
    return all(_has_positive_term(c) for c in node.children)  # Or: every branch needs one


def parse_query(text: str, *, default_fields: tuple[FieldName, ...] = DEFAULT_FIELDS) -> Query:
    """Parse ``text``; raises :class:`QueryError` with a position on any mistake.
    ``default_fields`` are where unfielded terms look (:data:`TRANSCRIPT_DEFAULT_FIELDS`
    for a topic that searches transcripts).

    >>> parse_query("(" * 40 + "MLP" + ")" * 40)
    Traceback (most recent call last):
    ...
    earshot.errors.QueryError: nested deeper than 32 levels of parentheses or NOT at position 32
    """
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"a query may have at most {MAX_QUERY_CHARS} characters", MAX_QUERY_CHARS)
    root = _Parser(text, default_fields).parse()
    if not _has_positive_term(root):
        # "-pony" or "duration:>1h" alone would follow every episode ever published.
        raise QueryError("a query needs at least one word or phrase that is not negated", 0)
    return Query(text, root)
