"""What the deployed stack writes to CloudWatch and sends to readers, measured, for the
cost table: log bytes per check and per invocation, EMF bytes and metric names, traces
per invocation, and the topic page's and topic feed's response sizes (200 and 304).

The real handlers run on the AWS test double (``tests.support.aws_stack.EmbeddedBackend``,
moto in-process), as ``deployed_counts.py`` runs them:

1. **fetch_worker**: corpus feeds served on loopback (``tests.support.feedserver``; two
   thirds with validators, which answer 304 on the second cycle, the rest the same body
   without them), plus feeds that fail (404, 403, 429, 500, an HTML page); two cycles,
   the dispatcher forced, the worker on each SQS batch of 10 with a Lambda context named
   as deployed and an X-Ray trace header set (Powertools puts both in every line).
   Powertools' log lines at INFO and the EMF lines are captured as the function would
   print them; each line's bytes are counted, the per-check line by the check's result.
2. **api**: a topic over those feeds' episodes (the query below), then the sample events
   ``events/api_topic_page.json`` and ``events/api_topic_feed.json`` through the api
   handler: body and header bytes of the 200, then of the 304 answering its ETag, and the
   DynamoDB requests each sends (counted on the store's boto3 client).

The metric names are the handlers' own declarations (``earshot.observability``), read
after importing every function, not a list typed here. Writes one JSON object to ``--out``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import io
import json
import statistics
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOPIC_QUERY = "history OR science OR news"  # a broad topic: its page and feed hit the 100-episode limit
TRACE_HEADER = "Root=1-67a1b2c3-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1;Lineage=1:a1b2c3d4:0"


def _context(function: str, memory_mb: int):  # noqa: ANN202
    from earshot_local.functions import LambdaContext

    # Deployed names carry the stack and a generated suffix; the ARN repeats them.
    return LambdaContext(function_name=f"earshot-{function}-Ab12Cd34Ef56", memory_limit_in_mb=memory_mb,
                         aws_request_id=str(uuid.uuid4()))


class Captured:
    """Powertools' log lines (its stdout handler pointed at a buffer) and everything
    printed (the EMF lines), one invocation at a time."""

    def __init__(self) -> None:
        from earshot import observability

        self.logger = observability.logger
        self.handlers = [h for h in self.logger._logger.handlers if hasattr(h, "setStream")]  # noqa: SLF001
        self.logger.setLevel("INFO")
        self.logger.append_keys(service="earshot")  # as deployed (POWERTOOLS_SERVICE_NAME)

    @contextlib.contextmanager
    def invocation(self):  # noqa: ANN201
        logs, out = io.StringIO(), io.StringIO()
        old = [h.setStream(logs) for h in self.handlers]
        result: dict = {}
        try:
            with contextlib.redirect_stdout(out):
                yield result
        finally:
            for h, stream in zip(self.handlers, old, strict=True):
                h.setStream(stream)
        result["log_lines"] = [json.loads(line) | {"_bytes": len(line.encode()) + 1}
                               for line in logs.getvalue().splitlines() if line.startswith("{")]
        result["emf_lines"] = [line for line in out.getvalue().splitlines() if line.startswith('{"_aws"')]


def measure_worker(feeds: list[Path], captured: Captured) -> dict:
    from earshot import runtime
    from earshot.ingest.refresh import new_feed
    from earshot_local.functions import load_function_module, sample_event
    from tests.support.aws_stack import EmbeddedBackend
    from tests.support.feedserver import Serve, Validated, running_feed_server

    worker = load_function_module("fetch_worker")
    per_result: dict[str, list[int]] = defaultdict(list)
    other_lines: list[int] = []
    emf_bytes: list[int] = []
    invocations = checks = 0
    names_emitted: set[str] = set()
    with running_feed_server() as server:
        routes = []
        for i, path in enumerate(feeds):
            body = path.read_bytes()
            behaviour = Validated(body, etag=f'"v{i}"') if i % 3 else Serve(body)
            routes.append(server.route(f"/corpus/{i}.xml", behaviour))
        for status in (404, 403, 429, 500):
            routes.append(server.route(f"/failing/{status}.xml", Serve(b"no", status=status)))
        routes.append(server.route("/failing/page.xml", Serve(b"<html><body>a web page</body></html>",
                                                             headers={"Content-Type": "text/html"})))
        env = {"EARSHOT_ALLOWED_HOSTS": ",".join(server.authorities), "EARSHOT_CHECK_LOG_SAMPLE_RATE": "1",
               "POWERTOOLS_METRICS_DISABLED": "false", "_X_AMZN_TRACE_ID": TRACE_HEADER}
        with EmbeddedBackend(extra_env=env) as stack:
            from earshot import observability

            observability.metrics.namespace, observability.metrics.service = "Earshot", "earshot"
            repo = runtime.store()
            for url in routes:
                repo.add_feed(new_feed(url, datetime.now(UTC) - timedelta(minutes=1)))
            queue_url = stack.settings.fetch_queue_url
            cycles = []
            for _cycle in (1, 2):
                stack.invoke("dispatcher", {**sample_event("dispatcher_scheduled"), "force": True})
                results: dict[str, int] = defaultdict(int)
                while (event := stack.receive_sqs_event(queue_url)) is not None:
                    with captured.invocation() as got:
                        worker.handler(event, _context("FetchWorkerFunction", 1024))
                    invocations += 1
                    for line in got["log_lines"]:
                        if line["message"] == "feed refreshed":
                            per_result[line["result"]].append(line["_bytes"])
                            results[line["result"]] += 1
                            checks += 1
                        else:
                            other_lines.append(line["_bytes"])
                    for line in got["emf_lines"]:
                        emf_bytes.append(len(line.encode()) + 1)
                        record = json.loads(line)
                        names_emitted |= {m["Name"] for d in record["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
                    stack.delete_messages(queue_url, event, keep=set())
                cycles.append(dict(results))
            example = next(iter(per_result))
    all_check = [b for v in per_result.values() for b in v]
    return {
        "feeds": len(routes), "corpus_feeds": len(feeds), "cycles": cycles, "invocations": invocations,
        "checks": checks,
        "check_line_bytes": {k: {"n": len(v), "mean": round(statistics.mean(v), 1), "max": max(v)}
                             for k, v in sorted(per_result.items())},
        "check_line_mean_bytes": round(statistics.mean(all_check), 1),
        "other_log_bytes_per_invocation": round(sum(other_lines) / max(1, invocations), 1),
        "other_log_lines_per_invocation": round(len(other_lines) / max(1, invocations), 2),
        "emf_bytes_per_invocation": round(sum(emf_bytes) / max(1, invocations), 1),
        "emf_lines_per_invocation": round(len(emf_bytes) / max(1, invocations), 2),
        "metric_names_emitted": sorted(names_emitted), "example_result": example,
    }


def measure_api(captured: Captured, feeds: list[Path]) -> dict:
    from earshot import runtime
    from earshot.ingest.parser import parse_feed
    from earshot.ingest.refresh import new_feed
    from earshot.topics.service import add_topic
    from earshot_local.functions import load_function_module, sample_event
    from tests.support.aws_stack import EmbeddedBackend

    api = load_function_module("api")
    from earshot.web import topics as routes

    # A tag issued within SETTLE_S of the topic's last change holds only that long; the
    # topic here was just backfilled, and a month of polls mostly meets settled topics.
    routes.SETTLE_S = 0
    out: dict = {}
    with EmbeddedBackend(extra_env={"_X_AMZN_TRACE_ID": TRACE_HEADER}) as _:
        repo = runtime.store()
        now = datetime.now(UTC)
        for i, path in enumerate(feeds):
            feed = new_feed(f"https://feeds.example/{i}.xml", now)
            try:
                parsed = parse_feed(path.read_bytes(), url=feed.url)
            except Exception:  # noqa: BLE001 - a corpus file that is no feed has no episodes to match
                continue
            feed.title = parsed.feed.title or feed.url
            repo.add_feed(feed)
            repo.put_new_episodes(feed.feed_id, parsed.episodes, now)
        slug = sample_event("api_topic_page")["pathParameters"]["slug"]
        result = add_topic(repo, slug, name="History, science and news", query=TOPIC_QUERY, now=now)
        out["topic"] = {"query": TOPIC_QUERY, "matches": result.matched}
        for kind, event_name in (("page", "api_topic_page"), ("feed", "api_topic_feed")):
            event = sample_event(event_name)
            with captured.invocation() as got:
                first = api.handler(copy.deepcopy(event), _context("ApiFunction", 512))
            packed_event = copy.deepcopy(event)
            packed_event["headers"]["accept-encoding"] = "gzip, deflate"  # what browsers and podcast apps send
            packed = api.handler(packed_event, _context("ApiFunction", 512))
            with dynamodb_requests(repo) as reads_200:
                api.handler(copy.deepcopy(packed_event), _context("ApiFunction", 512))
            conditional = copy.deepcopy(packed_event)
            conditional["headers"]["if-none-match"] = packed["headers"]["ETag"]
            with captured.invocation() as got304, dynamodb_requests(repo) as reads_304:
                second = api.handler(conditional, _context("ApiFunction", 512))
            out[kind] = {
                "status": first["statusCode"], "body_bytes": len(first["body"].encode()),
                "gzip_body_bytes": len(base64.b64decode(packed["body"])) if packed.get("isBase64Encoded") else None,
                "header_bytes": _header_bytes(first), "not_modified_status": second["statusCode"],
                "not_modified_body_bytes": len(second["body"].encode()),
                "not_modified_header_bytes": _header_bytes(second),
                "log_bytes_per_request": sum(line["_bytes"] for line in got["log_lines"]),
                "log_bytes_per_304": sum(line["_bytes"] for line in got304["log_lines"]),
                "route_cpu_ms": _route_cpu_ms(api, packed_event, repo),
                "not_modified_route_cpu_ms": _route_cpu_ms(api, conditional, repo),
                "dynamodb_requests": reads_200, "not_modified_dynamodb_requests": reads_304,
            }
        out["match_items"] = _match_item_sizes(repo, slug)
        out["topic_item_bytes"] = _topic_item_bytes(repo, slug)
    return out


@contextlib.contextmanager
def dynamodb_requests(repo):  # noqa: ANN001, ANN201
    """The DynamoDB operations the store's client sends meanwhile (GetItem, Query...)."""
    sent: list[str] = []
    events = repo.client.meta.events
    events.register("before-call.dynamodb", lambda model, **_: sent.append(model.name), unique_id="bench-count")
    try:
        yield sent
    finally:
        events.unregister("before-call.dynamodb", unique_id="bench-count")


def _topic_item_bytes(repo, slug: str) -> int:  # noqa: ANN001
    """The topic item's size by AWS's rule (what a 304's GetItem reads, and a revision rewrites)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from deployed_counts import item_size  # noqa: PLC0415

    resp = repo.client.get_item(TableName=repo.table_name,
                                Key={"pk": {"S": f"TOPIC#{slug}"}, "sk": {"S": "TOPIC"}})
    return int(item_size(resp["Item"]))


def _route_cpu_ms(api, event: dict, repo) -> float:  # noqa: ANN001
    """CPU time of the route's own work (reading the store's answer, the report, the
    render, gzip), warm, best of three: the store's reads are answered from memory here,
    since the test double's in-process DynamoDB costs far more CPU than the route itself
    (the cost model adds DynamoDB's round trips and Lambda's CPU share separately)."""
    topic, matches = repo.get_topic, repo.list_matches
    cached_topic = topic(event["pathParameters"]["slug"])
    cached = matches(event["pathParameters"]["slug"])
    repo.get_topic = lambda slug: cached_topic
    repo.list_matches = lambda slug, limit=None: cached[:limit] if limit else list(cached)
    try:
        times = []
        for _ in range(3):
            started = time.process_time()
            api.handler(copy.deepcopy(event), _context("ApiFunction", 512))
            times.append(time.process_time() - started)
        return round(min(times) * 1000, 1)
    finally:
        del repo.get_topic, repo.list_matches


def _match_item_sizes(repo, slug: str) -> dict:  # noqa: ANN001
    """The topic's match items in the table (count, mean bytes by AWS's rule: names +
    values): a page view and a feed poll read them all (one Query, every page)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from deployed_counts import item_size  # noqa: PLC0415

    sizes = []
    kwargs: dict = {"TableName": repo.table_name, "KeyConditionExpression": "pk = :p AND begins_with(sk, :m)",
                    "ExpressionAttributeValues": {":p": {"S": f"TOPIC#{slug}"}, ":m": {"S": "MATCH#"}}}
    while True:
        resp = repo.client.query(**kwargs)
        sizes += [item_size(item) for item in resp.get("Items", [])]
        if "LastEvaluatedKey" not in resp:
            break
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    return {"count": len(sizes), "mean_bytes": round(statistics.mean(sizes), 1) if sizes else 0,
            "total_bytes": sum(sizes)}


def _header_bytes(response: dict) -> int:
    """Bytes of the status line and headers as sent (API Gateway adds date, length,
    request id and connection fields: ~160 bytes, counted here too)."""
    own = sum(len(k) + len(str(v)) + 4 for k, v in (response.get("headers") or {}).items())
    return own + len("HTTP/1.1 200 OK\r\n\r\n") + 160


def access_log_line_bytes() -> int:
    """The API access log line (template.yaml's Format) filled with typical values."""
    from earshot_local.functions import load_template

    fmt = load_template()["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]["Format"]
    values = {"requestId": "Jx2k7hEkIAMEVXw=", "identity.sourceIp": "198.51.100.7",
              "requestTime": "26/Nov/2026:09:00:00 +0000", "routeKey": "GET /topics/{slug}/feed.xml",
              "status": "304", "responseLength": "0", "responseLatency": "48", "integrationErrorMessage": "-"}
    for key, value in values.items():
        fmt = fmt.replace(f"$context.{key}", value)
    return len(fmt.encode()) + 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus" / "feeds")
    parser.add_argument("--feeds", type=int, default=60, help="corpus feeds to serve (default 60)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    files = sorted(args.corpus.glob("*.xml"))[: args.feeds] if args.corpus.is_dir() else []
    if not files:
        args.out.write_text(json.dumps({"error": f"no corpus at {args.corpus}"}))
        return
    captured = Captured()
    result = {"worker": measure_worker(files, captured), "api": measure_api(captured, files),
              "access_log_line_bytes": access_log_line_bytes()}
    from earshot.observability import declared_metrics
    from earshot_local.functions import function_names, load_function_module

    for name in function_names():
        load_function_module(name)
    result["metric_names"] = sorted(declared_metrics())
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
