"""Least privilege, checked against template.yaml and against what the code really calls.

Each function's policies are read from the template (``earshot_local.functions.load_template``):
no ``Action: "*"`` or ``service:*``, no ``Resource: "*"`` except for actions AWS offers no
resource-level permission for (``RESOURCE_STAR_REQUIRED``, with the reason), and no SAM
policy template broader than what the function uses. "What it uses" is recorded, not
guessed: every handler runs its real flows under moto with a botocore hook noting each
(service, operation, table/index or queue) it calls. A test also scans the repository for
secrets.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from earshot import runtime
from earshot.mail.digest import previous_week, week_window
from earshot.models import MatchedEpisode, Topic
from earshot.topics.service import add_topic
from tests.hostile.conftest import add_feed
from tests.support.aws_stack import (
    BUCKETS,
    QUEUES,
    REGION,
    REPO_ROOT,
    TABLES,
    EmbeddedBackend,
    load_template,
    sample_event,
)
from tests.support.directories import FakeAppleSearch, Show
from tests.support.feedserver import Serve, running_feed_server

# Actions that cannot be scoped to a resource, so AWS requires Resource "*".
RESOURCE_STAR_REQUIRED = {
    "ses:GetAccount": "account-level send quota; SES defines no resource type for it",
    # Added by SAM for `Tracing: Active` (AWSXrayWriteOnlyAccess); X-Ray has no resource-level permissions.
    "xray:PutTraceSegments": "X-Ray write APIs have no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray write APIs have no resource-level permissions",
    "xray:GetSamplingRules": "X-Ray sampling APIs have no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray sampling APIs have no resource-level permissions",
    "xray:GetSamplingStatisticSummaries": "X-Ray sampling APIs have no resource-level permissions",
}

# What SAM's policy templates expand to (serverless-application-model policy_templates.json).
POLICY_TEMPLATES = {
    "DynamoDBCrudPolicy": ["dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan",
                           "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem",
                           "dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"],
    "DynamoDBReadPolicy": ["dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem",
                           "dynamodb:DescribeTable"],
}
# IAM authorizes these API operations under another action name.
ACTION_OF = {("sqs", "SendMessageBatch"): "sqs:SendMessage"}  # SESv2 SendEmail (raw too) is ses:SendEmail
# A transaction is authorized item by item, by the action each item is.
TRANSACT_ACTIONS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                    "ConditionCheck": "dynamodb:ConditionCheckItem"}
SERVICE_PREFIX = {"dynamodb": "dynamodb", "sqs": "sqs", "sesv2": "ses", "ses": "ses", "s3": "s3"}
LOCAL_NAMES = {name: logical for logical, (_, name) in {**TABLES, **QUEUES, **BUCKETS}.items()}

FUNCTIONS = {
    "DispatcherFunction": "dispatcher", "FetchWorkerFunction": "fetch_worker", "ApiFunction": "api",
    "ConfirmationFunction": "confirmations", "DigestFunction": "digest", "DigestSenderFunction": "digest_sender",
    "BounceFunction": "bounces", "DiscoveryFunction": "discovery", "TranscriptWorkerFunction": "transcript_worker",
    "BackfillWorkerFunction": "backfill_worker",
}


# ------------------------------------------------------------------ what the template grants


Grant = tuple[frozenset[str], frozenset[str]]  # (actions, resources as logical names / patterns)


def _resource_name(value: Any) -> str:
    """``!GetAtt Table.Arn`` -> "Table"; ``!Sub ${Table.Arn}/index/due`` -> "Table/index/due"."""
    if isinstance(value, str):
        return value
    if "GetAtt" in value:
        return str(value["GetAtt"]).split(".")[0]
    if "Ref" in value:
        return str(value["Ref"])
    if "Sub" in value:
        text = value["Sub"] if isinstance(value["Sub"], str) else value["Sub"][0]
        text = re.sub(r"\$\{(\w+)\.Arn\}", r"\1", text)
        return re.sub(r"arn:\$\{AWS::Partition\}:ses:\$\{AWS::Region\}:\$\{AWS::AccountId\}:", "ses:", text)
    return repr(value)


def grants(logical_id: str) -> list[Grant]:
    template = load_template()
    props = template["Resources"][logical_id]["Properties"]
    out: list[Grant] = []
    for policy in props.get("Policies", []):
        if isinstance(policy, str):
            out.append((frozenset({f"managed:{policy}"}), frozenset({"*"})))
            continue
        for name, argument in policy.items():
            if name == "Statement":
                for statement in argument:
                    assert statement.get("Effect") == "Allow"
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    resources = statement["Resource"] if isinstance(statement["Resource"], list) \
                        else [statement["Resource"]]
                    out.append((frozenset(actions), frozenset(_resource_name(r) for r in resources)))
            else:
                table = _resource_name(argument["TableName"])
                out.append((frozenset(POLICY_TEMPLATES[name]), frozenset({table, f"{table}/index/*"})))
    tracing = props.get("Tracing", template.get("Globals", {}).get("Function", {}).get("Tracing"))
    if tracing == "Active":
        out.append((frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                               "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"}), frozenset({"*"})))
    return out


def is_granted(action: str, resource: str, granted: list[Grant]) -> bool:
    for actions, resources in granted:
        if action in actions and any(r == "*" or r == resource or (r.endswith("/*") and resource.startswith(r[:-1]))
                                     for r in resources):
            return True
    return False


# ------------------------------------------------------------------ what the code uses


@pytest.fixture(scope="module")
def used() -> dict[str, set[tuple[str, str]]]:
    """function -> {(IAM action, resource)} seen while its real flows ran."""
    calls: dict[str, set[tuple[str, str]]] = defaultdict(set)
    current = {"function": ""}

    def record(event_name: str, params: dict[str, Any] | None = None, **_: Any) -> None:
        # before-parameter-build.<service>.<Operation>: params are the API parameters
        _, service, operation = event_name.split(".", 2)
        if not current["function"] or service not in SERVICE_PREFIX:
            return
        action = ACTION_OF.get((service, operation), f"{SERVICE_PREFIX[service]}:{operation}")
        params = params or {}
        if service == "dynamodb" and operation == "TransactWriteItems":
            for item in params.get("TransactItems", []):
                for kind, request in item.items():
                    table = request["TableName"]
                    calls[current["function"]].add((TRANSACT_ACTIONS[kind], LOCAL_NAMES.get(table, table)))
        elif service == "dynamodb":
            tables = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", {}))
            for table in tables:
                resource = LOCAL_NAMES.get(table, table)
                if params.get("IndexName"):
                    resource += f"/index/{params['IndexName']}"
                calls[current["function"]].add((action, resource))
        elif service == "sqs":
            queue = str(params.get("QueueUrl", "")).rsplit("/", 1)[-1]
            calls[current["function"]].add((action, LOCAL_NAMES.get(queue, queue)))
        elif service == "s3":
            bucket = str(params.get("Bucket", ""))
            key = params.get("Key")
            resource = LOCAL_NAMES.get(bucket, bucket) + (f"/{key}" if key is not None else "")
            calls[current["function"]].add((action, resource))
        else:
            calls[current["function"]].add((action, "ses"))

    with running_feed_server() as server, EmbeddedBackend(
        extra_env={"EARSHOT_ALLOWED_HOSTS": ",".join(server.authorities),
                   # discovery searches a loopback fake of Apple's directory
                   "EARSHOT_APPLE_SEARCH_URL": server.url("/search"), "EARSHOT_APPLE_CALLS_PER_MINUTE": "60000"}
    ) as stack:
        session = boto3._get_default_session()
        session._session.get_component("event_emitter").register("before-parameter-build", record,
                                                                    unique_id="iam-recorder")
        runtime.reset()  # clients built from now on carry the hook
        try:
            def invoke(function: str, event: dict[str, Any]) -> Any:
                current["function"] = function
                try:
                    return stack.invoke(function, event)
                finally:
                    current["function"] = ""

            def drain(function: str, queue_url: str) -> None:
                # Receiving and deleting is the event source mapping's work, not the function's
                while (event := stack.receive_sqs_event(queue_url)) is not None:
                    response = invoke(function, event)
                    failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
                    stack.delete_messages(queue_url, event, keep=failed)

            _run_all_flows(stack, server, invoke, drain)
        finally:
            session._session.get_component("event_emitter").unregister("before-parameter-build",
                                                                      unique_id="iam-recorder")
    return dict(calls)


def _run_all_flows(stack: EmbeddedBackend, server: Any, invoke: Any, drain: Any) -> None:
    repo = runtime.store()
    now = datetime.now(UTC)
    repo.create_topic(Topic(slug="pipes", name="Pipes", query="pipes", created_at=now, updated_at=now))
    start, _ = week_window(previous_week(now))
    repo.replace_topic_matches("pipes", [MatchedEpisode(feed_id="f-1", episode_id="e-1", podcast="P", title="Pipes weekly",
                                              published=start + timedelta(days=1), reason="title")])
    # ingest: dispatcher -> worker (with topic matching) -> transcript worker
    repo.create_topic(Topic(slug="said", name="Said", query="transcript:pipes", created_at=now, updated_at=now))
    transcript = server.route("/p1.vtt", Serve(b"WEBVTT\n\n00:01.000 --> 00:02.000\nPipes, said aloud.\n",
                                               headers={"Content-Type": "text/vtt"}))
    body = (b"<?xml version='1.0'?><rss version='2.0' xmlns:podcast='https://podcastindex.org/namespace/1.0'>"
            b"<channel><title>P</title><item><title>Pipes news</title>"
            b"<guid>p1</guid><pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate>"
            b"<podcast:transcript url='" + transcript.encode() + b"' type='text/vtt'/></item></channel></rss>")
    add_feed(server.route("/p.xml", Serve(body)))
    invoke("dispatcher", {**sample_event("dispatcher_scheduled"), "force": True})
    drain("fetch_worker", stack.settings.fetch_queue_url)
    drain("transcript_worker", stack.settings.transcript_queue_url)
    assert [m.moment.start_seconds for m in repo.list_matches("said") if m.moment] == [1]
    # a topic added on the stack: its backfill fanned out to the backfill workers
    add_topic(repo, "more-pipes", name="More pipes", query="pipes", now=now,
              fan_out=runtime.backfill_queue().send_messages, segments=2)
    drain("backfill_worker", stack.env["BACKFILL_QUEUE_URL"])
    # api: pages, subscribe, confirm (GET page, POST)
    def api(method: str, path: str, *, body: str | None = None, query: dict[str, str] | None = None,
            form: bool = False) -> dict[str, Any]:
        event = sample_event("api_subscribe")
        event["rawPath"] = path
        event["requestContext"]["http"].update(method=method, path=path)
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
        event["headers"]["content-type"] = "application/x-www-form-urlencoded" if form else "application/json"
        event["body"] = body
        return invoke("api", event)

    api("GET", "/topics/pipes")
    api("GET", "/topics/pipes/feed.xml")
    address = "listener@example.com"  # the address in events/ses_bounce.json
    assert api("POST", "/subscriptions", body=json.dumps({"email": address, "topic": "pipes"}))["statusCode"] == 202
    drain("confirmations", stack.env["CONFIRMATION_QUEUE_URL"])  # the mail goes out after the answer
    token = _token_from_mail(address)
    api("GET", "/confirm", query={"token": token})
    assert api("POST", "/confirm", body=f"token={token}", form=True)["statusCode"] == 200
    # weekly digest: plan, send
    invoke("digest", sample_event("digest_scheduled"))
    drain("digest_sender", stack.env["DIGEST_QUEUE_URL"])
    # unsubscribe with the digest's token (GET page, POST), then a bounce event
    unsubscribe = _token_from_mail(address)
    api("GET", "/unsubscribe", query={"token": unsubscribe})
    api("POST", "/unsubscribe", body=f"token={unsubscribe}", form=True)
    assert api("POST", "/subscriptions", body=json.dumps({"email": address, "topic": "pipes"}))["statusCode"] == 202
    drain("confirmations", stack.env["CONFIRMATION_QUEUE_URL"])
    assert invoke("bounces", sample_event("ses_bounce"))["topics_changed"] == ["pipes"]
    # weekly discovery: a directory lists a new feed about pipes; the topic adds it by itself
    repo.save_topic(repo.get_topic("pipes").model_copy(update={"discover_auto_add": True, "discover_min_matches": 1}))
    found = server.route("/q.xml", Serve(body.replace(b"<title>P</title>", b"<title>Q</title>")))
    server.route("/search", FakeAppleSearch([Show(title="Pipe Dreams", feed_url=found, keywords=("pipes",))]))
    outcome = invoke("discovery", sample_event("discovery_scheduled"))
    pipes = next(t for t in outcome["topics"] if t["topic"] == "pipes")
    assert pipes["added"] == [found], outcome


def _token_from_mail(address: str) -> str:
    """The token in the newest mail to ``address`` (confirmation or digest)."""
    raw = [m.raw_data for m in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages if address in m.raw_data]
    message = email.message_from_string(raw[-1], policy=email.policy.default)
    match = re.search(r"token=([A-Za-z0-9_-]{43})", message.get_body(("plain",)).get_content())
    assert match
    return match[1]


# ------------------------------------------------------------------ the checks


def test_no_wildcard_actions_and_star_resources_only_where_aws_requires_them() -> None:
    for logical_id in FUNCTIONS:
        for actions, resources in grants(logical_id):
            for action in actions:
                assert action != "*" and not action.endswith(":*"), (logical_id, action)
                assert not action.startswith("managed:"), f"{logical_id}: managed policy {action} is not reviewable"
            if "*" in resources:
                unexplained = set(actions) - set(RESOURCE_STAR_REQUIRED)
                assert not unexplained, f"{logical_id}: Resource '*' for {sorted(unexplained)}"


def test_every_function_is_covered() -> None:
    functions = {k for k, v in load_template()["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions == set(FUNCTIONS)


# function -> why it is expected to fail (xfail strict); empty when every function is covered.
UNDER_PRIVILEGED: dict[str, str] = {}


@pytest.mark.parametrize("logical_id", [
    pytest.param(f, marks=pytest.mark.xfail(strict=True, reason=UNDER_PRIVILEGED[f])) if f in UNDER_PRIVILEGED else f
    for f in FUNCTIONS
])
def test_each_function_is_granted_everything_it_calls(used: dict[str, set[tuple[str, str]]], logical_id: str) -> None:
    calls = used.get(FUNCTIONS[logical_id], set())
    assert calls, f"no AWS calls recorded for {logical_id}: the flows did not exercise it"
    granted = grants(logical_id)
    missing = sorted((a, r) for a, r in calls if r != "ses" and not is_granted(a, r, granted))
    missing += sorted((a, r) for a, r in calls if r == "ses" and not any(a in acts for acts, _ in granted))
    assert missing == []


# Actions granted but never needed. DescribeTable/ConditionCheckItem/BatchGetItem come with
# the SAM templates and are harmless reads or conditions; what must not be granted unused is
# anything that writes, deletes or scans whole tables.
HARMLESS_EXTRAS = {"dynamodb:DescribeTable", "dynamodb:ConditionCheckItem", "dynamodb:BatchGetItem"}
# Needed on paths the recorded flows do not take (kept in any tightened policy).
NEEDED_ON_RARE_PATHS = {
    "DigestSenderFunction": {"dynamodb:DeleteItem"},  # release_claim after SES throttles a send
    "BounceFunction": {"dynamodb:GetItem"},  # get_subscriber after losing an optimistic-lock race
}
OVER_PRIVILEGED: dict[str, str] = {}  # function -> why (xfail strict); empty: every policy is tight


@pytest.mark.parametrize("logical_id", [
    pytest.param(f, marks=pytest.mark.xfail(strict=True, reason=OVER_PRIVILEGED[f])) if f in OVER_PRIVILEGED else f
    for f in FUNCTIONS
])
def test_no_function_is_granted_writes_or_scans_it_never_uses(
    used: dict[str, set[tuple[str, str]]], logical_id: str
) -> None:
    calls = used.get(FUNCTIONS[logical_id], set())
    used_actions = {(a, r.split("/index/")[0]) for a, r in calls}
    unused = set()
    for actions, resources in grants(logical_id):
        for action in actions - HARMLESS_EXTRAS - NEEDED_ON_RARE_PATHS.get(logical_id, set()):
            if not action.startswith("dynamodb:"):
                continue
            for resource in resources:
                table = resource.split("/index/")[0]
                if (action, table) not in used_actions:
                    unused.add((action, table))
    assert sorted(unused) == []


# ------------------------------------------------------------------ secrets

SECRET_PATTERNS = {
    "aws access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN (RSA |EC |OPENSSH |DSA |ENCRYPTED )?PRIVATE KEY-----"),
    "aws secret key": re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*['\"]?(?!testing\b)[A-Za-z0-9/+]{30,}"),
    "password literal": re.compile(r"(?i)\bpass(word|wd)\b\s*[=:]\s*['\"][^'\"\s]{4,}['\"]"),
    "slack/github token": re.compile(r"\b(xox[abpr]-[0-9A-Za-z-]{10,}|gh[pousr]_[0-9A-Za-z]{36})\b"),
}


def _repository_files() -> Iterator[Any]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    for name in listed:
        path = REPO_ROOT / name
        if path.is_file() and path.suffix not in {".png", ".jpg", ".gif", ".ico", ".gz", ".mp3"} \
                and path.stat().st_size < 2_000_000:
            yield path


def test_no_secrets_in_code_or_template() -> None:
    findings = []
    for path in _repository_files():
        if path.resolve() == Path(__file__).resolve():
            continue  # this file spells the patterns
        text = path.read_text(errors="ignore")
        for what, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                findings.append(f"{path.relative_to(REPO_ROOT)}: {what}: {match.group(0)[:24]}...")
    assert findings == []


def test_template_has_no_secret_parameters_and_no_signing_key() -> None:
    template = load_template()
    for name in template.get("Parameters", {}):
        assert not re.search(r"(?i)secret|password|token|key", name), f"parameter {name} looks like a secret"
    # Tokens are random and stored only as SHA-256 hashes (earshot.mail.tokens): no signing key
    # exists, so none needs SSM SecureString / Secrets Manager.
    text = (REPO_ROOT / "template.yaml").read_text()
    assert "SecretString" not in text and "NoEcho" not in text
    from earshot.settings import Settings

    # The one secret Earshot holds is a third party's: the Podcast Index API secret. Deployed
    # it is read from the SSM SecureString the discovery function is granted (under
    # /earshot/), so the template never sets it or the key.
    assert [f for f in Settings.model_fields if "secret" in f or "signing" in f] == ["podcastindex_secret"]
    assert "EARSHOT_PODCASTINDEX_SECRET" not in text and "EARSHOT_PODCASTINDEX_KEY" not in text
    assert template["Parameters"]["PodcastIndexParameter"]["AllowedPattern"].startswith("^(/earshot/")
