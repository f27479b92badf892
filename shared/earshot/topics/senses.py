"""Senses of an ambiguous term: which different things the episodes mean by "MLP", and a
query for each. Pure: no I/O; the caller hands in the episodes (files or the store).

One straight line, every step plain statistics a reader can check by hand:

1. **mentions**: the episodes the term matches by the query language's own rules
   (``MLP`` is a case-sensitive acronym: ``MLPs`` yes, ``mlp`` and ``MLPS`` no).
2. **context words** (:func:`context_words`): each episode's title and description as
   lowercase words, singular and plural folded together the way queries fold them, minus
   stop words, numbers and the term itself. A word is a *feature* when at least two
   mentioning episodes use it (one episode's word says nothing about a sense).
3. **vectors**: each episode is its features weighted by IDF (rare words count more),
   plus, with equal weight, the average *context* of those words (the words they occur
   with in other episodes). That second half is why "midstream coverage" and "pipeline
   K-1s" end up close although they share no word: their words keep the same company.
4. **clustering**: average-linkage agglomerative clustering on cosine similarity, merging
   the two closest groups while their average similarity is at least
   :data:`MERGE_SIMILARITY`. Deterministic: ties break on the episodes' order, which is
   sorted by id. Above :data:`MAX_CLUSTERED` mentions, the most recent ones are clustered
   and the rest join the sense they are closest to.
5. **senses**: groups of at least :data:`MIN_SENSE_EPISODES` episodes; the rest are
   *unassigned* (too few to say anything about). A sense's label is its most
   distinctive words (share of the sense's episodes using it minus the share of the
   other mentions using it).
6. **queries** (:func:`suggest_query`): ``TERM (w1 OR w2 ...) -x1 -x2``. Include words are
   chosen greedily to cover the sense's episodes, each used mostly (at least
   :data:`MIN_WORD_PRECISION`) inside the sense; exclusion words then remove what the
   include words caught from other senses, as long as they cost the sense less than they
   remove. Each query is checked with the query evaluator itself on the same episodes
   (:attr:`Sense.precision`, :attr:`Sense.recall`).

No model, no numpy: it runs the same in the CLI and in Lambda. A few hundred mentions
take well under a second; above :data:`MAX_CLUSTERED` the cost grows linearly.

>>> docs = [SenseDoc(id=str(i), podcast=p, title=t, description="") for i, (p, t) in enumerate([
...     ("a", "MLP midstream pipeline"), ("a", "MLP pipeline distribution cut"),
...     ("b", "MLP midstream distribution"), ("c", "MLP neural network layer"),
...     ("c", "MLP network training layer"), ("d", "MLP neural training")])]
>>> report = find_senses("MLP", docs)
>>> [(s.label, s.query) for s in report.senses]  # doctest: +NORMALIZE_WHITESPACE
[('distribution, midstream, pipeline', 'MLP (distribution OR midstream)'),
 ('layer, network, neural', 'MLP (layer OR neural)')]
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from earshot.topics.query import (
    And,
    Document,
    Not,
    Or,
    Query,
    Term,
    Word,
    normalize_text,
    parse_query,
    word_forms,
    words_of,
)

MERGE_SIMILARITY = 0.08
MIN_SENSE_EPISODES = 3
WINDOW_WORDS = 20
VECTOR_COMPONENTS = 120
REFINE_ROUNDS = 5
MAX_CLUSTERED = 400
MIN_WORD_PRECISION = 0.8
MAX_INCLUDE_WORDS = 12
MAX_EXCLUDE_WORDS = 8
LABEL_WORDS = 3
TOP_TERMS = 10
EXAMPLES = 3
# Share of a sense's episodes its query should find before adding more words stops.
TARGET_COVERAGE = 0.97
PODCAST_KEY = "\x00podcast:"

# Function words, and the words every podcast uses about itself: they say nothing about
# which sense an episode is in.
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being
below between both but by can can't could couldn't did didn't do does doesn't doing don't down during each
few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself just let's
me more most mustn't my myself no nor not now of off on once only or other ought our ours ourselves out
over own same shan't she she'd she'll she's should shouldn't so some such than that that's the their
theirs them themselves then there there's these they they'd they'll they're they've this those through
to too under until up very was wasn't we we'd we'll we're we've were weren't what what's when when's
where where's which while who who's whom why why's will with won't would wouldn't you you'd you'll
you're you've your yours yourself yourselves
one two three four five six seven eight nine ten first second new get got make makes made like really
much many well way back still even every just going go goes went us let lets may might must shall yet
via per vs versus ago within without whether though although however also across along around among
episode episodes podcast podcasts show shows listen listener listeners subscribe today week weekly
talk talks discuss discusses join joins guest guests host hosts interview part season
www http https com org net html
der die das und ist ein eine mit von den dem des zu im auf für nicht sich es wir ich sie
""".split())


@dataclass(frozen=True)
class SenseDoc:
    """One episode as senses read it; ``podcast`` tells podcasts apart when counting."""

    id: str
    podcast: str
    title: str
    description: str
    published: datetime | None = None
    duration_seconds: int | None = None

    def document(self) -> Document:
        return Document(title=self.title, description=self.description, podcast=self.podcast,
                        duration_seconds=self.duration_seconds)


@dataclass(frozen=True)
class Sense:
    """One meaning of the term among the episodes that mention it."""

    label: str
    top_terms: tuple[str, ...]
    query: str
    episodes: tuple[str, ...]
    podcasts: int
    examples: tuple[str, ...]
    precision: float = 1.0  # of ``query`` on the mentions it was built from (unassigned ones aside)
    recall: float = 1.0


@dataclass(frozen=True)
class SenseReport:
    term: str
    mentions: int
    senses: tuple[Sense, ...]
    unassigned: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        """``{term, senses: [{label, top_terms, query, episodes, podcasts, examples}], unassigned}``."""
        return {
            "term": self.term,
            "senses": [{"label": s.label, "top_terms": list(s.top_terms), "query": s.query,
                        "episodes": list(s.episodes), "podcasts": s.podcasts, "examples": list(s.examples)}
                       for s in self.senses],
            "unassigned": list(self.unassigned),
        }


# ------------------------------------------------------------------ words
def fold(word: str) -> str:
    """The lowercase word a query would use to match ``word`` and its plural/singular.

    >>> [fold(w) for w in ("Pipelines", "ponies", "news", "K", "boxes", "gas", "basis")]
    ['pipeline', 'pony', 'news', 'k', 'box', 'gas', 'basis']
    """
    lower = word.lower()
    for cut, add in (("ies", "y"), ("es", ""), ("s", "")):
        if lower.endswith(cut) and len(lower) - len(cut) >= 3:
            base = lower[: -len(cut)] + add
            if cut == "s" and base.endswith(("i", "u", "s")):  # basis, status, class: no plural
                continue
            if lower in word_forms(base):
                return base
    return lower


def context_words(title: str, description: str, *, exclude: frozenset[str] = frozenset(),
                  near: Sequence[Term] = (), window: int = WINDOW_WORDS) -> frozenset[str]:
    """The folded words of an episode's text that can tell senses apart: no stop words,
    nothing shorter than three characters, nothing without a letter, nothing in ``exclude``
    (the term's own forms, folded).

    With ``near`` (the term's query terms), only the words around it count: the title,
    and in the description the ``window`` words either side of each mention (or, when
    the description never mentions it, its first ``2 * window`` words). A long show note
    is about many things; the sentence around "DC" says which DC.

    >>> sorted(context_words("MLPs & pipelines", "<p>The K-1 season is here; 2024 tax forms</p>",
    ...                      exclude=frozenset({"mlp"})))
    ['form', 'pipeline', 'tax']
    >>> near = parse_query("MLP").terms
    >>> sorted(context_words("Notes", "Sponsors, promo codes. Then: MLP units and yields. More promo codes.",
    ...                      exclude=frozenset({"mlp"}), near=near, window=2))
    ['code', 'note', 'unit']
    """
    out = set()
    for name, text in (("title", title), ("description", description)):
        words = words_of(normalize_text(text))
        if near and name == "description":
            words = _around(words, near, window)
        for w in words:
            text = w.text
            if len(text) < 3 or not any(c.isalpha() for c in text) or text[0].isdigit():
                continue
            folded = fold(text)
            if folded in STOP_WORDS or text.lower() in STOP_WORDS or folded in exclude:
                continue
            out.add(folded)
    return frozenset(out)


def _around(words: list[Word], terms: Sequence[Term], window: int) -> list[Word]:
    """The words within ``window`` of a mention of any of ``terms`` (else the first ``2 * window``)."""
    keep: set[int] = set()
    for i in range(len(words)):
        for term in terms:
            n = len(term.words)
            if term.find(words[i:i + n]) is not None:
                keep.update(range(max(0, i - window), min(len(words), i + n + window)))
    if not keep:
        return words[: 2 * window]
    return [words[i] for i in sorted(keep)]


def document_frequency(docs: Iterable[frozenset[str]]) -> Counter[str]:
    """In how many documents each word occurs.

    >>> sorted(document_frequency([frozenset({"a", "b"}), frozenset({"b"})]).items())
    [('a', 1), ('b', 2)]
    """
    df: Counter[str] = Counter()
    for words in docs:
        df.update(words)
    return df


def idf(df: Counter[str], n_docs: int) -> dict[str, float]:
    """Smoothed inverse document frequency: ``log((1 + n) / (1 + df)) + 1``.

    >>> {w: round(v, 3) for w, v in idf(Counter({"rare": 1, "common": 4}), 4).items()}
    {'rare': 1.916, 'common': 1.0}
    """
    return {w: math.log((1 + n_docs) / (1 + d)) + 1 for w, d in df.items()}


Vector = dict[str, float]


def _normalized(v: Vector) -> Vector:
    norm = math.sqrt(sum(x * x for x in v.values()))
    return {k: x / norm for k, x in v.items()} if norm else {}


def _dot(a: Vector, b: Vector) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b.get(k, 0.0) for k, x in a.items())


def _add(into: Vector, v: Vector, weight: float = 1.0) -> None:
    for k, x in v.items():
        into[k] = into.get(k, 0.0) + weight * x


def episode_vectors(docs: Sequence[frozenset[str]], weights: dict[str, float]) -> list[Vector]:
    """Unit vectors: each episode's weighted words plus, with equal weight, the mean
    context of those words (the normalized sum of the episodes each word occurs in).

    >>> vs = episode_vectors([frozenset({"a", "b"}), frozenset({"b", "c"}), frozenset({"d"})],
    ...                      {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0})
    >>> round(_dot(vs[0], vs[1]), 2) > 0.5, _dot(vs[0], vs[2])
    (True, 0.0)
    """
    first = [_normalized({w: weights[w] for w in words if w in weights}) for words in docs]
    contexts: dict[str, Vector] = {}
    for v in first:
        for w in v:
            _add(contexts.setdefault(w, {}), v)
    contexts = {w: _normalized(c) for w, c in contexts.items()}
    out = []
    for v in first:
        second: Vector = {}
        for w in v:
            _add(second, contexts[w], weights[w])
        mixed = dict(v)
        _add(mixed, _normalized(second))
        # The strongest components carry the similarity; the long tail of faint context
        # words would only make every comparison slower.
        strongest = sorted(mixed.items(), key=lambda kv: (-kv[1], kv[0]))[:VECTOR_COMPONENTS]
        out.append(_normalized(dict(strongest)))
    return out


def cluster(vectors: Sequence[Vector], *, min_similarity: float = MERGE_SIMILARITY) -> list[list[int]]:
    """Average-linkage agglomerative clustering of unit vectors by cosine similarity.

    Groups merge, closest first, while their average pairwise similarity is at least
    ``min_similarity``. The average over pairs is the dot product of the groups' sums
    divided by both sizes, so merging adds rows instead of recomputing them. Empty
    vectors stay alone. Returns groups of indexes, largest first (ties: smallest index).

    >>> cluster([{"a": 1.0}, {"a": 0.8, "b": 0.6}, {"c": 1.0}, {}])
    [[0, 1], [2], [3]]
    """
    n = len(vectors)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    dots: dict[int, dict[int, float]] = {i: {} for i in range(n)}
    for i in range(n):
        if not vectors[i]:
            continue
        for j in range(i + 1, n):
            if vectors[j]:
                d = _dot(vectors[i], vectors[j])
                if d > 0:
                    dots[i][j] = dots[j][i] = d
    def similarity(i: int, j: int) -> float:
        return dots[i].get(j, 0.0) / (len(members[i]) * len(members[j]))

    # A heap of candidate merges, closest first (ties: smallest indexes); an entry whose
    # groups changed since it was pushed no longer equals their similarity and is skipped.
    heap = [(-similarity(i, j), i, j) for i, row in dots.items() for j in row if i < j]
    heapq.heapify(heap)
    while heap:
        negative, i, j = heapq.heappop(heap)
        if -negative < min_similarity:
            break
        if i not in members or j not in members or similarity(i, j) != -negative:
            continue
        members[i] += members.pop(j)
        row_j = dots.pop(j)
        for k, d in row_j.items():
            if k == i:
                continue
            total = dots[i].get(k, 0.0) + d
            dots[i][k] = dots[k][i] = total
            del dots[k][j]
        dots[i].pop(j, None)
        for k in dots[i]:
            heapq.heappush(heap, (-similarity(i, k), min(i, k), max(i, k)))
    groups = [sorted(g) for g in members.values()]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def refine(groups: list[list[int]], vectors: Sequence[Vector], *, rounds: int = REFINE_ROUNDS) -> list[list[int]]:
    """Move each episode to the group it is closest to (its own group's centroid without
    it), a few rounds, as k-means would: merging decides how many senses, this fixes the
    episodes merged early into the wrong one. A group is never emptied below two.

    >>> refine([[0, 1, 2], [3, 4]], [{"a": 1.0}, {"a": 1.0}, {"b": 1.0}, {"b": 1.0}, {"b": 1.0}])
    [[2, 3, 4], [0, 1]]
    """
    groups = [sorted(g) for g in groups]
    for _ in range(rounds if len(groups) > 1 else 0):
        sums = [_sum(vectors[i] for i in g) for g in groups]
        moves = []
        for k, g in enumerate(groups):
            for i in g:
                own = dict(sums[k])
                _add(own, vectors[i], -1.0)
                sims = [_dot(vectors[i], _normalized(own if j == k else sums[j])) for j in range(len(groups))]
                best = max(range(len(groups)), key=lambda j: (sims[j], j == k, -j))
                if best != k and sims[best] > sims[k]:
                    moves.append((i, k, best))
        if not moves:
            break
        for i, k, best in moves:
            if len(groups[k]) > 2:
                groups[k].remove(i)
                groups[best].append(i)
        groups = [sorted(g) for g in groups]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def distinctive_words(inside: Sequence[frozenset[str]], outside: Sequence[frozenset[str]],
                      candidates: Iterable[str], limit: int) -> list[str]:
    """Words by (share of ``inside`` using it) minus (share of ``outside`` using it),
    best first; ties by how many inside use it, then alphabetically.

    >>> distinctive_words([frozenset({"a", "b"}), frozenset({"a"})], [frozenset({"b"})], "ab", 2)
    ['a']
    """
    df_in = document_frequency(inside)
    df_out = document_frequency(outside)
    scored = []
    for w in candidates:
        if df_in[w] < 2 and len(inside) > 2:
            continue
        share = df_in[w] / max(1, len(inside)) - df_out[w] / max(1, len(outside))
        if share > 0:
            scored.append((-share, -df_in[w], w))
    return [w for _, _, w in sorted(scored)[:limit]]


# ------------------------------------------------------------------ queries
def _term_text(term: str) -> str:
    """The term as written in a query: a phrase in quotes."""
    return term if len(term.split()) == 1 and '"' not in term else f'"{term.replace(chr(34), "")}"'


def query_text(term: str, include: Sequence[str], exclude: Sequence[str]) -> str:
    """``TERM (a OR b) -x -y``.

    >>> query_text("MLP", ["midstream", "pipeline"], ["neural"])
    'MLP (midstream OR pipeline) -neural'
    >>> query_text("master limited", ["tax"], [])
    '"master limited" tax'
    """
    parts = [_term_text(term)]
    if len(include) == 1:
        parts.append(include[0])
    elif include:
        parts.append(f"({' OR '.join(include)})")
    parts += [f"-{w}" for w in exclude]
    return " ".join(parts)


def suggest_query(term: str, words: Sequence[frozenset[str]], positives: set[int], negatives: set[int],
                  candidates: Iterable[str]) -> tuple[list[str], list[str]]:
    """Include and exclude words for a query selecting ``positives`` among ``words``.

    Include: greedily the word that covers the most positives not yet covered, among
    words that at least two positives use and whose uses are at least
    ``MIN_WORD_PRECISION`` positive; until ``TARGET_COVERAGE``. Exclude: greedily the
    word that removes the most negatives caught, minus twice the positives it loses.
    With no negatives, the term alone is the query.

    >>> ws = [frozenset({"pipe"}), frozenset({"pipe", "tax"}), frozenset({"tax", "net"}), frozenset({"net"})]
    >>> suggest_query("MLP", ws, {0, 1}, {2, 3}, ["pipe", "tax", "net"])
    (['pipe'], [])
    """
    if not negatives:
        return [], []
    users: dict[str, set[int]] = {}
    for i, ws in enumerate(words):
        for w in ws:
            users.setdefault(w, set()).add(i)
    pool = []
    for w in sorted(set(candidates)):
        used = users.get(w, set())
        pos, neg = len(used & positives), len(used & negatives)
        if pos >= 2 and pos / (pos + neg) >= MIN_WORD_PRECISION:
            pool.append(w)
    include: list[str] = []
    covered: set[int] = set()
    while len(include) < MAX_INCLUDE_WORDS and len(covered) < TARGET_COVERAGE * len(positives):
        gains = [(len((users[w] & positives) - covered), -len(users[w] & negatives), w)
                 for w in pool if w not in include]
        gains = [g for g in gains if g[0] > 0]
        if not gains:
            break
        best = max(gains, key=lambda g: (g[0], g[1], [-ord(c) for c in g[2]]))
        include.append(best[2])
        covered |= users[best[2]] & positives
    # Then words only one of the sense's episodes uses, if no other mention uses them:
    # they find the episodes no shared word reaches, at no cost in precision here.
    rare = sorted(w for w, used in users.items() if w not in include and not used & negatives
                  and used & positives and len(w) >= 4)
    while len(include) < MAX_INCLUDE_WORDS and len(covered) < TARGET_COVERAGE * len(positives):
        rare_gains = [(len((users[w] & positives) - covered), w) for w in rare if w not in include]
        rare_gains = [g for g in rare_gains if g[0] > 0]
        if not rare_gains:
            break
        best_rare = max(rare_gains, key=lambda g: (g[0], [-ord(c) for c in g[1]]))
        include.append(best_rare[1])
        covered |= users[best_rare[1]] & positives
    if not include:
        return [], []
    caught = set().union(*(users[w] for w in include))
    exclude: list[str] = []
    while len(exclude) < MAX_EXCLUDE_WORDS:
        wrong = caught & negatives
        if not wrong:
            break
        right = caught & positives
        options = []
        for w, used in users.items():
            if w in include or w in exclude:
                continue
            gain = len(used & wrong) - 2 * len(used & right)
            if gain > 0:
                options.append((gain, -len(used & right), w))
        if not options:
            break
        best = max(options, key=lambda g: (g[0], g[1], [-ord(c) for c in g[2]]))
        exclude.append(best[2])
        caught -= users[best[2]]
    return include, exclude


# ------------------------------------------------------------------ the whole line
def term_forms(term: str) -> frozenset[str]:
    """The folded words of the term itself, kept out of the context words."""
    return frozenset(fold(w.text) for w in words_of(normalize_text(term)))


def mentions(term: str, docs: Iterable[SenseDoc]) -> list[SenseDoc]:
    """The episodes ``term`` (a query) matches, sorted by id. Raises QueryError."""
    query = parse_query(term)
    return sorted((d for d in docs if query.evaluate(d.document()).matched), key=lambda d: (d.id, d.podcast))


def _scores(query: Query, docs: Sequence[SenseDoc], positives: set[int], judged: set[int]) -> tuple[float, float]:
    hits = {i for i in judged if query.evaluate(docs[i].document()).matched}
    tp = len(hits & positives)
    return (tp / len(hits) if hits else 1.0), (tp / len(positives) if positives else 1.0)


def find_senses(term: str, docs: Iterable[SenseDoc], *, min_similarity: float = MERGE_SIMILARITY,
                min_episodes: int = MIN_SENSE_EPISODES) -> SenseReport:
    """The senses of ``term`` among ``docs`` (the whole line in the module docstring)."""
    found = mentions(term, docs)
    excluded = term_forms(term)
    near = parse_query(term).terms
    words = [context_words(d.title, d.description, exclude=excluded, near=near) for d in found]
    df = document_frequency(words)
    features = {w for w, n in df.items() if n >= 2}
    # The podcast is context too: a show mostly keeps to one sense. It counts as one more
    # word (a key no text word can be), so it pulls its episodes together without
    # deciding alone; queries never use it.
    shows = [frozenset({PODCAST_KEY + d.podcast}) if d.podcast else frozenset() for d in found]
    df_all = df + document_frequency(shows)
    weights = {w: v for w, v in idf(df_all, len(found)).items() if df_all[w] >= 2}
    vectors = episode_vectors([(ws | s) & weights.keys() for ws, s in zip(words, shows, strict=True)], weights)

    # The most recent mentions are clustered; the rest join the closest sense afterwards.
    def newest_first(i: int) -> tuple[bool, float, int]:
        published = found[i].published
        return published is None, -(published.timestamp() if published else 0.0), i

    order = sorted(range(len(found)), key=newest_first)
    rank = {i: r for r, i in enumerate(order)}
    sample = sorted(order[:MAX_CLUSTERED])
    groups = [[sample[k] for k in g] for g in cluster([vectors[i] for i in sample], min_similarity=min_similarity)]
    sense_groups = refine([g for g in groups if len(g) >= min_episodes], vectors)
    unassigned = [i for g in groups if len(g) < min_episodes for i in g]
    if len(found) > MAX_CLUSTERED:
        centroids = [_normalized(_sum(vectors[i] for i in g)) for g in sense_groups]
        for i in order[MAX_CLUSTERED:]:
            sims = [_dot(vectors[i], c) for c in centroids]
            best = max(range(len(sims)), key=lambda k: (sims[k], -k), default=None)
            if best is not None and sims[best] >= min_similarity:
                sense_groups[best].append(i)
            else:
                unassigned.append(i)
    judged = {i for g in sense_groups for i in g}
    senses = []
    for g in sense_groups:
        inside = set(g)
        others = judged - inside
        include, exclude = suggest_query(term, words, inside, others, features)
        top = distinctive_words([words[i] for i in g], [words[i] for i in others], features, TOP_TERMS)
        query = query_text(term, include, exclude)
        precision, recall = _scores(parse_query(query), found, inside, judged)
        # Examples: the newest distinct titles (a re-upload or a syndicated copy once).
        newest = list(dict.fromkeys(found[i].title for i in sorted(g, key=rank.__getitem__)))
        senses.append(Sense(
            label=", ".join(top[:LABEL_WORDS]) or "(no distinctive words)",
            top_terms=tuple(top), query=query,
            episodes=tuple(found[i].id for i in sorted(g)),
            podcasts=len({found[i].podcast for i in g}),
            examples=tuple(newest[:EXAMPLES]),
            precision=round(precision, 3), recall=round(recall, 3),
        ))
    return SenseReport(term=term, mentions=len(found), senses=tuple(senses),
                       unassigned=tuple(found[i].id for i in sorted(unassigned)))


def _sum(vectors: Iterable[Vector]) -> Vector:
    out: Vector = {}
    for v in vectors:
        _add(out, v)
    return out


# ------------------------------------------------------------------ coverage of a topic
@dataclass(frozen=True)
class Coverage:
    """How a topic's query covers the senses of its main term."""

    term: str
    senses: int
    covered: tuple[Sense, ...]
    left_out: tuple[tuple[Sense, int], ...] = field(default=())  # a sense, and its episodes the query misses

    @property
    def warning(self) -> str:
        """``MLP has 3 senses here; this query covers 1 — see `earshot senses MLP``` (or empty)."""
        if self.senses < 2 or not self.left_out:
            return ""
        return (f"{self.term} has {self.senses} senses here; this query covers {len(self.covered)} — "
                f"see `earshot senses {_term_text(self.term)}`")


def main_term(query: Query) -> str | None:
    """The query's main term: the first single word, not negated, that every match needs
    or, failing that, the first acronym-like word (an uppercase letter) in a positive place.

    >>> main_term(parse_query('"master limited partnership" OR (MLP (midstream OR K-1) -neural)'))
    'MLP'
    >>> main_term(parse_query('pony -MLP')), main_term(parse_query('title:"a b"'))
    ('pony', None)
    """
    positive: list[Term] = []

    def walk(node: object, negated: bool) -> None:
        if isinstance(node, Term):
            if not negated and len(node.words) == 1:
                positive.append(node)
        elif isinstance(node, Not):
            walk(node.child, not negated)
        elif isinstance(node, (And, Or)):
            for child in node.children:
                walk(child, negated)

    walk(query.root, False)
    acronyms = [t for t in positive if t.words[0] != t.words[0].lower()]
    chosen = (acronyms or positive)[:1]
    return chosen[0].words[0] if chosen else None


def coverage(query: Query, docs: Iterable[SenseDoc], *, share: float = 0.5) -> Coverage | None:
    """The senses of the query's main term among ``docs``, and which of them ``query``
    covers (it matches at least ``share`` of the sense's episodes); None when the query
    has no main term."""
    term = main_term(query)
    if term is None:
        return None
    docs = list(docs)
    return _coverage(find_senses(term, docs), query, {d.id: d for d in docs}, share)


def _coverage(report: SenseReport, query: Query, by_id: dict[str, SenseDoc], share: float) -> Coverage:
    covered, left_out = [], []
    for sense in report.senses:
        missed = sum(1 for i in sense.episodes if not query.evaluate(by_id[i].document()).matched)
        if len(sense.episodes) - missed >= share * len(sense.episodes):
            covered.append(sense)
        elif missed:
            left_out.append((sense, missed))
    return Coverage(report.term, len(report.senses), tuple(covered), tuple(left_out))
