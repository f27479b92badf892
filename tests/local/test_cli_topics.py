"""``earshot match`` / ``earshot report`` (offline) and the stored-topic commands, through
``earshot_local.cli.main``: exit codes, JSON shapes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from earshot_local.cli import main
from earshot_local.cli.topics import FINANCE_QUERY

FEEDS = Path(__file__).resolve().parents[2] / "samples" / "feeds"
SOURCES = [str(p) for p in sorted(FEEDS.glob("*.xml"))]
NOW = ["--now", "2026-11-26T12:00:00Z"]


def test_match_prints_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["match", "--query", "title:MLP midstream", *SOURCES]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines and all(set(d) == {"podcast", "guid", "title", "published", "reason"} for d in lines)
    assert {d["podcast"] for d in lines} <= {"The Midstream Minute", "Energy Capital Weekly"}
    assert all("MLP" in d["reason"] and d["published"].endswith("Z") for d in lines)


def test_match_case_rule_excludes_the_mpls_typo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["match", "--query", "MLP", str(FEEDS / "twin-cities-tonight.xml")]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("query", ['MLP "unclosed', "MLP (", "author:x MLP", "-pony"],
                         ids=["quote", "paren", "unknown-field", "only-negation"])
def test_bad_query_exits_2_with_one_line(query: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["match", f"--query={query}", *SOURCES]) == 2  # "=": a query may start with "-"
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "position" in err and err.count("\n") == 1


def test_unreadable_source_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["match", "--query", "MLP", str(tmp_path / "missing.xml")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_report_json_has_the_issue_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--query", FINANCE_QUERY, *SOURCES, "--json", *NOW]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"podcasts", "episodes", "duplicates_folded", "avg_duration_seconds", "cadence", "latest",
            "per_year", "best_podcasts", "latest_episodes"} <= set(report)
    assert report["podcasts"] == 2  # the midstream show and the network that syndicates it
    # Midstream 101 and "Rates, refis" are syndicated; "C-corp conversions" is re-uploaded.
    assert report["duplicates_folded"] == 3
    assert report["best_podcasts"][0]["podcast"] == "The Midstream Minute"
    assert sum(report["per_year"].values()) == report["episodes"]


def test_topics_commands_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # local state lives in ./.earshot/
    assert main(["topics", "add", "mlp", "--name", "MLPs", "--query", "MLP midstream"]) == 0
    assert main(["topics", "add", "mlp", "--name", "again", "--query", "MLP"]) == 2
    assert main(["topics", "edit", "mlp", "--query", "MLP ("]) == 2
    assert main(["topics", "edit", "mlp", "--name", "Midstream MLPs"]) == 0
    capsys.readouterr()
    assert main(["topics", "list", "--json"]) == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (listed["slug"], listed["name"], listed["query"]) == ("mlp", "Midstream MLPs", "MLP midstream")
    assert main(["topics", "show", "mlp", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["report"]["episodes"] == 0  # no feeds stored in this fresh state
    assert main(["topics", "page", "mlp", "--out", str(tmp_path / "p.html")]) == 0
    assert (tmp_path / "p.html").read_text().startswith("<!DOCTYPE html>")
    assert main(["topics", "remove", "mlp"]) == 0
    assert main(["topics", "show", "nope"]) == 2
