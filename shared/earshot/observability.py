"""Logging, tracing and metrics for the Lambda handlers, set up once (Powertools).

Each handler module imports what it needs from here and wraps its entry point::

    from earshot.observability import count, declare_metrics, logger, observed

    METRICS = declare_metrics("FeedsQueued")

    @observed
    def handler(event, context): ...

:func:`observed` stacks what every handler wants, in the order Powertools documents:
the Lambda context in every log line (with a correlation id where the event has one),
an X-Ray subsegment for the invocation, and the metrics flushed as one EMF line at the
end. Service name, namespace and log level come from the POWERTOOLS_* variables that
template.yaml sets.

What this costs is bounded by construction (docs/observability.md, the cost section of
docs/benchmarks.md):

- **Metric names are a fixed, declared set.** CloudWatch bills every distinct metric
  name x dimension set per month, so a name built from data (an HTTP status, a message)
  would grow the bill with the data. Handlers declare their names at import
  (:func:`declare_metrics`, from the enumerations their outcomes are typed with) and
  emit through :func:`count`, which refuses an undeclared name. The one dimension is
  Powertools' ``service``, the same for every function.
- **Feed error kinds are folded into families** for metrics (:func:`feed_error_family`):
  ``http_404`` stays on the feed and in its log line, the metric says ``http_4xx``.
- **The per-check log line is sampled** by feed (:func:`is_check_logged`): every failed
  check is logged, a routine one only for a fixed share of feeds, so a sampled feed's
  history is complete and the bytes ingested shrink with the share.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from earshot.errors import FeedError, HttpStatusError

logger = Logger()
tracer = Tracer()
metrics = Metrics()

Handler = TypeVar("Handler", bound=Callable[..., Any])

# --------------------------------------------------------------------------- metrics
_DECLARED: set[str] = set()

# HTTP statuses as metric families: a fixed set whatever status a server invents. 429
# has its own (a host asking Earshot to slow down is worth watching by itself).
HTTP_FAMILIES = ("http_3xx", "http_4xx", "http_429", "http_5xx", "http_other")
_HTTP_KIND = re.compile(r"^http_(\d{3})$")


def metric_family(prefix: str, members: Iterable[str]) -> frozenset[str]:
    """``prefix`` + each member: the names of one counted enumeration
    (``metric_family("Feeds_", ["parsed", "gone"])`` -> ``{"Feeds_parsed", "Feeds_gone"}``)."""
    return frozenset(f"{prefix}{member}" for member in members)


def declare_metrics(*names: str | Iterable[str]) -> frozenset[str]:
    """Declare the metric names a handler may emit (single names or families); returns
    them. Declaring is additive and idempotent: a handler module declares at import."""
    declared: set[str] = set()
    for item in names:
        declared |= {item} if isinstance(item, str) else set(item)
    _DECLARED.update(declared)
    return frozenset(declared)


def declared_metrics() -> frozenset[str]:
    """Every name declared so far by the handler modules imported in this process."""
    return frozenset(_DECLARED)


def count(name: str, value: float = 1) -> None:
    """Add ``value`` to the metric ``name`` (a Count, flushed with the invocation's EMF
    line). An undeclared name is not emitted: it is logged as an error instead, so a
    coding slip shows in the logs without adding a billed metric."""
    if name not in _DECLARED:
        logger.error("metric name not declared; not emitted", extra={"metric": name, "value": value})
        return
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def feed_error_kinds() -> frozenset[str]:
    """The ``kind`` of every concrete error of the FeedError tree (errors.py: the leaves,
    read from the classes themselves), HttpStatusError's per-status kinds as
    :data:`HTTP_FAMILIES`, and ``other`` for any kind outside the tree."""
    kinds: set[str] = {"other"}
    pending: list[type[FeedError]] = [FeedError]
    while pending:
        cls = pending.pop()
        subclasses = cls.__subclasses__()
        pending.extend(subclasses)
        if issubclass(cls, HttpStatusError):
            kinds.update(HTTP_FAMILIES)
        elif not subclasses:
            kinds.add(cls.kind)
    return frozenset(kinds)


def feed_error_family(kind: str) -> str:
    """A feed error kind as counted in metrics: itself, or its HTTP family.

    >>> [feed_error_family(k) for k in ("timeout", "http_404", "http_429", "http_503", "http_304", "http_999")]
    ['timeout', 'http_4xx', 'http_429', 'http_5xx', 'http_3xx', 'http_other']
    >>> feed_error_family("no_such_kind")
    'other'
    """
    match = _HTTP_KIND.match(kind)
    if match:
        status = int(match.group(1))
        if status == 429:
            return "http_429"
        return f"http_{status // 100}xx" if 300 <= status < 600 else "http_other"
    return kind if kind in feed_error_kinds() else "other"


# --------------------------------------------------------------------------- logs
ALWAYS_LOGGED_RESULTS = frozenset({"error", "gone", "removed"})


def is_check_logged(feed_id: str, result: str, sample_rate: float) -> bool:
    """Is this check's "feed refreshed" line written? Always for a check that failed or
    retired the feed; for a routine one (parsed, not modified, unchanged) when the feed
    falls in the sampled share. The share is chosen by feed (a hash of its id), not by
    check: a sampled feed's every check is logged, so its history reads whole.

    >>> is_check_logged("f1", "error", 0.0), is_check_logged("f1", "not_modified", 0.0)
    (True, False)
    >>> is_check_logged("f1", "not_modified", 1.0)
    True
    """
    if result in ALWAYS_LOGGED_RESULTS or sample_rate >= 1:
        return True
    if sample_rate <= 0:
        return False
    point = int.from_bytes(hashlib.sha256(feed_id.encode()).digest()[:8], "big") / 2**64
    return point < sample_rate


# --------------------------------------------------------------------------- handlers
def observed(handler: Handler | None = None, *, correlation_id_path: str | None = None,
             flush_metrics: bool = True) -> Any:
    """Decorate a handler with logging context, tracing and (unless ``flush_metrics`` is
    False, for a handler that records none) metrics. Usable bare or with arguments."""

    def wrap(fn: Handler) -> Handler:
        wrapped: Any = fn
        if flush_metrics:
            wrapped = metrics.log_metrics(wrapped)
        wrapped = tracer.capture_lambda_handler(wrapped)
        wrapped = logger.inject_lambda_context(correlation_id_path=correlation_id_path)(wrapped)
        return wrapped  # type: ignore[no-any-return]

    return wrap(handler) if handler is not None else wrap
