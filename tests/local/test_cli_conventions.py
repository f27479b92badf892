"""What people expect of a CLI they use daily, through ``earshot_local.cli.main``: help on
every option, ``--version``, global options anywhere, one-line errors for AWS trouble,
queries that start with ``-``."""

from __future__ import annotations

import argparse
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from earshot_local.cli import build_parser, main
from tests.support.aws_stack import REPO_ROOT, EmbeddedBackend

SAMPLE = REPO_ROOT / "samples" / "feeds" / "gradient-descent.xml"
FEEDS = sorted(str(p) for p in (REPO_ROOT / "samples" / "feeds").glob("*.xml"))


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def _options() -> list[tuple[str, argparse.Action]]:
    return [(p.prog, a) for p in _parsers(build_parser()) for a in p._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


@pytest.mark.parametrize(("prog", "action"), _options(),
                         ids=lambda v: v if isinstance(v, str) else "/".join(v.option_strings) or v.dest)
def test_every_option_and_argument_has_help_text(prog: str, action: argparse.Action) -> None:
    assert action.help and action.help.strip() and action.help != argparse.SUPPRESS, f"{prog} {action.dest}"


def test_every_command_has_help_text() -> None:
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                assert all(choice.help for choice in action._choices_actions), parser.prog


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert exited.value.code == 0 and capsys.readouterr().out == f"earshot {version}\n"


# ------------------------------------------------------------------ global options anywhere
def test_db_works_before_and_after_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine.db"
    assert main(["feeds", "add", str(SAMPLE), "--db", str(mine)]) == 0
    assert main(["--db", str(mine), "feeds", "list", "--json"]) == 0
    assert main(["feeds", "--db", str(mine), "list", "--json"]) == 0
    assert main(["feeds", "list", "--json", "--db", str(mine)]) == 0
    capsys.readouterr()
    assert main(["info", "--json", "--db", str(mine)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["db"], info["feeds"]) == (str(mine), 1)
    assert main(["feeds", "list", "--json"]) == 0  # the default database (EARSHOT_DB) has none
    assert capsys.readouterr().out == ""


def test_backend_aws_works_after_the_command(backend: EmbeddedBackend, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "add", "mlp", "--name", "MLPs", "--query", "MLP", "--backend", "aws"]) == 0
    assert main(["topics", "list", "--json", "--backend", "aws"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["slug"] == "mlp"
    assert main(["feeds", "list", "--backend", "aws"]) == 0
    assert capsys.readouterr().out == "no feeds yet: earshot feeds add URL\n"
    assert main(["topics", "list", "--json"]) == 0  # the local database stays empty
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("command", [["run"], ["digest", "run"], ["invoke", "dispatcher", "x.json"], ["info"]])
def test_local_only_commands_refuse_backend_aws_in_one_line(command: list[str],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--backend", "aws"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: `earshot {' '.join(command[:2]) if command[0] == 'digest' else command[0]}` "
                          "works on the local database only") and err.count("\n") == 1


def _no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.parametrize("table_name", [None, "earshot-Table-ABC123"], ids=["no-table", "table-set"])
def test_backend_aws_without_credentials_says_what_to_set(table_name: str | None, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _no_aws_credentials(monkeypatch, tmp_path)
    if table_name:
        monkeypatch.setenv("TABLE_NAME", table_name)
    else:
        monkeypatch.delenv("TABLE_NAME", raising=False)
    assert main(["feeds", "list", "--backend", "aws"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("error: --backend aws needs ")
    assert "AWS_PROFILE" in captured.err and "AWS_ACCESS_KEY_ID" in captured.err
    assert ("TABLE_NAME" in captured.err) is (table_name is None)


def test_an_aws_error_is_one_line(backend: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    assert main(["topics", "list", "--backend", "aws"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: AWS: ") and "ResourceNotFoundException" in err and err.count("\n") == 1


# ------------------------------------------------------------------ queries that start with "-"
def test_a_query_that_starts_with_a_minus_goes_with_equals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["match", "--query=-neural -perceptron -pony MLP (midstream OR pipeline)", *FEEDS]) == 0
    podcasts = {json.loads(line)["podcast"] for line in capsys.readouterr().out.splitlines()}
    assert podcasts == {"The Midstream Minute", "Energy Capital Weekly"}
    for command in (["match"], ["report"], ["topics", "add"], ["topics", "edit"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        assert "--query='-word" in " ".join(capsys.readouterr().out.split()), command
