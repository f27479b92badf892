"""The README's walk ("Your own feeds, step by step"), run command by command as written.

Each command of the section's fenced ``sh`` blocks is run through the CLI entry point
(``make demo`` as its Makefile recipe, ``earshot serve`` as a process of its own), in a
fresh folder with a database of its own. The feed URLs it shows
(``https://feeds.example.com/<name>.xml``) are served from ``samples/feeds/<name>.xml`` by
the loopback feed server, so nothing leaves this machine. A command this test does not
know how to run fails it: the README cannot grow a step nobody ran.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from earshot.topics.query import Document, parse_query
from earshot_local.cli import main
from earshot_local.cli.topics import FINANCE_QUERY
from tests.support.feedserver import FeedServer, Validated

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "samples" / "feeds"
SECTION = "## Your own feeds, step by step"
FEED_URL = re.compile(r"https://feeds\.example\.com/([\w.-]+)")
EARSHOT = ".venv/bin/earshot"


def walk_commands(readme: str) -> list[str]:
    """The commands of the walk section's ``sh`` blocks, continuation lines joined."""
    start = readme.index(SECTION)
    end = readme.index("\n## ", start + len(SECTION))
    commands: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", readme[start:end], flags=re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if shlex.split(line, comments=True):
                commands.append(line)
    return commands


COMMANDS = walk_commands((REPO_ROOT / "README.md").read_text())


def make_target(target: str) -> list[str]:
    """The earshot arguments of a Makefile target whose recipe is one ``earshot`` call."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert recipe, f"no make target {target}"
    [line] = recipe[1].strip().splitlines()
    words = shlex.split(line)
    assert words[0] == "$(VENV)/bin/earshot", f"make {target} is not one earshot command: {line}"
    return words[1:]


def test_the_walk_covers_demo_feeds_topic_page_and_digest() -> None:
    said = "\n".join(COMMANDS)
    for step in ("make demo", "feeds add", "feeds import", "run", "topics add", "topics page", "serve",
                 "digest preview"):
        assert step in said, f"the README walk has no `{step}`"


def test_the_walk_topic_query_is_the_finance_sense_only() -> None:
    """The query people copy: no machine-learning, pony or legal MLPs on the labelled set
    (on the sample feeds, see the end of the walk test)."""
    [query] = [shlex.split(c)[shlex.split(c).index("--query") + 1] for c in COMMANDS if " topics add " in c]
    parsed = parse_query(query)
    rows = [json.loads(line) for line in (REPO_ROOT / "tests/fixtures/labelled/mlp.jsonl").read_text().splitlines()
            if line.strip()]
    matched = [r for r in rows if parsed.evaluate(Document(title=r["title"], description=r["description"],
                                                           podcast=r["podcast"])).matched]
    finance = [r for r in rows if r["label"] == "finance"]
    assert all(r["label"] == "finance" for r in matched), [r["title"] for r in matched if r["label"] != "finance"]
    assert len(matched) >= 0.85 * len(finance)
    # Wherever the docs show this topic being added, it is this query (or '...').
    for doc in (REPO_ROOT / "README.md", REPO_ROOT / "docs" / "topics.md"):
        text = doc.read_text().replace("\\\n", " ")
        for shown in re.findall(r"topics add mlp-finance .*?--query ('[^']*')", text):
            assert shlex.split(shown)[0] in (query, "..."), doc.name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_and_fetch(args: list[str], path: str, tmp_path: Path) -> str:
    """Start ``earshot serve`` as its own process, fetch ``path`` from it, stop it."""
    port = _free_port()
    command = [sys.executable, "-c", "import sys; from earshot_local.cli import main; sys.exit(main(sys.argv[1:]))",
               *args, "--port", str(port)]
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                    assert response.status == 200
                    return response.read().decode()
            except OSError as exc:
                if time.monotonic() > deadline or process.poll() is not None:
                    log.flush()
                    raise AssertionError(f"earshot serve did not answer: {(tmp_path / 'serve.log').read_text()}") from exc
                time.sleep(0.2)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow
def test_the_readme_walk_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, feed_server: FeedServer,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for sample in SAMPLES.glob("*.xml"):
        feed_server.route(f"/{sample.name}", Validated(sample.read_bytes()))

    def loopback(text: str) -> str:
        def swap(match: re.Match[str]) -> str:
            assert (SAMPLES / match[1]).is_file(), f"the README shows a feed the samples lack: {match[0]}"
            return feed_server.url(f"/{match[1]}")
        return FEED_URL.sub(swap, text)

    # The user's own file for `feeds import`: what their podcast app exported.
    (tmp_path / "subscriptions.opml").write_text(loopback(
        '<?xml version="1.0"?><opml version="2.0"><head><title>My podcasts</title></head><body>'
        '<outline text="Gradient Descent Radio" type="rss" xmlUrl="https://feeds.example.com/gradient-descent.xml"/>'
        '<outline text="The Midstream Minute" type="rss" xmlUrl="https://feeds.example.com/midstream-minute.xml"/>'
        '</body></opml>'))

    outputs: dict[str, str] = {}
    for line in COMMANDS:
        words = shlex.split(loopback(line), comments=True)
        if words == ["make", "demo"]:
            args = make_target("demo")
        elif words[0] == EARSHOT:
            args = words[1:]
        else:
            raise AssertionError(f"the README walk has a command this test does not run: {line}")
        if args[:1] == ["serve"]:
            outputs["serve"] = _serve_and_fetch(args, "/topics/mlp-finance", tmp_path)
            continue
        assert main(args) == 0, f"{line}\n{capsys.readouterr().err}"
        outputs[" ".join(args[:2])] = capsys.readouterr().out

    # What each step shows a new user.
    assert (tmp_path / "out" / "earshot-demo.db").is_file() and list((tmp_path / "out" / "outbox").glob("*.eml"))
    assert outputs["feeds add"].count("added http://") == 2
    assert outputs["feeds import"].splitlines()[-1] == "subscriptions.opml: 1 added, 1 already there, 0 refused"
    assert "errors: none" in outputs["run"]
    assert outputs["feeds list"].count("active  200") == 3
    shown = outputs["topics show"]
    assert shown.startswith("MLPs (finance) (mlp-finance)") and "The Midstream Minute" in shown
    assert "MLP-Mixer" not in shown and "Gradient Descent" not in shown
    page = (tmp_path / "mlp-finance.html").read_text()
    assert "Podcasts about MLPs (finance)" in page and "MLP-Mixer" not in page
    assert "Podcasts about MLPs (finance)" in outputs["serve"]
    digest = (tmp_path / "preview" / "digest.txt").read_text()
    assert digest.startswith("EARSHOT WEEKLY DIGEST: MLPs (finance)") and (tmp_path / "preview" / "digest.eml").is_file()

    # The walk's query finds what the measured finance query finds in the samples, no more.
    def titles(query: str) -> set[str]:
        assert main(["match", "--query", query, *map(str, sorted(SAMPLES.glob("*.xml")))]) == 0
        return {json.loads(m)["title"] for m in capsys.readouterr().out.splitlines()}

    [walk_query] = [shlex.split(c)[shlex.split(c).index("--query") + 1] for c in COMMANDS if " topics add " in c]
    assert titles(walk_query) == titles(FINANCE_QUERY)
