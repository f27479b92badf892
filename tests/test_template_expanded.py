"""template.yaml as CloudFormation sees it, and what a new account imposes.

``sam validate --lint`` checks the SAM template before its transform; CloudFormation
checks the result. This module expands template.yaml with samtranslator (offline, see
``tests/support/cfn.py``) and checks the expanded stack:

- cfn-lint (its Python API) with every error rule (E*), parameters' conditions included;
- a dependency graph built from Ref/GetAtt/Sub/DependsOn is acyclic (cfn-lint's E3004,
  checked here independently);
- what a fresh account refuses or punishes: reserved concurrency, hard-coded physical
  names (a second stack collides), log groups that never expire, alarms that page nobody;
- the deployment's own contracts: alarms cover every function, queue and schedule; mail
  permissions are scoped to the sending identity; links survive the API; the digest
  week follows the schedule's time zone;
- moto's CloudFormation creates the stack (with the resource types it does not model
  listed, so a gap is explicit; docs/deploy.md names them, tests/test_deploy_docs.py).

Part of ``make lint`` and ``make test``; a few seconds.
"""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from earshot.settings import Settings
from tests.support.cfn import (
    MOTO_UNMODELLED,
    TEMPLATE,
    dependency_graph,
    depends_on,
    expand,
    find_cycle,
    load,
    references,
)

# Answers for the parameters that have no default (the ones `sam deploy --guided` must ask).
REQUIRED_ANSWERS = {
    "SenderAddress": "Earshot <digest@example.org>",
    "SenderIdentity": "example.org",
    "UnsubscribeMailto": "unsubscribe@example.org",
    "AlarmEmail": "ops@example.org",
}



@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return load(TEMPLATE)


@pytest.fixture(scope="module", params=["execute-api", "custom-domain"])
def expanded(request: pytest.FixtureRequest) -> dict[str, Any]:
    answers = dict(REQUIRED_ANSWERS)
    if request.param == "custom-domain":
        answers["PublicBaseUrl"] = "https://earshot.example.org"
    return expand(TEMPLATE, answers)


@pytest.fixture(scope="module")
def stack(expanded: dict[str, Any]) -> dict[str, Any]:
    return expanded["Resources"]


def of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r.get("Properties", {}) for name, r in resources.items() if r["Type"] == kind}


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for policy in role.get("Policies", []):
        out += policy["PolicyDocument"]["Statement"]
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ CloudFormation's view


def test_cfn_lint_finds_no_errors_in_the_expanded_stack(expanded: dict[str, Any]) -> None:
    matches = lint(json.dumps(expanded), config=ManualArgs(regions=["us-east-1"]))
    errors = [f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_the_expanded_stack_has_no_dependency_cycle(expanded: dict[str, Any]) -> None:
    assert find_cycle(dependency_graph(expanded)) is None


def test_the_api_function_never_depends_on_the_api(stack: dict[str, Any], expanded: dict[str, Any]) -> None:
    # The API's generated body references the function (its integration URI); the reverse
    # edge (e.g. an execute-api URL in the function's environment) closes a cycle.
    graph = dependency_graph(expanded)
    assert depends_on(graph, "HttpApi", "ApiFunction")
    assert not depends_on(graph, "ApiFunction", "HttpApi")


def test_cycle_check_catches_the_execute_api_url_in_the_api_function(source: dict[str, Any], tmp_path: Path) -> None:
    # The check itself: giving the API function the execute-api URL again (as a Globals
    # entry once did for every function) is caught
    broken = json.loads(json.dumps(source))
    broken["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]["EARSHOT_PUBLIC_BASE_URL"] = {
        "Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    path = tmp_path / "broken-template.json"
    path.write_text(json.dumps(broken))
    cycle = find_cycle(dependency_graph(expand(path, REQUIRED_ANSWERS)))
    assert cycle is not None and {"ApiFunction", "HttpApi"} <= set(cycle)


# ------------------------------------------------------------------ a new account


def test_no_reserved_concurrency(stack: dict[str, Any]) -> None:
    # A new account may have a concurrency limit of 10, all of which must stay unreserved
    for name, props in of_type(stack, "AWS::Lambda::Function").items():
        assert "ReservedConcurrentExecutions" not in props, name


PHYSICAL_NAMES = {
    "AWS::DynamoDB::Table": "TableName", "AWS::SQS::Queue": "QueueName", "AWS::SNS::Topic": "TopicName",
    "AWS::Lambda::Function": "FunctionName", "AWS::Scheduler::Schedule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name", "AWS::Events::Rule": "Name", "AWS::IAM::Role": "RoleName",
    "AWS::CloudWatch::Alarm": "AlarmName", "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SES::ConfigurationSet": "Name", "AWS::ApiGatewayV2::Api": "Name", "AWS::KMS::Alias": "AliasName",
}


def test_no_hard_coded_physical_names(stack: dict[str, Any]) -> None:
    # A fixed name makes a second stack in the account (staging, a rename) collide; a
    # name is allowed only when it carries the stack's name.
    fixed = []
    for name, resource in stack.items():
        key = PHYSICAL_NAMES.get(resource["Type"])
        value = resource.get("Properties", {}).get(key) if key else None
        if value is not None and "AWS::StackName" not in set(references(value)):
            fixed.append(f"{name}.{key} = {value!r}")
    assert fixed == []


def test_every_function_logs_to_its_own_group_with_retention(stack: dict[str, Any]) -> None:
    groups = of_type(stack, "AWS::Logs::LogGroup")
    used = []
    for name, props in of_type(stack, "AWS::Lambda::Function").items():
        target = props.get("LoggingConfig", {}).get("LogGroup")
        # a Ref makes the group a dependency: created (with retention) before the function
        # runs, so Lambda never creates an unmanaged, never-expiring /aws/lambda/<name>
        assert isinstance(target, dict) and target.get("Ref") in groups, f"{name} has no managed log group"
        assert groups[target["Ref"]].get("RetentionInDays") == {"Ref": "LogRetentionInDays"}, name
        used.append(target["Ref"])
    assert len(used) == len(set(used)) == len(of_type(stack, "AWS::Lambda::Function"))


def test_every_alarm_pages_the_alarm_topic(stack: dict[str, Any]) -> None:
    alarms = of_type(stack, "AWS::CloudWatch::Alarm")
    assert alarms
    for name, props in alarms.items():
        assert props.get("AlarmActions") == [{"Ref": "AlarmTopic"}], name


# ------------------------------------------------------------------ alarms that page


def _alarmed(stack: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(namespace, metric, dimension value as a logical id or literal) for every alarm."""
    out = set()
    for props in of_type(stack, "AWS::CloudWatch::Alarm").values():
        dims = props.get("Dimensions") or [{"Value": ""}]
        for dim in dims:
            value = dim["Value"]
            target = next(iter(references(value)), None) if isinstance(value, dict) else value
            out.add((props["Namespace"], props["MetricName"], target or ""))
    return out


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(stack: dict[str, Any]) -> None:
    topic = stack["AlarmTopic"]["Properties"]
    key_ref = next(iter(references(topic["KmsMasterKeyId"])))
    key = stack[key_ref]
    assert key["Type"] == "AWS::KMS::Key"  # not alias/aws/sns, whose policy CloudWatch is not in
    grants = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
              if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"]
    assert grants and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(as_list(grants[0]["Action"]))
    assert key["Properties"]["EnableKeyRotation"] is True


def test_alarm_email_is_required_and_always_subscribed(source: dict[str, Any], stack: dict[str, Any]) -> None:
    assert "Default" not in source["Parameters"]["AlarmEmail"]
    (subscription,) = [r for r in stack.values() if r["Type"] == "AWS::SNS::Subscription"]
    assert "Condition" not in subscription
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_alarms_cover_every_function_queue_schedule_and_ses_reputation(stack: dict[str, Any]) -> None:
    alarmed = _alarmed(stack)
    for function in of_type(stack, "AWS::Lambda::Function"):
        assert ("AWS/Lambda", "Errors", function) in alarmed, function
    for queue in ("FetchQueue", "DigestQueue", "ConfirmationQueue", "TranscriptQueue", "BackfillQueue"):
        assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", queue) in alarmed, queue
    dead_letter_queues = {next(iter(references(p["RedrivePolicy"]["deadLetterTargetArn"])))
                          for p in of_type(stack, "AWS::SQS::Queue").values() if "RedrivePolicy" in p}
    dead_letter_queues |= {next(iter(references(p["Target"]["DeadLetterConfig"]["Arn"])))
                           for p in of_type(stack, "AWS::Scheduler::Schedule").values()}
    assert dead_letter_queues == {"FetchDLQ", "DigestDLQ", "ConfirmationDLQ", "ScheduleDLQ", "TranscriptDLQ", "BackfillDLQ"}
    for queue in dead_letter_queues:
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue) in alarmed, queue
    groups = {next(iter(references(p["GroupName"]))) for p in of_type(stack, "AWS::Scheduler::Schedule").values()}
    assert groups == {"ScheduleGroup"}
    for metric in ("InvocationDroppedCount", "TargetErrorCount"):
        assert ("AWS/Scheduler", metric, "ScheduleGroup") in alarmed, metric
    for metric in ("Reputation.BounceRate", "Reputation.ComplaintRate"):
        assert ("AWS/SES", metric, "") in alarmed, metric
    assert ("Earshot", "DigestSendingUnavailable", "earshot") in alarmed


# ------------------------------------------------------------------ the sender


SENDER_OK = ["digest@example.org", "Earshot <digest@example.org>", "Earshot Digest <d.x+1@mail.example.co.uk>"]
SENDER_BAD = ["", "Earshot <digest@example.com", "digest@", "<digest@example.org>", "a@b", "x y@example.org"]


def test_sender_address_has_no_default_and_is_validated(source: dict[str, Any]) -> None:
    for name in ("SenderAddress", "SenderIdentity", "UnsubscribeMailto", "AlarmEmail"):
        assert "Default" not in source["Parameters"][name], f"{name} must be asked for, never assumed"
    pattern = re.compile(source["Parameters"]["SenderAddress"]["AllowedPattern"])
    assert [s for s in SENDER_OK if not pattern.fullmatch(s)] == []
    assert [s for s in SENDER_BAD if pattern.fullmatch(s)] == []
    identity = re.compile(source["Parameters"]["SenderIdentity"]["AllowedPattern"])
    assert identity.fullmatch("example.org") and identity.fullmatch("digest@example.org")
    assert not identity.fullmatch("*") and not identity.fullmatch("example")
    for name, answer in REQUIRED_ANSWERS.items():
        assert re.fullmatch(source["Parameters"][name]["AllowedPattern"], answer), name


def test_ses_permissions_are_scoped_to_the_sending_identity(stack: dict[str, Any]) -> None:
    identity_arn = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderIdentity}"
    seen = set()
    for name, role in of_type(stack, "AWS::IAM::Role").items():
        for statement in statements(role):
            ses = [a for a in as_list(statement["Action"]) if a.startswith("ses:")]
            if not ses or ses == ["ses:GetAccount"]:
                continue  # GetAccount has no resource type; AWS requires "*"
            resources = [r.get("Fn::Sub") if isinstance(r, dict) else r for r in as_list(statement["Resource"])]
            identities = [r for r in resources if ":identity/" in str(r)]
            assert identities == [identity_arn], f"{name}: {ses} on {resources}"
            seen.update((name, a) for a in ses)
    assert ("DigestFunctionRole", "ses:GetEmailIdentity") in seen  # the pre-run check
    assert {("ConfirmationFunctionRole", "ses:SendEmail"), ("DigestSenderFunctionRole", "ses:SendEmail")} <= seen
    assert ("ApiFunctionRole", "ses:SendEmail") not in seen  # the API mails nothing: it queues the request


# ------------------------------------------------------------------ fetch deadline


def test_worker_timeout_leaves_room_for_one_whole_check(stack: dict[str, Any]) -> None:
    from earshot_local.functions import load_function_module as _load_function_module

    worker = of_type(stack, "AWS::Lambda::Function")["FetchWorkerFunction"]
    margin = _load_function_module("fetch_worker").START_MARGIN_S
    assert worker["Timeout"] > Settings().total_timeout_s + margin


# ------------------------------------------------------------------ durability


def test_schedules_have_a_dead_letter_queue_and_generated_names(stack: dict[str, Any]) -> None:
    schedules = of_type(stack, "AWS::Scheduler::Schedule")
    assert len(schedules) == 3  # dispatch, digest, discovery
    for name, props in schedules.items():
        assert "Name" not in props, f"{name}: OmitName, or a second stack collides"
        assert references(props["Target"]["DeadLetterConfig"]["Arn"]).__next__() == "ScheduleDLQ"
        role = stack[next(iter(references(props["Target"]["RoleArn"])))]
        # Scheduler delivers dead letters with the schedule's execution role
        sends = [s for s in statements(role["Properties"]) if "sqs:SendMessage" in as_list(s["Action"])]
        assert sends and next(iter(references(sends[0]["Resource"]))) == "ScheduleDLQ", name


def test_table_is_protected_from_deletion(stack: dict[str, Any]) -> None:
    table = stack["Table"]
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_digest_queue_rides_out_ses_throttling_before_the_dlq(stack: dict[str, Any]) -> None:
    queue = stack["DigestQueue"]["Properties"]
    # each throttled retry waits a visibility timeout: ten of them span more than 12 hours
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 10
    assert queue["RedrivePolicy"]["maxReceiveCount"] * queue["VisibilityTimeout"] >= 12 * 3600


# ------------------------------------------------------------------ public API


def test_api_has_access_logs_and_throttles_subscribing_harder_than_reading(stack: dict[str, Any]) -> None:
    (stage,) = of_type(stack, "AWS::ApiGatewayV2::Stage").values()
    destination = next(iter(references(stage["AccessLogSettings"]["DestinationArn"])))
    assert stack[destination]["Type"] == "AWS::Logs::LogGroup"
    assert stack[destination]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    default, subscribe = stage["DefaultRouteSettings"], stage["RouteSettings"]["POST /subscriptions"]
    assert subscribe["ThrottlingRateLimit"] < default["ThrottlingRateLimit"]
    assert subscribe["ThrottlingBurstLimit"] < default["ThrottlingBurstLimit"]


def test_links_use_public_base_url_when_set(source: dict[str, Any], stack: dict[str, Any]) -> None:
    assert source["Parameters"]["PublicBaseUrl"]["Default"] == ""
    for name in ("DigestFunction", "DigestSenderFunction"):
        value = stack[name]["Properties"]["Environment"]["Variables"]["EARSHOT_PUBLIC_BASE_URL"]
        assert value["Fn::If"][0] == "HasPublicBaseUrl" and value["Fn::If"][1] == {"Ref": "PublicBaseUrl"}, name


# ------------------------------------------------------------------ least privilege


def test_no_role_gets_the_account_wide_sqs_poller_policy(stack: dict[str, Any]) -> None:
    for name, role in of_type(stack, "AWS::IAM::Role").items():
        assert not [a for a in role.get("ManagedPolicyArns", []) if "SQSQueueExecutionRole" in str(a)], name


def test_queue_pollers_are_scoped_to_their_queue(stack: dict[str, Any]) -> None:
    mappings = of_type(stack, "AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 5
    for props in mappings.values():
        function = next(iter(references(props["FunctionName"])))
        queue = next(iter(references(props["EventSourceArn"])))
        role = stack[next(iter(references(stack[function]["Properties"]["Role"])))]["Properties"]
        polls = [s for s in statements(role) if "sqs:ReceiveMessage" in as_list(s["Action"])]
        assert polls, function
        for statement in polls:
            assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= set(statement["Action"])
            assert [next(iter(references(r))) for r in as_list(statement["Resource"])] == [queue], function


def test_api_may_delete_only_token_items(stack: dict[str, Any]) -> None:
    role = stack["ApiFunctionRole"]["Properties"]
    deletes = [s for s in statements(role) if "dynamodb:DeleteItem" in as_list(s["Action"])]
    assert len(deletes) == 1 and as_list(deletes[0]["Action"]) == ["dynamodb:DeleteItem"]
    assert deletes[0]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["TOKEN#*"]}}


# ------------------------------------------------------------------ digest week


def test_digest_week_uses_the_schedules_time_zone(stack: dict[str, Any]) -> None:
    (weekly,) = [p for p in of_type(stack, "AWS::Scheduler::Schedule").values() if "ScheduleExpressionTimezone" in p]
    zone = stack["DigestFunction"]["Properties"]["Environment"]["Variables"]["DIGEST_TIMEZONE"]
    assert zone == weekly["ScheduleExpressionTimezone"] == {"Ref": "DigestTimezone"}


# ------------------------------------------------------------------ moto's CloudFormation


def test_moto_cloudformation_creates_the_expanded_stack(expanded: dict[str, Any]) -> None:
    import boto3
    from moto import mock_aws

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    with mock_aws(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="earshot-artifacts")
        for key in re.findall(r'"S3Key": "([^"]+)"', json.dumps(expanded)):  # what `sam package` uploads
            s3.put_object(Bucket="earshot-artifacts", Key=key, Body=code.getvalue())
        cfn = boto3.client("cloudformation", region_name="us-east-1")
        # Tracing on, so the stack holds its one resource that only comes with it (the sampling rule).
        answers = {**REQUIRED_ANSWERS, "TracingMode": "Active"}
        cfn.create_stack(StackName="earshot", TemplateBody=json.dumps(expanded), Capabilities=["CAPABILITY_IAM"],
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in answers.items()])
        status = cfn.describe_stacks(StackName="earshot")["Stacks"][0]["StackStatus"]
        created = {r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName="earshot")[
            "StackResourceSummaries"]}
        groups = {g["logGroupName"]: g.get("retentionInDays")
                  for g in boto3.client("logs", region_name="us-east-1").describe_log_groups()["logGroups"]}
    assert status == "CREATE_COMPLETE"
    unmodelled = set()
    for warning in caught:
        match = re.search(r"Tried to parse (\S+) but it's not supported", str(warning.message))
        if match:
            unmodelled.add(match[1])
    assert unmodelled == MOTO_UNMODELLED  # a change here: update docs/deploy.md's list too
    modelled = {n for n, r in expanded["Resources"].items() if r["Type"] not in MOTO_UNMODELLED}
    assert modelled <= set(created)
    assert groups == {f"/aws/lambda/earshot/{f}": 30 for f in of_type(expanded["Resources"], "AWS::Lambda::Function")
                      } | {"/aws/apigateway/earshot/HttpApi": 30}
