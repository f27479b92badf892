"""Starting and stopping ``earshot serve``'s server in-process, and the command's errors.

The local runtime is process-wide (``earshot.runtime.use``), so each test here owns the
only server of the process while it runs.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from earshot import runtime
from earshot_local.cli import main
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import LocalSettings
from earshot_local.web import LocalServer


def test_server_serves_until_stopped_then_releases_port_and_runtime(tmp_path: Path) -> None:
    with LocalServer(LocalSettings(EARSHOT_DB=tmp_path / "e.db"), port=0) as server:
        server.start()
        with httpx.Client(trust_env=False, timeout=10) as client:
            response = client.get(f"http://127.0.0.1:{server.port}/topics/x")
        assert (response.status_code, response.text) == (404, "no topic 'x'")
        assert runtime.store() is server.runtime.store
    with pytest.raises(httpx.ConnectError), httpx.Client(trust_env=False, timeout=5) as client:
        client.get(f"http://127.0.0.1:{server.port}/topics/x")
    assert runtime._installed == {}  # the local adapters are uninstalled too


def test_server_closes_without_being_started(tmp_path: Path) -> None:
    with LocalServer(LocalSettings(EARSHOT_DB=tmp_path / "e.db"), port=0) as server:
        port = server.port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free again


def test_public_base_url_from_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARSHOT_PUBLIC_BASE_URL", "https://earshot.example/")
    with LocalServer(LocalSettings(EARSHOT_DB=tmp_path / "e.db"), port=0) as server:
        assert server.url == "https://earshot.example"


def test_serve_refuses_a_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--port", "99999"])  # the socket layer would take it as 99999 % 65536
    assert exit_.value.code == 2 and "not a port" in capsys.readouterr().err


def test_serve_says_when_the_port_is_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--db", str(tmp_path / "e.db"), "serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}") and "Traceback" not in err
    assert runtime._installed == {}


def test_other_commands_link_to_where_serve_last_listened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EARSHOT_PUBLIC_BASE_URL", raising=False)
    db = LocalSettings(EARSHOT_DB=tmp_path / "e.db")
    with LocalRuntime(db) as before:
        assert before.settings.public_base_url == "http://localhost:3000"  # never served: the default
    with LocalServer(db, port=0) as server:
        url = server.url
    with LocalRuntime(db) as after:  # e.g. `earshot digest run` on the same database
        assert after.settings.public_base_url == url
    monkeypatch.setenv("EARSHOT_PUBLIC_BASE_URL", "https://earshot.example")
    with LocalRuntime(db) as configured:
        assert configured.settings.public_base_url == "https://earshot.example"
