"""The checkout's Lambda functions, events and template, as the local runtime and the
tests use them: load a handler, a sample event, template.yaml, a Lambda context."""

from __future__ import annotations

import functools
import importlib.util
import json
import time
import uuid
import warnings
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
    resources = load_template().get("Resources", {})
    resource = resources.get(name, {})
    if resource.get("Type") == "AWS::Serverless::Function":
        return Path(resource["Properties"]["CodeUri"]).name
    logical = {Path(r["Properties"]["CodeUri"]).name: logical_id for logical_id, r in resources.items()
               if r.get("Type") == "AWS::Serverless::Function"}
    known = ", ".join(f"{f} ({logical[f]})" if f in logical else f for f in function_names())
    raise LookupError(f"no function {name!r} (known: {known})")


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
        with warnings.catch_warnings():
            # Metrics are off locally; Powertools still warns that a failed invocation had none.
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            return module.handler(event, LambdaContext(function_name=f"earshot-{resolve_function(function)}"))
    finally:
        # Lambda flushes metrics after each invocation; locally they are disabled, and
        # Powertools never clears a disabled set (it prints it once 100 values pile up).
        from earshot.observability import metrics

        metrics.clear_metrics()


# ------------------------------------------------------------------ event shapes
class WrongEvent(ValueError):
    """An event of another shape than the function is invoked with (one line, for a person)."""


# What each function is invoked with, in words, and its sample in events/.
EVENT_KINDS: dict[str, tuple[str, str]] = {
    "api": ("an HTTP API request (payload format 2.0)", "api_topic_page"),
    "bounces": ("an SES bounce or complaint from EventBridge", "ses_bounce"),
    "digest": ("the scheduler's weekly-digest event", "digest_scheduled"),
    "digest_sender": ("an SQS batch of digest recipients", "digest_sender_batch"),
    "dispatcher": ("the scheduler's dispatch event", "dispatcher_scheduled"),
    "fetch_worker": ("an SQS batch of feed checks", "fetch_worker_batch"),
    "transcript_worker": ("an SQS batch of transcript jobs", "transcript_worker_batch"),
}


def _validation_problem(model: Any, data: Any) -> str | None:
    """A pydantic model's complaint about ``data`` on one line, or None if it fits."""
    from pydantic import ValidationError

    try:
        model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        said = [f"{'.'.join(map(str, e['loc'])) or 'the event'}: {e['msg'][:1].lower()}{e['msg'][1:]}"
                for e in errors[:3]]
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return "; ".join(said) + more
    return None


def _event_problem(function: str, event: dict[str, Any]) -> str | None:
    from earshot.ingest.dispatch import DispatchRequest
    from earshot.ingest.refresh import FeedCheck
    from earshot.mail.delivery import DigestBatch, DigestRequest, SesEvent

    if function == "api":
        context = event.get("requestContext")
        if event.get("version") != "2.0" or not isinstance(context, dict) or not isinstance(context.get("http"), dict):
            return "has no version 2.0 requestContext.http"
        if not isinstance(event.get("rawPath"), str):
            return "has no rawPath"
        return None
    if function in ("fetch_worker", "digest_sender", "transcript_worker"):
        records = event.get("Records")
        if not isinstance(records, list) or not records:
            return "has no Records"
        from earshot.transcripts.retrieval import TranscriptJob

        body_model = {"fetch_worker": FeedCheck, "digest_sender": DigestBatch,
                      "transcript_worker": TranscriptJob}[function]
        for n, record in enumerate(records, start=1):
            if not isinstance(record, dict) or not isinstance(record.get("messageId"), str) \
                    or not isinstance(record.get("body"), str):
                return f"has a record (number {n}) without a messageId and a body"
            try:
                body = json.loads(record["body"])
            except ValueError:
                return f"has a record (number {n}) whose body is not JSON"
            if problem := _validation_problem(body_model, body):
                return f"has a record (number {n}) whose body does not fit: {problem}"
        return None
    if function == "dispatcher":
        unknown = sorted(set(event) - {"source", "detail-type", "force"})
        if unknown:
            return f"has unknown keys: {', '.join(unknown)}"
    model = {"dispatcher": DispatchRequest, "digest": DigestRequest, "bounces": SesEvent}.get(function)
    if model is not None and (problem := _validation_problem(model, event)):
        return f"does not fit: {problem}"
    return None


def check_event(function: str, event: Any) -> None:
    """Raise :class:`WrongEvent` unless ``event`` has the shape ``function`` is invoked with
    (what ``earshot invoke`` checks before running a handler)."""
    what, sample = EVENT_KINDS.get(function, ("an event", ""))
    problem = "is not a JSON object" if not isinstance(event, dict) else _event_problem(function, event)
    if problem:
        like = f" (like events/{sample}.json)" if sample else ""
        raise WrongEvent(f"{function} is invoked with {what}{like}; this event {problem}")


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
