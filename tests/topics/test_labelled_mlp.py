"""Precision and recall of the documented MLP queries on a hand-labelled set.

``tests/fixtures/labelled/mlp.jsonl``: 70 short episode texts using "MLP" (or a look-alike)
in six senses, each labelled by hand: finance (master limited partnerships), ml
(multilayer perceptrons), legal (medical-legal partnerships), pony (My Little Pony),
mpls (Minneapolis typed "MLPS"), other (mini-LPs, "minimum lovable product", ...).
The queries are the demo topics' (``earshot_local.cli.topics``) and are quoted in docs/topics.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from earshot.topics.query import Document, parse_query
from earshot_local.cli.topics import FINANCE_QUERY, ML_QUERY

LABELLED = Path(__file__).resolve().parents[1] / "fixtures" / "labelled" / "mlp.jsonl"
ROWS = [json.loads(line) for line in LABELLED.read_text().splitlines() if line.strip()]


def _scores(query_text: str, label: str) -> tuple[float, float, list[str]]:
    query = parse_query(query_text)
    tp = fp = fn = 0
    mistakes = []
    for row in ROWS:
        matched = query.evaluate(Document(title=row["title"], description=row["description"],
                                          podcast=row["podcast"])).matched
        relevant = row["label"] == label
        tp += matched and relevant
        fp += matched and not relevant
        fn += relevant and not matched
        if matched != relevant:
            mistakes.append(f"{'FP' if matched else 'FN'} {row['title']}")
    return tp / max(1, tp + fp), tp / max(1, tp + fn), mistakes


def test_labelled_set_is_big_and_mixed() -> None:
    labels = {row["label"] for row in ROWS}
    assert len(ROWS) >= 60 and {"finance", "ml", "legal", "pony", "mpls"} <= labels


@pytest.mark.parametrize(("query", "label"), [(FINANCE_QUERY, "finance"), (ML_QUERY, "ml")], ids=["finance", "ml"])
def test_precision_and_recall_at_least_095(query: str, label: str) -> None:
    precision, recall, mistakes = _scores(query, label)
    assert precision >= 0.95 and recall >= 0.95, mistakes


def test_a_bare_acronym_is_not_enough() -> None:
    # Why the context words exist: "MLP" alone finds nearly every finance episode, and
    # every other meaning with them (all but the MPLS typo, thanks to the case rule).
    precision, recall, _ = _scores("MLP", "finance")
    assert recall > 0.9 and precision < 0.5
