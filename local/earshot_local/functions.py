"""The checkout's Lambda functions, events and template, as the local runtime and the
tests use them: load a handler, a sample event, template.yaml, a Lambda context."""

from __future__ import annotations

import functools
import importlib.util
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
FUNCTIONS_DIR = REPO_ROOT / "functions"
EVENTS_DIR = REPO_ROOT / "events"
REGION = "us-east-1"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: short-form intrinsics (!Ref, !Sub, ...) become plain values."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {tag_suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {tag_suffix: loader.construct_sequence(node, deep=True)}
    return {tag_suffix: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@functools.cache
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """template.yaml as a dict (intrinsics kept as ``{"Ref": ...}``-like dicts)."""
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


def function_names() -> list[str]:
    return sorted(p.name for p in FUNCTIONS_DIR.iterdir() if (p / "app.py").is_file())


def resolve_function(name: str) -> str:
    """A function's folder from its folder name or its template logical id
    (``DispatcherFunction`` -> ``dispatcher``), as ``sam local invoke`` accepts."""
    if (FUNCTIONS_DIR / name / "app.py").is_file():
        return name
    resource = load_template().get("Resources", {}).get(name, {})
    if resource.get("Type") == "AWS::Serverless::Function":
        return Path(resource["Properties"]["CodeUri"]).name
    raise LookupError(f"no function {name!r} (known: {', '.join(function_names())})")


@dataclass
class LambdaContext:
    """Just enough of the Lambda context object for Powertools and the handlers."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_s: float = 900.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


def load_handler(function: str) -> Any:
    """Import ``functions/<function>/app.py`` under a unique module name; return ``handler``."""
    return load_function_module(function).handler


@functools.cache
def load_function_module(function: str) -> ModuleType:
    path = FUNCTIONS_DIR / resolve_function(function) / "app.py"
    spec = importlib.util.spec_from_file_location(f"earshot_function_{path.parent.name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke(function: str, event: dict[str, Any]) -> Any:
    """Run ``functions/<function>/app.py:handler`` with ``event`` and a local context."""
    module = load_function_module(function)
    try:
        return module.handler(event, LambdaContext(function_name=f"earshot-{resolve_function(function)}"))
    finally:
        # Lambda flushes metrics after each invocation; locally they are disabled, and
        # Powertools never clears a disabled set (it prints it once 100 values pile up).
        if hasattr(module, "metrics"):
            module.metrics.clear_metrics()


def sample_event(name: str) -> dict[str, Any]:
    """Load ``events/<name>.json``."""
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


# Environment the handlers see when run on this machine: Powertools quiet, no tracing,
# no metrics output. Set before a handler module is first imported.
HANDLER_ENV = {
    "POWERTOOLS_SERVICE_NAME": "earshot",
    "POWERTOOLS_METRICS_NAMESPACE": "Earshot",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_DEV": "false",
}
