"""The ingest CLI contract scripts rely on: parse, feeds, run --json, invoke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from earshot.ingest.parser import parse_feed
from earshot_local.cli import main
from tests.support.aws_stack import REPO_ROOT
from tests.support.feedserver import FeedServer, Serve, Validated

SAMPLE = REPO_ROOT / "samples" / "feeds" / "gradient-descent.xml"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own folder (and, by tests/conftest.py, its own database)."""
    monkeypatch.chdir(tmp_path)


def test_parse_prints_normalized_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", str(SAMPLE)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"feed", "episodes", "warnings"}
    assert out["feed"]["title"] == "Gradient Descent Radio"
    required = {"id", "guid", "title", "published", "duration_seconds", "audio_url", "audio_type",
                "link", "summary", "transcripts"}
    assert all(required <= set(e) for e in out["episodes"])
    assert all(e["published"] is None or e["published"].endswith("Z") for e in out["episodes"])


def test_parse_fetches_urls_over_http(capsys: pytest.CaptureFixture[str], feed_server: FeedServer) -> None:
    url = feed_server.route("/feed.xml", Serve(SAMPLE.read_bytes()))
    assert main(["parse", url]) == 0
    assert json.loads(capsys.readouterr().out)["feed"]["title"] == "Gradient Descent Radio"


@pytest.mark.parametrize(
    "make_source",
    [
        pytest.param(lambda tmp, srv: str(tmp / "missing.xml"), id="missing-file"),
        pytest.param(lambda tmp, srv: _write(tmp / "page.html", b"<html><body>Hello</body></html>"), id="html-page"),
        pytest.param(lambda tmp, srv: _write(tmp / "empty.xml", b""), id="empty-file"),
        pytest.param(lambda tmp, srv: srv.route("/404", Serve(b"no", status=404)), id="http-404"),
        pytest.param(lambda tmp, srv: "ftp://example.invalid/feed.xml", id="unsupported-scheme"),
    ],
)
def test_parse_failure_is_one_error_line_and_exit_2(make_source, tmp_path: Path, feed_server: FeedServer,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", make_source(tmp_path, feed_server)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_feeds_add_refuses_non_feeds_and_list_shows_state(feed_server: FeedServer,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    good = feed_server.route("/good.xml", Serve(SAMPLE.read_bytes()))
    bad = feed_server.route("/bad.html", Serve(b"<html>nope</html>", headers={"Content-Type": "text/html"}))
    assert main(["feeds", "add", good, bad]) == 2
    captured = capsys.readouterr()
    assert f"added {good}" in captured.out
    assert f"error: {bad} is not a usable feed" in captured.err

    # state persists between CLI invocations (the SQLite database named by EARSHOT_DB)
    assert main(["feeds", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [f["url"] for f in listed] == [good]
    assert listed[0]["title"] == "Gradient Descent Radio"


def test_feeds_import_reads_opml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head/><body>'
        '<outline text="Tech"><outline type="rss" text="A" xmlUrl="https://a.example/feed.xml"/></outline>'
        '<outline type="rss" text="B" xmlUrl="https://b.example/rss"/></body></opml>'
    )
    assert main(["feeds", "import", str(opml)]) == 0
    assert main(["feeds", "list", "--json"]) == 0
    urls = sorted(json.loads(line)["url"] for line in capsys.readouterr().out.splitlines() if line.startswith("{"))
    assert urls == ["https://a.example/feed.xml", "https://b.example/rss"]


def test_run_json_reports_cold_then_warm_cycle(tmp_path: Path, feed_server: FeedServer,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # Given three feeds over HTTP with validators, one without, and one file path
    urls = [feed_server.route(f"/f{i}.xml", Validated(SAMPLE.read_bytes(), etag=f'"{i}"')) for i in range(3)]
    urls.append(feed_server.route("/plain.xml", Serve(SAMPLE.read_bytes())))
    urls.append(feed_server.route("/broken.xml", Serve(b"", status=500)))
    (tmp_path / "feeds.txt").write_text("\n".join(urls) + f"\n# a comment\n{SAMPLE}\n")

    assert main(["run", "--feeds", "feeds.txt", "--cycles", "2", "--json"]) == 0

    cold, warm = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    keys = {"feeds", "fetched", "not_modified", "unchanged", "parsed", "new_episodes", "errors", "seconds"}
    assert keys <= set(cold)
    assert (cold["feeds"], cold["parsed"], cold["errors"]) == (6, 5, {"http_500": 1})
    assert cold["new_episodes"] == 5 * len(parse_feed(SAMPLE.read_bytes()).episodes)
    assert (warm["parsed"], warm["not_modified"], warm["unchanged"], warm["new_episodes"]) == (0, 3, 2, 0)


def test_invoke_runs_a_real_handler_with_a_sample_event(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "dispatcher", str(REPO_ROOT / "events" / "dispatcher_scheduled.json")]) == 0
    assert json.loads(capsys.readouterr().out) == {"queued": 0}


def test_invoke_unknown_function_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "nope", str(REPO_ROOT / "events" / "dispatcher_scheduled.json")]) == 2
    assert capsys.readouterr().err.startswith("error: no function 'nope'")


def test_feeds_list_shows_the_last_parse_warnings(feed_server: FeedServer, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a feed whose host gave two different episodes one guid
    items = "".join(f"<item><title>Ep {n}</title><guid>same</guid><enclosure url='https://cdn.example/{n}.mp3' "
                    "type='audio/mpeg'/></item>" for n in (1, 2))
    url = feed_server.route("/shared.xml", Serve(f"<rss version='2.0'><channel><title>Shared</title>{items}"
                                                 "</channel></rss>".encode()))
    assert main(["feeds", "add", url]) == 0
    assert f"added {url}  (Shared, 2 episodes)" in capsys.readouterr().out
    # When it has been checked
    assert main(["run"]) == 0
    capsys.readouterr()
    # Then `feeds list` says so under the feed, and --json carries the warnings
    assert main(["feeds", "list"]) == 0
    assert "warning: 2 items share 1 guid" in capsys.readouterr().out
    assert main(["feeds", "list", "--json"]) == 0
    (listed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["episode_count"] == 2 and listed["parse_warnings"][0].startswith("2 items share 1 guid")
