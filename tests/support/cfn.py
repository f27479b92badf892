"""template.yaml as CloudFormation will see it: expanded by the SAM translator offline.

``sam validate --lint`` lints the template *before* the SAM transform, so anything the
transform generates (roles, schedules, the HTTP API's body and stage, event source
mappings) and every reference between generated and written resources goes unchecked.
:func:`expand` runs the same translator SAM runs in CloudFormation (samtranslator, the
``AWS::Serverless-2016-10-31`` transform) without an AWS account:

- local ``CodeUri`` / ``ContentUri`` become ``s3://`` URIs, as ``sam package`` makes them;
- managed policy names resolve from a fixed table (the real loader lists IAM policies);
- the boto3 session only supplies a region (samtranslator reads it; no call is made).

:func:`dependency_graph` and :func:`find_cycle` are the check CloudFormation makes when
it orders resources (a Ref, GetAtt, Sub reference or DependsOn is an edge).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from cfnlint.decode.decode import decode_str
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
REGION = "us-east-1"
PSEUDO = {"AWS::Region": REGION, "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
          "AWS::StackName": "earshot", "AWS::URLSuffix": "amazonaws.com"}
# The managed policies SAM may attach, name -> ARN (what IAM ListPolicies would answer).
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}"
    for name, path in {
        "AWSLambdaBasicExecutionRole": "service-role/AWSLambdaBasicExecutionRole",
        "AWSXrayWriteOnlyAccess": "AWSXrayWriteOnlyAccess",
        "AWSLambdaSQSQueueExecutionRole": "service-role/AWSLambdaSQSQueueExecutionRole",
        "AWSLambdaDynamoDBExecutionRole": "service-role/AWSLambdaDynamoDBExecutionRole",
        "AWSLambdaKinesisExecutionRole": "service-role/AWSLambdaKinesisExecutionRole",
    }.items()
}


def load(path: Path) -> dict[str, Any]:
    """A CloudFormation/SAM YAML file in long form (``!Ref x`` -> ``{"Ref": "x"}``)."""
    template, errors = decode_str(path.read_text())
    if errors or template is None:
        raise ValueError(f"{path}: {errors}")
    return json.loads(json.dumps(template))  # plain dicts and strs (drop cfn-lint's node types)


def expand(path: Path, parameters: dict[str, str]) -> dict[str, Any]:
    """The template after the SAM transform, with ``parameters`` for those without defaults."""
    template = copy.deepcopy(load(path))
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://earshot-artifacts/{name}.zip"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    return translator.translate(template, parameter_values={**PSEUDO, **parameters},
                                get_managed_policy_map=lambda: MANAGED_POLICIES)


# ------------------------------------------------------------------ references


def references(value: Any) -> Iterator[str]:
    """Logical ids (and pseudo parameters) a template value refers to."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                if isinstance(target, str):
                    yield target
            elif key == "Fn::Sub":
                text, variables = (inner, {}) if isinstance(inner, str) else (inner[0], inner[1])
                for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                    if name not in variables:
                        yield name.split(".")[0]
                yield from references(variables)
            else:
                yield from references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from references(inner)


def dependency_graph(template: dict[str, Any]) -> dict[str, set[str]]:
    """Resource -> the resources it needs to exist first."""
    resources = template["Resources"]
    graph: dict[str, set[str]] = {}
    for name, resource in resources.items():
        needs = {r for r in references({k: v for k, v in resource.items() if k != "DependsOn"}) if r in resources}
        depends_on = resource.get("DependsOn", [])
        needs |= set([depends_on] if isinstance(depends_on, str) else depends_on)
        graph[name] = needs
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One dependency cycle (``[a, b, ..., a]``), or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def depends_on(graph: dict[str, set[str]], node: str, target: str) -> bool:
    """Whether ``node`` needs ``target`` directly or through others."""
    seen, todo = set(), [node]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt == target:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


# What moto 5's CloudFormation does not model: it skips these types (with a warning) and
# still reports CREATE_COMPLETE. Everything else in the stack is created for real.
MOTO_UNMODELLED = {
    "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Stage", "AWS::CloudWatch::Alarm",
    "AWS::S3::BucketPolicy", "AWS::SES::ConfigurationSet", "AWS::SES::ConfigurationSetEventDestination",
    "AWS::SNS::Subscription", "AWS::Scheduler::Schedule", "AWS::Scheduler::ScheduleGroup", "AWS::XRay::SamplingRule",
}
