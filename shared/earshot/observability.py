"""Logging, tracing and metrics for the Lambda handlers, set up once (Powertools).

Each handler module imports what it needs from here and wraps its entry point::

    from earshot.observability import logger, metrics, observed

    @observed
    def handler(event, context): ...

:func:`observed` stacks what every handler wants, in the order Powertools documents:
the Lambda context in every log line (with a correlation id where the event has one),
an X-Ray subsegment for the invocation, and the metrics flushed as one EMF line at the
end. Service name, namespace and log level come from the POWERTOOLS_* variables that
template.yaml sets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()

Handler = TypeVar("Handler", bound=Callable[..., Any])


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
