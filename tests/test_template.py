"""template.yaml: valid for SAM, every handler importable, every function has sample events."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.aws_stack import EVENTS_DIR, REPO_ROOT, load_handler, load_template

FUNCTIONS = {
    name: res["Properties"]
    for name, res in load_template()["Resources"].items()
    if res["Type"] == "AWS::Serverless::Function"
}


def _function_dir(props: dict) -> str:
    return Path(props["CodeUri"]).name


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_handler_resolves_to_a_callable(logical_id: str) -> None:
    props = FUNCTIONS[logical_id]
    module_file, _, attr = props["Handler"].partition(".")
    assert (REPO_ROOT / props["CodeUri"] / f"{module_file}.py").is_file()
    assert attr == "handler"
    assert callable(load_handler(_function_dir(props)))


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_has_a_sample_event(logical_id: str) -> None:
    prefix = _function_dir(FUNCTIONS[logical_id])
    prefixes = {"api": "api_", "bounces": "ses_"}.get(prefix, prefix + "_")
    assert list(EVENTS_DIR.glob(f"{prefixes}*.json")), f"no events/{prefixes}*.json for {logical_id}"


def test_runtime_and_architecture_are_pinned() -> None:
    globals_ = load_template()["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]


def _sam() -> str | None:
    return shutil.which("sam", path=str(Path(sys.executable).parent)) or shutil.which("sam")


@pytest.mark.slow
@pytest.mark.skipif(_sam() is None, reason="AWS SAM CLI not installed (make venv installs it)")
def test_sam_validate_lint_passes() -> None:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    proc = subprocess.run(
        [_sam(), "validate", "--lint", "--region", "us-east-1"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
