"""The ingest CLI contract scripts rely on: parse, feeds, run --json, invoke."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest

from earshot.ingest.parser import parse_feed
from earshot_local import functions
from earshot_local.cli import main
from earshot_local.cli.ingest import _episode_json
from tests.support.aws_stack import REPO_ROOT
from tests.support.bigfeed import generated_feed
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


def test_parse_gives_the_same_episodes_on_either_parser(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the sample feed, which the fast path reads
    # When it is parsed by default, with --parser feedparser, and with EARSHOT_PARSER=feedparser
    outputs = []
    for argv, env in ((["parse", str(SAMPLE)], None), (["parse", "--parser", "feedparser", str(SAMPLE)], None),
                      (["parse", str(SAMPLE)], "feedparser")):
        if env:
            monkeypatch.setenv("EARSHOT_PARSER", env)
        assert main(argv) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    # Then all three print the same feed, episodes and warnings
    assert outputs[0]["episodes"] and outputs[0] == outputs[1] == outputs[2]


@pytest.mark.parametrize("items", [0, 1, 1_234])
def test_parse_prints_what_json_dump_of_the_whole_feed_would(items: int, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Given a feed of no items, one, and more than two batches of the printer
    path = tmp_path / "feed.xml"
    path.write_bytes(generated_feed(items) if items else b"<rss version='2.0'><channel><title>New</title></channel></rss>")
    # When it is parsed (its episodes printed a batch at a time)
    assert main(["parse", str(path)]) == 0
    # Then the text is json.dump's of the whole parse, byte for byte
    whole = parse_feed(path.read_bytes(), url=path.resolve().as_uri())
    expected = {"feed": whole.feed.model_dump(mode="json"), "episodes": [_episode_json(e) for e in whole.episodes],
                "warnings": whole.warnings}
    assert capsys.readouterr().out == json.dumps(expected, ensure_ascii=False, indent=2) + "\n"


def test_parse_refuses_an_unknown_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["parse", "--parser", "regex", str(SAMPLE)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'regex'" in capsys.readouterr().err


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


# ------------------------------------------------------------------ errors in words
def _refused_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/feed.xml"


@pytest.mark.parametrize("command", [["parse"], ["feeds", "add"]], ids=["parse", "feeds-add"])
def test_fetch_failures_say_what_failed_for_which_url(command: list[str], feed_server: FeedServer,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    refused = _refused_url()
    missing = feed_server.route("/gone-missing.xml", Serve(b"no", status=404))
    for url, words in ((refused, f"could not connect to {refused}: connection refused"),
                       (missing, f"HTTP 404 Not Found from {missing}")):
        assert main([*command, url]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
        assert "ConnectError" not in err and "Traceback" not in err


# ------------------------------------------------------------------ feeds import / add summaries
def test_text_list_inline_comments_are_not_part_of_the_url(tmp_path: Path, feed_server: FeedServer,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    url = feed_server.route("/show.xml", Serve(SAMPLE.read_bytes()))
    (tmp_path / "feeds.txt").write_text(f"# my podcasts\n{url}   # my show\n{SAMPLE}\t# a file\n")
    assert main(["feeds", "import", "feeds.txt"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "feeds.txt: 2 added, 0 already there, 0 refused"
    assert main(["feeds", "list", "--json"]) == 0
    assert sorted(json.loads(line)["url"] for line in capsys.readouterr().out.splitlines()) == sorted(
        [url, SAMPLE.resolve().as_uri()])
    assert main(["run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["errors"] == {}  # the comment was never fetched


@pytest.mark.parametrize(("content", "exit_code", "summary", "err"), [
    ('<?xml version="1.0"?><opml version="2.0"><head/><body><outline text="Empty folder"/></body></opml>', 0,
     "subs: 0 added, 0 already there, 0 refused", ""),
    ("<!DOCTYPE html><html><body><a href='https://a.example/feed.xml'>feed</a></body></html>", 2,
     None, "error: subs is an HTML page, not OPML or a list of feed URLs"),
    ("https://a.example/feed.xml\nhttps://b.example/rss\n", 0,
     "subs: 0 added, 2 already there, 0 refused", ""),
    ("https://a.example/feed.xml\nmy favourite show\nftp://c.example/feed\nmissing.xml\n", 2,
     "subs: 0 added, 1 already there, 3 refused",
     "refused my favourite show: not a URL (a space at position 2)\nrefused ftp://c.example/feed: not an http(s) URL "
     "(ftp:)\nrefused missing.xml: no such file"),
], ids=["opml-without-feeds", "html-page", "only-duplicates", "refused-with-reasons"])
def test_import_always_says_what_happened(content: str, exit_code: int, summary: str | None, err: str,
                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "first.txt").write_text("https://a.example/feed.xml\nhttps://b.example/rss\n")
    assert main(["feeds", "import", "first.txt"]) == 0
    capsys.readouterr()
    (tmp_path / "subs").write_text(content)

    assert main(["feeds", "import", "subs"]) == exit_code

    captured = capsys.readouterr()
    assert captured.out.strip() != "" or exit_code == 2
    if summary:
        assert captured.out.splitlines()[-1] == summary
    assert captured.err.strip() == err


def test_feeds_add_of_several_ends_with_a_summary(feed_server: FeedServer, capsys: pytest.CaptureFixture[str]) -> None:
    good = feed_server.route("/good.xml", Serve(SAMPLE.read_bytes()))
    assert main(["feeds", "add", good]) == 0
    assert main(["feeds", "add", good, str(SAMPLE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-3:] == [f"already there: {good}",
                        f"added {SAMPLE.resolve().as_uri()}  (Gradient Descent Radio, 6 episodes)",
                        "1 added, 1 already there, 0 refused"]


# ------------------------------------------------------------------ feeds remove
def test_feeds_remove_drops_the_feed_its_episodes_and_its_matches(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    midstream, energy = (REPO_ROOT / "samples" / "feeds" / f"{n}.xml" for n in ("midstream-minute",
                                                                                "energy-capital-weekly"))
    assert main(["feeds", "add", str(midstream), str(energy)]) == 0
    assert main(["run"]) == 0
    assert main(["topics", "add", "mlp", "--name", "MLPs", "--query", "MLP"]) == 0
    capsys.readouterr()
    assert main(["topics", "show", "mlp", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)["report"]
    assert {p["podcast"] for p in before["best_podcasts"]} == {"The Midstream Minute", "Energy Capital Weekly"}

    assert main(["feeds", "remove", energy.resolve().as_uri()]) == 0
    assert capsys.readouterr().out == f"removed {energy.resolve().as_uri()}\n"

    assert main(["feeds", "list", "--json"]) == 0
    assert [json.loads(line)["url"] for line in capsys.readouterr().out.splitlines()] == [midstream.resolve().as_uri()]
    assert main(["topics", "show", "mlp", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["report"]
    assert {p["podcast"] for p in report["best_podcasts"]} == {"The Midstream Minute"}
    assert {e["podcast"] for e in report["latest_episodes"]} == {"The Midstream Minute"}
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == len(parse_feed(midstream.read_bytes()).episodes)

    # by feed id too; an unknown one is an error that says where to look
    assert main(["feeds", "list", "--json"]) == 0
    feed_id = json.loads(capsys.readouterr().out)["feed_id"]
    assert main(["feeds", "remove", feed_id]) == 0
    capsys.readouterr()
    assert main(["feeds", "remove", "https://never.example/feed.xml"]) == 2
    assert capsys.readouterr().err == ("error: no such feed: https://never.example/feed.xml "
                                       "(see `earshot feeds list`)\n")


# ------------------------------------------------------------------ finding the feeds that fail
def test_run_names_the_feeds_that_failed_and_feeds_list_finds_them(
        tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]) -> None:
    good = feed_server.route("/good.xml", Serve(SAMPLE.read_bytes()))
    page = feed_server.route("/page.html", Serve(b"<html><body>a blog</body></html>",
                                                 headers={"Content-Type": "text/html"}))
    missing = feed_server.route("/missing.xml", Serve(b"no", status=404))
    (tmp_path / "feeds.txt").write_text(f"{good}\n{page}\n{missing}\n")

    assert main(["run", "--feeds", "feeds.txt"]) == 0
    out = capsys.readouterr().out
    assert "errors: http_404 1, not_a_feed 1" in out
    assert f"  http_404: HTTP 404 Not Found from {missing}\n" in out
    assert f"  not_a_feed: {page}  (an HTML page, not a feed)\n" in out
    assert "earshot feeds list --status error" in out

    assert main(["run", "--all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(f["kind"], f["url"]) for f in report["failed"]] == [("http_404", missing), ("not_a_feed", page)]

    def listed(*options: str) -> list[str]:
        assert main(["feeds", "list", "--json", *options]) == 0
        return sorted(json.loads(line)["url"] for line in capsys.readouterr().out.splitlines())

    assert listed("--status", "error") == sorted([page, missing])
    assert listed("--status", "active") == [good]
    assert listed("--error", "not_a_feed") == [page]
    assert listed("--error", "http") == [missing]
    assert main(["feeds", "list", "--status", "gone"]) == 0
    assert capsys.readouterr().out == "none of the 3 feeds match\n"


# ------------------------------------------------------------------ invoke, as sam local invoke
EVENT_FUNCTIONS = {"api_": "ApiFunction", "ses_": "bounces", "digest_scheduled": "DigestFunction",
                   "digest_sender": "digest_sender", "dispatcher": "DispatcherFunction", "fetch_worker": "fetch_worker",
                   "confirmations_": "ConfirmationFunction", "discovery_": "DiscoveryFunction",
                   "transcript_worker": "TranscriptWorkerFunction", "backfill_worker": "BackfillWorkerFunction"}


@pytest.mark.parametrize("event_file", sorted((REPO_ROOT / "events").glob("*.json")), ids=lambda p: p.stem)
def test_every_sample_event_works_as_shipped_in_a_fresh_folder(event_file: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    function = next(f for prefix, f in EVENT_FUNCTIONS.items() if event_file.name.startswith(prefix))
    assert main(["invoke", function, "-e", str(event_file)]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # stdout is the result alone; the handler's logs go to stderr
    assert "Traceback" not in captured.err


def test_invoke_takes_the_event_from_stdin(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO((REPO_ROOT / "events" / "dispatcher_scheduled.json").read_text()))
    assert main(["invoke", "DispatcherFunction", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == {"queued": 0}


@pytest.mark.parametrize("function", ["api", "bounces", "digest", "digest_sender", "dispatcher", "fetch_worker"])
@pytest.mark.parametrize("event", [{"foo": 1}, {"Records": [{"messageId": "1", "body": "{}"}]}, []],
                         ids=["unrelated", "empty-sqs-body", "not-an-object"])
def test_a_wrong_shaped_event_is_one_line(function: str, event: object, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "event.json").write_text(json.dumps(event))
    assert main(["invoke", function, "event.json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {function} is invoked with ") and captured.err.count("\n") == 1
    assert "events/" in captured.err  # names a sample of the right shape


def test_a_handler_failure_reads_like_sam_local_invoke(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the queue is on fire")

    monkeypatch.setattr(functions.load_function_module("dispatcher"), "dispatch_due_feeds", broken)
    assert main(["invoke", "dispatcher", "-e", str(REPO_ROOT / "events" / "dispatcher_scheduled.json")]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"errorType": "RuntimeError", "errorMessage": "the queue is on fire"}
    assert "Traceback" not in captured.err


def test_run_no_transcripts_leaves_them_queued_for_the_next_run(tmp_path: Path, feed_server: FeedServer,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # Given a feed whose episode lists a transcript on the same (loopback) host
    feed_server.route("/t/ep1.vtt", Serve(b"WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nHello there\n",
                                                       headers={"Content-Type": "text/vtt"}))
    feed = feed_server.route("/feed.xml", Serve(
        b"<rss version='2.0' xmlns:podcast='https://podcastindex.org/namespace/1.0'><channel><title>Show</title>"
        b"<item><guid>ep1</guid><title>One</title><enclosure url='ep1.mp3' type='audio/mpeg' length='1'/>"
        b"<podcast:transcript url='t/ep1.vtt' type='text/vtt'/></item></channel></rss>"))
    (tmp_path / "feeds.txt").write_text(feed + "\n")

    # When the first run skips transcripts
    assert main(["run", "--feeds", "feeds.txt", "--no-transcripts", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    # Then the feed is in, no transcript was fetched, and the job waits in the database
    assert (first["parsed"], first["new_episodes"], first["transcripts"], first["transcript_seconds"]) == (1, 1, {}, 0)
    assert feed_server.requests_to("/t/ep1.vtt") == []

    # When the next run (nothing due) drains the queue
    assert main(["run", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    # Then the earlier episode's transcript is fetched and counted there, timed apart from the feeds
    assert (second["feeds"], second["transcripts"]) == (0, {"fetched": 1})
    assert second["transcript_seconds"] > 0
    assert len(feed_server.requests_to("/t/ep1.vtt")) == 1
