"""Links the API builds (confirmation mail, confirm/unsubscribe forms, topic page and
RSS) use PublicBaseUrl when it is set, and otherwise the domain the request arrived on
(requestContext.domainName), never a URL baked in at deploy time: the API function
cannot know the execute-api URL without depending on the API that invokes it."""

from __future__ import annotations

import copy
import email
import email.policy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from earshot import runtime
from earshot.models import Topic
from tests.support.aws_stack import REGION, EmbeddedBackend, load_template, sample_event

SLUG = "pipes"
EXECUTE_API = "abc123.execute-api.us-east-1.amazonaws.com"  # events/api_*.json


def _stack(public_base_url: str) -> Iterator[EmbeddedBackend]:
    with EmbeddedBackend(extra_env={"EARSHOT_PUBLIC_BASE_URL": public_base_url}) as backend:
        now = datetime.now(UTC)
        runtime.store().create_topic(Topic(slug=SLUG, name="Pipes", query="pipes", created_at=now,
                                                updated_at=now))
        yield backend


@pytest.fixture
def deployed_without_domain() -> Iterator[EmbeddedBackend]:
    yield from _stack("")  # what template.yaml gives the API when PublicBaseUrl is empty


@pytest.fixture
def deployed_with_domain() -> Iterator[EmbeddedBackend]:
    yield from _stack("https://earshot.example.org")


def _event(name: str, *, domain: str = EXECUTE_API, **changes: object) -> dict:
    event = copy.deepcopy(sample_event(name))
    event["requestContext"]["domainName"] = domain
    event.update(changes)
    return event


def _confirmation_link(address: str) -> str:
    raw = [m.raw_data for m in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages if address in m.raw_data]
    text = email.message_from_string(raw[-1], policy=email.policy.default).get_body(("plain",)).get_content()
    return re.search(r"(https?://\S+/confirm\?token=[A-Za-z0-9_-]{43})", text)[1]


def _subscribe(stack: EmbeddedBackend, address: str, domain: str = EXECUTE_API) -> None:
    body = json.dumps({"email": address, "topic": SLUG})
    assert stack.invoke("api", _event("api_subscribe", domain=domain, body=body))["statusCode"] == 202
    stack.send_confirmations()  # the link is mailed after the answer, to the domain the request came to


def test_template_gives_the_api_only_the_parameter_never_the_execute_api_url() -> None:
    api = load_template()["Resources"]["ApiFunction"]["Properties"]
    assert api["Environment"]["Variables"]["EARSHOT_PUBLIC_BASE_URL"] == {"Ref": "PublicBaseUrl"}
    assert "HttpApi" not in json.dumps(load_template()["Globals"])


def test_without_a_domain_links_use_the_requests_own_domain(deployed_without_domain: EmbeddedBackend) -> None:
    stack = deployed_without_domain
    _subscribe(stack, "a@example.com")
    link = _confirmation_link("a@example.com")
    assert link.startswith(f"https://{EXECUTE_API}/confirm?token=")
    token = link.rsplit("=", 1)[1]
    page = stack.invoke("api", _event("api_confirm_get", queryStringParameters={"token": token},
                                      rawQueryString=f"token={token}"))
    assert f'action="https://{EXECUTE_API}/confirm"' in page["body"]
    feed = stack.invoke("api", _event("api_topic_feed", pathParameters={"slug": SLUG},
                                      rawPath=f"/topics/{SLUG}/feed.xml"))
    assert f"https://{EXECUTE_API}/topics/{SLUG}" in feed["body"]
    # a request that arrived on a custom domain mapped to the API gets that domain
    _subscribe(stack, "b@example.com", domain="podcasts.example.net")
    assert _confirmation_link("b@example.com").startswith("https://podcasts.example.net/confirm?token=")


def test_a_configured_public_base_url_wins(deployed_with_domain: EmbeddedBackend) -> None:
    _subscribe(deployed_with_domain, "c@example.com")
    assert _confirmation_link("c@example.com").startswith("https://earshot.example.org/confirm?token=")
