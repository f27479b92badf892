"""The API's routes (``earshot serve``'s WSGI app) over a real loopback socket, for tests
that need a browser or another HTTP client to load Earshot's pages.

Served by the standard library's WSGI server (threaded), not waitress: waitress has no
way to stop from another thread without racing its select loop, and what these tests
exercise is the app, which is the same under either."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from earshot_local.web import wsgi_app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log on stderr."""


@contextmanager
def serving_api(host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the API on a free port of ``host``; yields its base URL. The runtime the
    routes use is whatever the test installed (``LocalRuntime``)."""
    server = make_server(host, 0, wsgi_app, server_class=_Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="earshot-api",
                              daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
