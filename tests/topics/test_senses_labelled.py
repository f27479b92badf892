"""The senses ``earshot senses MLP`` suggests, measured on a hand-labelled set through
``earshot match``.

The set (``tests/fixtures/labelled/senses.jsonl``): every episode that mentions ``MLP``
(by the query rules: case-sensitive, so the "MLPS" Minneapolis typo is not in it) in the
demo's feeds (``samples/feeds``) and in ``tests/fixtures/senses/*.xml`` (one feed per
podcast of ``tests/fixtures/labelled/mlp.jsonl``, the set the demo's topic queries are
measured on). Each is labelled by reading it, with these rules:

- finance: MLP as an investment: units, distributions, yields, K-1s, midstream
  partnerships or the funds and indexes that hold them;
- ml: MLP as a neural network: perceptrons, layers, training, transformers;
- legal: a medical-legal partnership: clinics, lawyers, patients;
- pony: My Little Pony: the show, its ponies, fans and toys (also when the text borrows
  finance words, as "the yield on a mint collection");
- other: any other MLP (the mini-LP record, the minimum lovable product, mixed-layer clays).

The demo's feeds are each about one sense (read in full); the rows from ``mlp.jsonl`` keep
the label written there, checked against the rules above.

Each labelled sense with at least five episodes is matched to the suggested sense that
holds most of its episodes; that sense's query is run through ``earshot match`` over the
same feeds and scored against the labels (the universe: the labelled episodes).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path

from earshot_local.cli import main

ROOT = Path(__file__).resolve().parents[2]
LABELS = [json.loads(line) for line in (ROOT / "tests/fixtures/labelled/senses.jsonl").read_text().splitlines()
          if line.strip()]
SOURCES = sorted({str(ROOT / row["source"]) for row in LABELS}
                 | {str(p) for p in (ROOT / "samples/feeds").glob("*.xml")})
BIG_SENSES = sorted(label for label, n in Counter(row["label"] for row in LABELS).items()
                    if n >= 5 and label != "other")


def _run(*argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


def _suggested() -> dict[str, object]:
    return json.loads(_run("senses", "MLP", *SOURCES, "--json"))  # type: ignore[no-any-return]


def sense_table() -> list[tuple[str, int, str, float, float]]:
    """(label, labelled episodes, suggested query, precision, recall) for each big sense;
    ``python -m tests.topics.test_senses_labelled`` prints it."""
    label_of = {row["guid"]: row["label"] for row in LABELS}
    senses = _suggested()["senses"]
    assert isinstance(senses, list)
    rows = []
    for label in BIG_SENSES:
        relevant = {g for g, lab in label_of.items() if lab == label}
        best = max(senses, key=lambda s: len(relevant & set(s["episodes"])))
        out = _run("match", f"--query={best['query']}", *SOURCES)
        found = {json.loads(line)["guid"] for line in out.splitlines()}
        tp = len(found & relevant)
        rows.append((label, len(relevant), best["query"], tp / max(1, len(found)), tp / len(relevant)))
    return rows


def test_the_labelled_set_has_four_big_senses() -> None:
    assert BIG_SENSES == ["finance", "legal", "ml", "pony"]
    assert len({row["guid"] for row in LABELS}) == len(LABELS)


def test_each_big_sense_gets_a_query_with_precision_and_recall_at_least_090() -> None:
    table = sense_table()
    queries = [q for _, _, q, _, _ in table]
    assert len(set(queries)) == len(queries), "two labelled senses share one suggested sense"
    for label, n, query, precision, recall in table:
        assert precision >= 0.9 and recall >= 0.9, (label, n, query, precision, recall)


def test_the_suggestions_are_the_same_every_run() -> None:
    assert _suggested() == _suggested()


if __name__ == "__main__":
    print("| sense | labelled episodes | suggested query | precision | recall |\n|---|---|---|---|---|")
    for label, n, query, precision, recall in sense_table():
        print(f"| {label} | {n} | `{query}` | {precision:.2f} | {recall:.2f} |")
