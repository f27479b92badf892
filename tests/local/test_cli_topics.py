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


# ------------------------------------------------------------------ numbers a person reads
def test_an_archive_topic_describes_the_span_that_has_episodes(capsys: pytest.CaptureFixture[str]) -> None:
    # Years after the samples' last episode: nothing in the last 12 months.
    assert main(["report", "--query", FINANCE_QUERY, *SOURCES, "--now", "2030-06-01T00:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "1 episode every 4 months from May 2023 to November 2026" in out
    assert "no episodes in the last 12 months" not in out
    best = [line for line in out.splitlines() if line.startswith("  1. ")]
    assert best == ["  1. The Midstream Minute — 10 episodes, latest 24 Nov 2026"]


def test_feeds_of_one_podcast_are_one_podcast_in_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The same show fetched from two places (an old and a new URL): one podcast, each episode once.
    mirror = tmp_path / "mirror.xml"
    mirror.write_bytes((FEEDS / "midstream-minute.xml").read_bytes())
    sources = [str(FEEDS / "midstream-minute.xml"), str(mirror)]
    assert main(["report", "--query", "MLP OR midstream", *sources, "--json", *NOW]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["podcasts"] == 1
    [best] = report["best_podcasts"]
    assert best["podcast"] == "The Midstream Minute" and len(best["feed_ids"]) == 2
    assert all(card["also_in"] == 0 for card in report["latest_episodes"])


CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "feeds"


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"team feed corpus not found at {CORPUS}")
def test_real_feeds_of_one_podcast_are_listed_once(capsys: pytest.CaptureFixture[str]) -> None:
    names = ["partytime__pc20rss.xml", "pi-aggregator__pc20rss.xml", "partytime__homegrown-hits.xml",
             "partytime__homegrown-hits-og.xml", "lukaswhite-pfp__feed.rss.xml", "lukaswhite-pfp__minimal.rss.xml",
             "lukaswhite-pfp__seasons.rss.xml", "lukaswhite-pfp__no-description.rss.xml"]
    assert main(["report", "--query", "podcast OR podcasting OR episode OR music", "--json",
                 *(str(CORPUS / n) for n in names)]) == 0
    best = json.loads(capsys.readouterr().out)["best_podcasts"]
    titles = [p["podcast"] for p in best]
    assert sorted(titles) == ["Homegrown Hits", "Podcast Help Desk™", "Podcasting 2.0"]
    assert all("0 in the last 12 months" not in p["counts_text"] for p in best)


def _stored_samples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feeds", "add", *SOURCES]) == 0
    assert main(["run"]) == 0
    assert main(["topics", "add", "mlp-finance", "--name", "MLPs", "--query", FINANCE_QUERY]) == 0
    capsys.readouterr()


def test_every_number_in_a_digest_is_as_of_its_week(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    _stored_samples(capsys)
    # 2026-W40 (28 Sep - 4 Oct): "Natural gas storage and the MLP yield spread" (29 Sep);
    # five matching episodes came after it, the newest on 24 Nov.
    assert main(["digest", "preview", "mlp-finance", "--out", "w40", "--week", "2026-W40"]) == 0
    text = (tmp_path / "w40" / "digest.txt").read_text()
    assert "Latest: 29 Sep 2026" in text and "24 Nov 2026" not in text
    assert "Episodes: 8 ·" in text  # as of the week's end, not the 12 the topic has today
    assert "1. The Midstream Minute (3 in the last 12 months, 6 in all)" in text
    assert main(["digest", "preview", "mlp-finance", "--out", "latest"]) == 0  # default: the newest episode's week
    assert "Latest: 24 Nov 2026" in (tmp_path / "latest" / "digest.txt").read_text()
