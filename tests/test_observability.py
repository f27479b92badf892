"""What the handlers put in CloudWatch stays a fixed, documented set, because CloudWatch
bills by it: the metric names (collected from the handlers' own declarations, never typed
here) are exactly docs/observability.md's table; every metric a handler emits is one of
them with the one fixed dimension; the per-check log line is sampled as configured; feed
error kinds are folded into their families."""

from __future__ import annotations

import ast
import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from earshot import observability, runtime
from earshot.ingest.refresh import new_feed
from earshot.observability import declared_metrics, feed_error_family, feed_error_kinds, is_check_logged
from earshot_local.functions import function_names, load_function_module
from tests.support.aws_stack import EmbeddedBackend, sample_event
from tests.support.feedserver import FeedServer, Serve, Validated

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "observability.md"


def _documented_metrics() -> set[str]:
    """First-column names of the table under the doc's "## Metrics" heading."""
    text = DOC.read_text()
    section = text[text.index("## Metrics"):]
    section = section[:m.start()] if (m := re.search(r"^## ", section[3:], flags=re.M)) else section
    names: set[str] = set()
    for row in re.findall(r"^\| `([^`]+)` \|", section, flags=re.M):
        names.add(row)
    return names


def _all_declared() -> frozenset[str]:
    for name in function_names():
        load_function_module(name)
    return declared_metrics()


def test_the_metric_names_the_handlers_declare_are_the_documented_set() -> None:
    declared = _all_declared()
    documented = _documented_metrics()
    assert declared == documented, (f"declared, not documented: {sorted(declared - documented)}; "
                                    f"documented, not declared: {sorted(documented - declared)}")


def test_no_code_emits_a_metric_but_through_count() -> None:
    """``metrics.add_metric`` lives in earshot.observability.count alone, which refuses
    undeclared names: no other path can add a billed metric."""
    callers = []
    for path in [*(REPO / "shared").rglob("*.py"), *(REPO / "functions").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("add_metric", "add_dimension", "add_metadata"):
                callers.append((str(path.relative_to(REPO)), node.attr))
    assert callers == [("shared/earshot/observability.py", "add_metric")]


@pytest.mark.parametrize("kind, family", [
    ("timeout", "timeout"), ("connect_error", "connect_error"), ("not_a_feed", "not_a_feed"), ("gone", "gone"),
    ("http_404", "http_4xx"), ("http_403", "http_4xx"), ("http_429", "http_429"), ("http_500", "http_5xx"),
    ("http_503", "http_5xx"), ("http_300", "http_3xx"), ("http_999", "http_other"), ("http_099", "http_other"),
    ("http_error", "other"), ("fetch_error", "other"), ("made_up", "other"),
])
def test_feed_error_kinds_fold_into_a_fixed_family(kind: str, family: str) -> None:
    assert feed_error_family(kind) == family
    assert family in feed_error_kinds()


# ------------------------------------------------------------------ what the handlers emit
def _emf_records(out: str) -> list[dict[str, Any]]:
    records = []
    for line in out.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "_aws" in record:
            records.append(record)
    return records


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The handlers' Powertools log lines at INFO (the deployed level), as parsed JSON."""
    buffer = io.StringIO()
    logger = observability.logger
    handlers = logger._logger.handlers  # noqa: SLF001 - Powertools' own stdout handler
    streams = [h.setStream(buffer) for h in handlers if hasattr(h, "setStream")]
    level = logger.log_level
    logger.setLevel("INFO")
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    logger.setLevel(level)
    for handler, stream in zip([h for h in handlers if hasattr(h, "setStream")], streams, strict=True):
        handler.setStream(stream)


def _rss(*guids: str) -> bytes:
    items = "".join(f"<item><title>{g}</title><guid>{g}</guid><enclosure url='https://cdn.example/{g}.mp3' "
                    "type='audio/mpeg' length='1'/></item>" for g in guids)
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title>{items}</channel></rss>".encode()


def _checks(feed_server: FeedServer, *, sample_rate: str, capsys: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch, error_metrics: str = "true") -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Two cycles of the deployed worker over feeds that end every usual way; returns each
    feed's id by route and the EMF records flushed."""
    routes = {
        "/ok.xml": Validated(_rss("a", "b")), "/same.xml": Serve(_rss("c")),
        "/missing.xml": Serve(b"gone", status=404), "/forbidden.xml": Serve(b"no", status=403),
        "/busy.xml": Serve(b"later", status=429, headers={"Retry-After": "60"}),
        "/broken.xml": Serve(b"oops", status=500), "/page.xml": Serve(b"<html><body>hi</body></html>"),
    }
    allowed = ",".join(feed_server.authorities)
    # Powertools reads namespace and service when earshot.observability is first imported,
    # which may have been before any test set the handlers' environment.
    monkeypatch.setattr(observability.metrics, "namespace", "Earshot")
    monkeypatch.setattr(observability.metrics, "service", "earshot")
    env = {"EARSHOT_ALLOWED_HOSTS": allowed, "EARSHOT_CHECK_LOG_SAMPLE_RATE": sample_rate,
           "EARSHOT_FEED_ERROR_METRICS": error_metrics, "POWERTOOLS_METRICS_DISABLED": "false"}
    with EmbeddedBackend(extra_env=env) as stack:
        ids = {}
        for path, behaviour in routes.items():
            url = feed_server.route(path, behaviour)
            if path == "/busy.xml":  # its Retry-After pauses its whole host: alone on the other one
                url = feed_server.url(path, alt=True)
            feed = new_feed(url, datetime.now(UTC) - timedelta(minutes=1))
            runtime.store().add_feed(feed)
            ids[path] = feed.feed_id
        capsys.readouterr()
        for _ in range(2):
            stack.invoke("dispatcher", {**sample_event("dispatcher_scheduled"), "force": True})
            stack.drain_queue("fetch_worker", stack.settings.fetch_queue_url)
        return ids, _emf_records(capsys.readouterr().out)


def test_the_worker_emits_declared_names_with_the_one_fixed_dimension(
        feed_server: FeedServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, records = _checks(feed_server, sample_rate="1", capsys=capsys, monkeypatch=monkeypatch)
    emitted = {m["Name"] for r in records for d in r["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert emitted <= _all_declared()
    assert {"Feeds_parsed", "Feeds_not_modified", "Feeds_unchanged", "Feeds_error", "FeedError_http_4xx",
            "FeedError_http_429", "FeedError_http_5xx", "FeedError_not_a_feed", "FeedsQueued"} <= emitted
    assert not emitted & {"FeedError_http_403", "FeedError_http_404", "FeedError_http_500"}, \
        "a status code never names a metric"
    for record in records:
        for directive in record["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "Earshot"
            assert directive["Dimensions"] == [["service"]]
        assert record["service"] == "earshot"


def test_error_families_are_counted_only_when_asked(
        feed_server: FeedServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, records = _checks(feed_server, sample_rate="0", capsys=capsys, monkeypatch=monkeypatch, error_metrics="false")
    emitted = {m["Name"] for r in records for d in r["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert "Feeds_error" in emitted
    assert not {name for name in emitted if name.startswith("FeedError_")}


def test_an_undeclared_name_is_logged_not_emitted(monkeypatch: pytest.MonkeyPatch,
                                                  log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    observability.metrics.clear_metrics()
    observability.count("FeedError_http_404")
    assert observability.metrics.metric_set == {}
    (line,) = log_lines()
    assert (line["level"], line["message"], line["metric"]) == (
        "ERROR", "metric name not declared; not emitted", "FeedError_http_404")


@pytest.mark.parametrize("sample_rate", ["0", "1"])
def test_routine_checks_are_logged_at_the_sample_rate_failures_always(
        feed_server: FeedServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        log_lines: Callable[[], list[dict[str, Any]]], sample_rate: str) -> None:
    ids, _ = _checks(feed_server, sample_rate=sample_rate, capsys=capsys, monkeypatch=monkeypatch)
    checks = [line for line in log_lines() if line["message"] == "feed refreshed"]
    failing = {ids[p] for p in ("/missing.xml", "/forbidden.xml", "/busy.xml", "/broken.xml", "/page.xml")}
    logged = [line["feed_id"] for line in checks]
    # The 429's Retry-After (60 s) pauses its host: its second check is deferred, not made.
    once = ids["/busy.xml"]
    if sample_rate == "0":
        assert sorted(logged) == sorted([*failing, *(failing - {once})]), "each failed check made, nothing else"
    else:
        assert len(logged) == 2 * len(ids) - 1
    assert all(line["level"] == "INFO" and line["function_name"] for line in checks)


def test_the_sampled_share_follows_the_rate() -> None:
    ids = [f"feed-{i}" for i in range(4000)]
    for rate in (0.05, 0.1, 0.5):
        share = sum(is_check_logged(i, "not_modified", rate) for i in ids) / len(ids)
        assert abs(share - rate) < 0.025, (rate, share)
        # by feed, not by check: the same feeds every time
        assert [is_check_logged(i, "parsed", rate) for i in ids] == [is_check_logged(i, "unchanged", rate) for i in ids]
