"""``earshot serve``: the public HTTP API on this machine, through the same route code
the Lambda runs (``earshot.web.api.app``), served by waitress (a production WSGI server).

Each WSGI request becomes the API Gateway HTTP API (payload 2.0) event the Lambda would
receive, and the resolver's answer becomes the WSGI response. Nothing here parses HTTP.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from earshot.web import api
from earshot_local.functions import LambdaContext

MAX_BODY_BYTES = 1024 * 1024  # API Gateway's payload limit is 10 MB; subscriptions are tiny
TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml",
              "application/rss+xml")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def http_api_event(environ: dict[str, Any]) -> dict[str, Any]:
    """The HTTP API v2 event for one WSGI request."""
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO") or "/"
    query = environ.get("QUERY_STRING", "")
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(min(length, MAX_BODY_BYTES)) if length else b""
    is_text = raw == b"" or headers.get("content-type", "").startswith(TEXT_TYPES)
    try:
        body, is_b64 = (raw.decode("utf-8"), False) if is_text else (base64.b64encode(raw).decode(), True)
    except UnicodeDecodeError:
        body, is_b64 = base64.b64encode(raw).decode(), True
    host = headers.get("host", environ.get("SERVER_NAME", "localhost"))
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "local", "apiId": "local", "domainName": host.split(":")[0],
            "domainPrefix": host.split(".")[0],
            "http": {"method": method, "path": path, "protocol": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                     "sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1"), "userAgent": headers.get("user-agent", "")},
            "requestId": uuid.uuid4().hex, "routeKey": "$default", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_b64,
        "body": body,
    }
    if query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if "cookie" in headers:
        event["cookies"] = [c.strip() for c in headers["cookie"].split(";") if c.strip()]
    return event


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """WSGI entry point: one request through the API's resolver."""
    response = api.app.resolve(http_api_event(environ), LambdaContext(function_name="earshot-api-local"))
    status = int(response.get("statusCode", 500))
    body = response.get("body") or ""
    payload = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode("utf-8")
    headers = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers += [(key, str(v)) for v in values]
    headers += [("Set-Cookie", c) for c in response.get("cookies") or []]
    if not any(k.lower() == "content-length" for k, _ in headers):
        headers.append(("Content-Length", str(len(payload))))
    start_response(f"{status} {_reason(status)}", headers)
    return [payload]


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
