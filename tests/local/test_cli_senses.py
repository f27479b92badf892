"""``earshot senses`` through ``earshot_local.cli.main``: over files and over the store, the
text and the JSON shape; the warning of ``topics add`` and the page's "not included" line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from earshot_local.cli import main
from earshot_local.cli.topics import FINANCE_QUERY

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = [str(p) for p in sorted((ROOT / "samples" / "feeds").glob("*.xml"))]
LABELLED = SAMPLES + [str(p) for p in sorted((ROOT / "tests" / "fixtures" / "senses").glob("*.xml"))]


def _out(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_senses_json_has_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    report = json.loads(_out(capsys, "senses", "MLP", *LABELLED, "--json"))
    assert set(report) == {"term", "senses", "unassigned"} and report["term"] == "MLP"
    assert len(report["senses"]) == 4
    for sense in report["senses"]:
        assert set(sense) == {"label", "top_terms", "query", "episodes", "podcasts", "examples"}
        assert sense["query"].startswith("MLP ") and len(sense["examples"]) == 3
        assert isinstance(sense["podcasts"], int) and 1 <= sense["podcasts"] <= len(sense["episodes"])
        assert sense["label"] == ", ".join(sense["top_terms"][:3])
    every = [i for s in report["senses"] for i in s["episodes"]] + report["unassigned"]
    assert len(every) == len(set(every)) == 82  # each mention once; the "MLPS" typo is not one
    labels = [s["label"] for s in report["senses"]]
    assert any("perceptron" in s["top_terms"] for s in report["senses"]), labels
    assert any("pony" in s["top_terms"] for s in report["senses"]), labels


def test_senses_text_names_each_sense_with_its_query(capsys: pytest.CaptureFixture[str]) -> None:
    out = _out(capsys, "senses", "MLP", *LABELLED)
    assert out.startswith("MLP: 82 episodes mention it; 4 senses, 2 unassigned\n")
    assert out.count("   query: MLP ") == 4 and out.count("   e.g.   ") == 12


def test_senses_of_a_term_nobody_mentions(capsys: pytest.CaptureFixture[str]) -> None:
    assert _out(capsys, "senses", "Zyzzyva", *SAMPLES) == "no episode mentions Zyzzyva\n"
    assert json.loads(_out(capsys, "senses", "Zyzzyva", *SAMPLES, "--json")) == {
        "term": "Zyzzyva", "senses": [], "unassigned": []}


@pytest.mark.parametrize(("argv", "message"), [
    (["senses", "MLP (", *SAMPLES], "unbalanced '('"),
    (["senses", "MLP", "/nonexistent/feed.xml"], "/nonexistent/feed.xml"),
], ids=["bad-term", "missing-source"])
def test_senses_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_senses_over_the_store_warning_and_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    # Given the labelled feeds in the database
    assert main(["feeds", "add", *LABELLED]) == 0
    assert main(["run"]) == 0
    # When senses reads the store, it finds what it finds in the files
    stored = json.loads(_out(capsys, "senses", "MLP", "--json"))
    offline = json.loads(_out(capsys, "senses", "MLP", *LABELLED, "--json"))
    assert [s["query"] for s in stored["senses"]] == [s["query"] for s in offline["senses"]]
    # And a topic that covers one sense says so when added
    capsys.readouterr()
    assert main(["topics", "add", "mlp-finance", "--name", "MLPs", "--query", FINANCE_QUERY]) == 0
    err = capsys.readouterr().err
    assert "warning: MLP has 4 senses here; this query covers 1 — see `earshot senses MLP`" in err
    assert err.count("  not included: ") == 3
    # And its page says what it left out, by reason
    assert main(["topics", "page", "mlp-finance", "--out", "page.html"]) == 0
    page = (tmp_path / "page.html").read_text()
    left_out = [line.strip() for line in page.splitlines() if 'class="note left-out"' in line]
    assert len(left_out) == 3
    ml = next(s for s in stored["senses"] if "perceptron" in s["top_terms"])
    assert (f"{len(ml['episodes'])} episodes about {ml['label']} are not included: another sense of MLP"
            in "\n".join(left_out))
    # And a query that covers every sense has nothing to say
    capsys.readouterr()
    assert main(["topics", "edit", "mlp-finance", "--query", "MLP"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["topics", "page", "mlp-finance", "--out", "page.html"]) == 0
    assert "left-out" not in (tmp_path / "page.html").read_text()


def test_a_bad_source_is_named_after_the_senses_of_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["senses", "MLP", *LABELLED, "/nonexistent/feed.xml", "--json"]) == 2
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)["senses"]) == 4
    assert captured.err.startswith("error: ") and "/nonexistent/feed.xml" in captured.err
    assert captured.err.count("\n") == 1


CORPUS = ROOT.parent / "shared" / "corpus" / "feeds"


@pytest.mark.corpus
@pytest.mark.slow  # reads all 124 feeds
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"team feed corpus not found at {CORPUS}")
def test_dc_in_the_corpus_is_comics_and_washington(capsys: pytest.CaptureFixture[str]) -> None:
    # Five of the corpus files are not feeds (its broken-feed fixtures): named, exit 2.
    assert main(["senses", "DC", *map(str, sorted(CORPUS.glob("*.xml"))), "--json"]) == 2
    senses = json.loads(capsys.readouterr().out)["senses"]
    comics, washington = senses[0], senses[1]
    assert "comic" in comics["top_terms"] and len(comics["episodes"]) > 100
    assert "washington" in washington["top_terms"]
