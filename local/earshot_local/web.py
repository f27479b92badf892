"""``earshot serve``: the public HTTP API on this machine, through the same route code
the Lambda runs (``earshot.web.api.app``), served by waitress (a production WSGI server).

Each WSGI request becomes the API Gateway HTTP API (payload 2.0) event the Lambda would
receive, and the resolver's answer becomes the WSGI response. Nothing here parses HTTP.
:class:`LocalServer` binds waitress, installs the local runtime with links pointing at
where it listens, and can be started and stopped in-process (the tests do).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from earshot.settings import Settings
from earshot.web import api
from earshot_local.functions import LambdaContext
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import LocalSettings, domain_settings

MAX_BODY_BYTES = 1024 * 1024  # API Gateway's payload limit is 10 MB; subscriptions are tiny
TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml",
              "application/rss+xml")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

# Powertools' resolver keeps the request being handled on a class attribute
# (``BaseRouter.current_event``): a Lambda execution environment handles one event at a
# time, so that is safe there. waitress runs requests on several threads, so they pass
# through the resolver one at a time; reading bodies and writing answers stays parallel.
_RESOLVE_LOCK = threading.Lock()


def _wsgi_str(value: str) -> str:
    """PEP 3333 hands over the path and query as bytes decoded as latin-1; the API sees
    UTF-8 text, as API Gateway passes it."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _content_length(environ: dict[str, Any]) -> int | None:
    """The body's length (waitress sets it for chunked bodies too); None if unreadable."""
    raw = (environ.get("CONTENT_LENGTH") or "0").strip()
    return int(raw) if raw.isdigit() else None


def http_api_event(environ: dict[str, Any]) -> dict[str, Any]:
    """The HTTP API v2 event for one WSGI request (whose body is at most MAX_BODY_BYTES)."""
    method = environ["REQUEST_METHOD"]
    path = _wsgi_str(environ.get("PATH_INFO") or "/")
    query = _wsgi_str(environ.get("QUERY_STRING", ""))
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    length = _content_length(environ) or 0
    if length:
        headers["content-length"] = str(length)
    raw = environ["wsgi.input"].read(length) if length else b""
    is_text = raw == b"" or headers.get("content-type", "").lower().startswith(TEXT_TYPES)
    try:
        body, is_b64 = (raw.decode("utf-8"), False) if is_text else (base64.b64encode(raw).decode(), True)
    except UnicodeDecodeError:  # declared text but not UTF-8: passed on base64-encoded, for the route to refuse
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
        # HTTP API v2 joins repeated parameters with commas.
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if "cookie" in headers:
        event["cookies"] = [c.strip() for c in headers["cookie"].split(";") if c.strip()]
    return event


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """WSGI entry point: one request through the API's resolver."""
    length = _content_length(environ)
    if length is None:
        return _plain(start_response, 400, "Bad Content-Length.")
    if length > MAX_BODY_BYTES:
        # Refused unread (waitress already holds it), as API Gateway refuses payloads over its limit.
        return _plain(start_response, 413, f"Request body over {MAX_BODY_BYTES} bytes.")
    event = http_api_event(environ)
    with _RESOLVE_LOCK:
        response = api.app.resolve(event, LambdaContext(function_name="earshot-api-local"))
    status = int(response.get("statusCode", 500))
    body = response.get("body") or ""
    payload = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode("utf-8")
    headers = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers += [(key, str(v)) for v in values]
    headers += [("Set-Cookie", c) for c in response.get("cookies") or []]
    if status in (204, 304):
        # No content, and no Content-Length: on a 304 it would have to give the length of
        # the 200 it stands for (RFC 9110 §8.6), which the client already holds.
        start_response(f"{status} {_reason(status)}", [(k, v) for k, v in headers if k.lower() != "content-length"])
        return []
    if not any(k.lower() == "content-length" for k, _ in headers):
        headers.append(("Content-Length", str(len(payload))))
    start_response(f"{status} {_reason(status)}", headers)
    return [payload]


def _plain(start_response: StartResponse, status: int, message: str) -> list[bytes]:
    payload = message.encode()
    start_response(f"{status} {_reason(status)}", [("Content-Type", "text/plain; charset=utf-8"),
                                                   ("Content-Length", str(len(payload)))])
    return [payload]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def base_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches a server listening on host:port."""
    if host in ("127.0.0.1", "0.0.0.0", "::", "::1", "localhost", ""):  # noqa: S104 - naming only
        return f"http://localhost:{port}"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


CONFIRMATION_POLL_S = 0.5


def confirmation_worker(local: LocalRuntime, stop: threading.Event, *, poll_s: float = CONFIRMATION_POLL_S) -> None:
    """As deployed, ``POST /subscriptions`` only queues the request; this plays the queue's
    event source: until ``stop`` is set, every ``poll_s`` seconds it hands the queued
    requests to the confirmation mailer (``functions/confirmations``)."""
    while not stop.wait(poll_s):
        try:
            local.send_confirmations()
        except Exception:  # keep serving; the request stays queued for the next round
            logging.getLogger(__name__).exception("confirmation mailer failed")


class LocalServer:
    """waitress on ``host:port`` (port 0: any free one) serving :func:`wsgi_app` on the local
    runtime. The socket is bound on construction, so the public base URL (the links in
    pages and mails) is where it really listens unless ``EARSHOT_PUBLIC_BASE_URL`` is set
    (e.g. behind a reverse proxy); it is recorded in the database, so mails that other
    commands send (``earshot digest run``) link here too. A context manager; :meth:`run` blocks until Ctrl-C or
    :meth:`stop`, :meth:`start` runs it on a thread."""

    def __init__(self, local: LocalSettings, *, host: str = "127.0.0.1", port: int = 3000, threads: int = 8,
                 settings: Settings | None = None) -> None:
        import waitress

        self._server: Any = waitress.create_server(
            wsgi_app, host=host, port=port, threads=threads, ident="earshot",
            # waitress buffers a whole body before the app sees it. Its own cap sits above the
            # app's so that the app's 413, sent after the body was read, is what clients get
            # (waitress closes on a body past its cap before reading it, and the client may
            # see a reset instead of the answer).
            max_request_body_size=2 * MAX_BODY_BYTES,
        )
        # Requests wait for the resolver one at a time (see _RESOLVE_LOCK), so waitress's
        # "Task queue depth is N" warning is expected under load, not news.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        self._thread: threading.Thread | None = None
        self._stop_confirmations = threading.Event()
        try:
            listen = getattr(self._server, "effective_listen", None) or [
                (self._server.effective_host, self._server.effective_port)]
            self.port: int = int(listen[0][1])
            settings = settings or domain_settings()
            if "public_base_url" not in settings.model_fields_set:
                settings = settings.with_(public_base_url=base_url(host, self.port))
            self.runtime = LocalRuntime(local, settings=settings)
        except BaseException:
            self._close_sockets()
            raise
        try:
            self.runtime.record_served_url(self.url)
        except BaseException:
            self.runtime.close()
            self._close_sockets()
            raise

    @property
    def url(self) -> str:
        """The public base URL: what links in pages and mails start with."""
        return self.runtime.settings.public_base_url.rstrip("/")

    def run(self) -> None:
        worker = threading.Thread(target=confirmation_worker, args=(self.runtime, self._stop_confirmations),
                                  name="earshot-confirmations", daemon=True)
        worker.start()
        try:
            self._server.run()  # waitress stops on KeyboardInterrupt by itself
        finally:
            self._stop_confirmations.set()
            worker.join(timeout=5)

    def start(self) -> "LocalServer":
        self._thread = threading.Thread(target=self.run, name="earshot-serve", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every socket from inside waitress's loop (asyncore is not thread-safe; a
        trigger wakes it), wait for the loop to end, then stop the worker threads."""
        self._stop_confirmations.set()
        if self._thread is not None and self._thread.is_alive():
            wake = self._any_trigger()
            if wake is not None:
                wake.pull_trigger(self._close_sockets)
            self._thread.join(timeout)
        else:
            self._close_sockets()
        self._server.task_dispatcher.shutdown(timeout=timeout)

    def close(self) -> None:
        self.stop()
        self.runtime.close()

    def __enter__(self) -> "LocalServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _socket_map(self) -> dict[int, Any]:
        return getattr(self._server, "map", None) or self._server._map

    def _any_trigger(self) -> Any:
        from waitress.server import BaseWSGIServer

        return next((d.trigger for d in list(self._socket_map().values()) if isinstance(d, BaseWSGIServer)), None)

    def _close_sockets(self) -> None:
        from waitress import wasyncore

        wasyncore.close_all(self._socket_map(), ignore_all=True)
