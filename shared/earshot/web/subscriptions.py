"""HTTP routes: subscribe, confirm, unsubscribe (logic in ``earshot.mail.subscriptions``).

    POST /subscriptions   {email, topic} as JSON (or a form post) -> 202, same answer always;
                          the request is queued and the confirmation mailed after the answer
    GET  /confirm         page with a button; changes nothing (mail scanners prefetch GETs)
    POST /confirm         confirms (token in the form body or the query string)
    GET  /unsubscribe     page with a button; changes nothing
    POST /unsubscribe     unsubscribes; ``List-Unsubscribe=One-Click`` bodies (RFC 8058 §3.2)
                          get a bare 200 at once

Tokens travel in the query string of mailed links, so every page is sent with
``Referrer-Policy: no-referrer`` (the token never leaks to another site) and
``Cache-Control: no-store``; ``frame-ancestors 'none'`` stops another site from framing
the buttons (clickjacking). Domain errors become statuses in ``earshot.web.api``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field, ValidationError

from earshot import runtime, templating
from earshot.mail import subscriptions
from earshot.models import TokenPurpose
from earshot.settings import Settings
from earshot.web.links import public_base_url

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}
PENDING_MESSAGE = ("If that address can receive mail, a confirmation link is on its way. "
                   "Open it within 48 hours to start your weekly digest.")


class SubscribeRequest(BaseModel):
    """POST /subscriptions body."""

    email: str = Field(min_length=1, max_length=320)
    topic: str = Field(min_length=1, max_length=64)


def _now() -> datetime:
    return runtime.now()


def _is_form() -> bool:
    content_type = router.current_event.headers.get("content-type", "")
    return content_type.startswith("application/x-www-form-urlencoded")


def _form() -> dict[str, str]:
    if not _is_form():
        return {}
    try:
        body = router.current_event.decoded_body or ""
    except ValueError:  # a body that is not UTF-8 (or not base64): no form fields, not a 500
        return {}
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _request_info(source: str) -> subscriptions.RequestInfo:
    http = router.current_event.request_context.http
    return subscriptions.RequestInfo(source=source, ip=http.source_ip, user_agent=http.user_agent)


def _token() -> str:
    return _form().get("token") or router.current_event.get_query_string_value("token", "") or ""


def _page(title: str, message: str, *, status: int = 200, **form: Any) -> Response[str]:
    body = templating.render("page.html.j2", title=title, message=message,
                             form_action=form.get("action"), token=form.get("token", ""),
                             button=form.get("button", ""))
    return Response(status_code=status, content_type=content_types.TEXT_HTML, body=body, headers=PAGE_HEADERS)


def _settings() -> Settings:
    """The settings with ``public_base_url`` resolved for this request (``earshot.web.links``):
    the configured base, else the domain the request arrived on."""
    settings = runtime.settings()
    base = public_base_url(settings, router.current_event.request_context.domain_name)
    return settings if base == settings.public_base_url else settings.with_(public_base_url=base)


def _url(path: str) -> str:
    return _settings().public_base_url + path


# Route functions carry no return annotation: with enable_validation, Powertools would
# try to build a response schema from ``Response``.


@router.post("/subscriptions")
def create_subscription():
    try:
        if _is_form():
            payload: Any = _form()
        else:
            payload = json.loads(router.current_event.decoded_body or "null")
        request = SubscribeRequest.model_validate(payload)
    except (ValueError, ValidationError, RecursionError):  # RecursionError: JSON nested thousands deep
        return Response(status_code=400, content_type=content_types.APPLICATION_JSON,
                        body=json.dumps({"error": "bad_request",
                                         "message": 'Send JSON like {"email": "you@example.com", "topic": "<slug>"}.'}))
    # Queued, never mailed here: the answer, and the time it takes, are the same for every
    # address whatever its state and whatever SES would say (earshot.mail.subscriptions).
    subscriptions.request_subscription(
        runtime.store(), runtime.confirmation_queue(), _settings(),
        email=request.email, topic_slug=request.topic,
        request=_request_info("web-form" if _is_form() else "api"), now=_now(),
    )
    if _is_form():
        return _page("Check your inbox", PENDING_MESSAGE, status=202)
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps({"status": "pending", "message": PENDING_MESSAGE}))


def _button_page(purpose: TokenPurpose, title: str, action: str, button: str) -> Response[str]:
    """The page a mailed link opens: it changes nothing (link scanners follow links), it
    shows a button whose POST does the change."""
    token = _token()
    record = subscriptions.check_token(runtime.store(), token, purpose, now=_now())
    verb = "start" if purpose == "confirm" else "stop"
    return _page(title, f"Press the button to {verb} your weekly Earshot digest about “{_topic_name(record.topic)}”.",
                 action=_url(action), token=token, button=button)


@router.get("/confirm")
def confirm_page():
    return _button_page("confirm", "Confirm your subscription", "/confirm", "Confirm subscription")


@router.post("/confirm")
def confirm():
    sub = subscriptions.confirm(runtime.store(), _token(), request=_request_info("confirm-page"), now=_now())
    return _page("You're subscribed",
                 f"Your first weekly digest about “{_topic_name(sub.topic)}” arrives next Monday. "
                 "Every digest has an unsubscribe link at the bottom.")


@router.get("/unsubscribe")
def unsubscribe_page():
    return _button_page("unsubscribe", "Unsubscribe", "/unsubscribe", "Unsubscribe")


@router.post("/unsubscribe")
def unsubscribe():
    form = _form()
    one_click = form.get("List-Unsubscribe") == "One-Click"
    sub = subscriptions.unsubscribe(runtime.store(), _token(),
                                    request=_request_info("one-click" if one_click else "unsubscribe-page"),
                                    now=_now())
    if one_click:
        # RFC 8058 §3.2: the mail client POSTs without a user watching; a plain 200 is all it reads.
        return Response(status_code=200, content_type=content_types.TEXT_PLAIN, body="Unsubscribed.")
    return _page("You're unsubscribed",
                 f"You will get no more digests about “{_topic_name(sub.topic)}”. "
                 "Changed your mind? Subscribe again from the topic page at any time.")


def _topic_name(slug: str) -> str:
    topic = runtime.store().get_topic(slug)
    return topic.name if topic else slug
