"""Faults injected into the AWS calls the real handlers make, at the HTTP boundary, and
the metrics those handlers emit.

:class:`AwsFaults` registers one botocore ``before-send`` hook on the default session:
the event moto itself answers on, so the hook sees each request just before moto (or
AWS) would. A rule matches an operation (``"sesv2.SendEmail"``,
``"dynamodb.TransactWriteItems"``), optionally a predicate on the request body, and fires
a given number of times (each SDK attempt is one). What it can do:

- :func:`lost_answer`: the request is processed (moto records the mail, writes the item)
  and then its answer never arrives (``ReadTimeoutError``), which is what a timeout after
  SES accepted a send looks like. The SDK retries it if its configuration says so; each
  retry is processed again, so a retried send is a second mail, as it would be on AWS.
- :func:`unreachable`: no connection (``EndpointConnectionError``); nothing processed.
- :func:`refused`: the service answered with an error (``ClientError``, as the SDK raises
  it once its own retries are spent, without making the test wait for them); nothing
  processed. A DynamoDB throttle, an SES ``MessageRejected``, a 500.

Installing resets :mod:`earshot.runtime`: boto3 clients copy the session's hooks when they
are built, so the handlers' clients must be built after the hook is in place.

:func:`emitted_metrics` turns the handlers' metrics on (``POWERTOOLS_METRICS_DISABLED``,
Powertools' own switch) and reads the CloudWatch EMF lines they print, so a test can
check that what it expects was counted the way CloudWatch would count it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from earshot import runtime

Fault = Callable[[str, AWSPreparedRequest], None]


def lost_answer() -> Fault:
    """Processed by the service, then no answer: a read timeout."""
    from moto.core.models import botocore_stubber  # the emulator's own before-send handler

    def fault(event_name: str, request: AWSPreparedRequest) -> None:
        botocore_stubber(event_name, request)
        raise ReadTimeoutError(endpoint_url=request.url)

    return fault


def unreachable() -> Fault:
    """No connection: the request never left."""

    def fault(event_name: str, request: AWSPreparedRequest) -> None:
        raise EndpointConnectionError(endpoint_url=request.url)

    return fault


def refused(code: str, message: str = "", *, status: int = 400) -> Fault:
    """The service's error answer (not processed), as the SDK raises it."""

    def fault(event_name: str, request: AWSPreparedRequest) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        raise ClientError({"Error": {"Code": code, "Message": message or code},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, operation)

    return fault


def throttled() -> Fault:
    """DynamoDB's throttle, once the SDK's retries gave up."""
    return refused("ProvisionedThroughputExceededException", "Rate of requests exceeds the allowed throughput")


@dataclass
class Rule:
    operation: str
    fault: Fault
    times: int | None  # None: every matching request until removed
    match: Callable[[bytes], bool] | None = None
    fired: int = 0

    def applies(self, operation: str, body: bytes) -> bool:
        return (self.operation == operation and (self.times is None or self.fired < self.times)
                and (self.match is None or self.match(body)))


class AwsFaults:
    """Rules that fail matching AWS requests; see the module docstring."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.requests: Counter[str] = Counter()  # every request seen, by "service.Operation"

    def install(self) -> None:
        events = boto3._get_default_session()._session.get_component("event_emitter")
        events.register_first("before-send", self._hook, unique_id="earshot-faults")
        runtime.reset()

    def uninstall(self) -> None:
        events = boto3._get_default_session()._session.get_component("event_emitter")
        events.unregister("before-send", unique_id="earshot-faults")
        runtime.reset()

    def add(self, operation: str, fault: Fault, *, times: int | None = 1,
            match: Callable[[bytes], bool] | None = None) -> Rule:
        rule = Rule(operation, fault, times, match)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def _hook(self, event_name: str, request: AWSPreparedRequest, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        name = f"{service}.{operation}"
        self.requests[name] += 1
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        for rule in self.rules:
            if rule.applies(name, body):
                rule.fired += 1
                rule.fault(event_name, request)
        return None


def body_has(text: str) -> Callable[[bytes], bool]:
    """A request-body predicate: the body mentions ``text`` (e.g. an address hash)."""
    needle = text.encode()
    return lambda body: needle in body


def emitted_metrics(capsys: pytest.CaptureFixture[str]) -> Counter[str]:
    """Sum of every metric the handlers flushed since the last call (EMF lines on stdout)."""
    totals: Counter[str] = Counter()
    for line in capsys.readouterr().out.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or "_aws" not in record:
            continue
        for directive in record["_aws"].get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                value = record.get(metric["Name"], 0)
                totals[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
    return totals
