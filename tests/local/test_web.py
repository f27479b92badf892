"""``earshot serve`` over real HTTP: waitress on a loopback port, the WSGI adapter
(``earshot_local.web``) turning each request into the HTTP API v2 event the Lambda gets,
the API's routes on the local runtime (SQLite store, outbox mailer).

The server runs in this process on 127.0.0.1 with a port the OS picks; every request
goes to it and nowhere else (httpx with ``trust_env=False``: no proxy from the
environment). Whatever a request looks like, the answer is never a 5xx.
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from earshot.mail import subscriptions
from earshot.mail.subscriptions import address_hash
from earshot_local.settings import LocalSettings
from earshot_local.web import MAX_BODY_BYTES, LocalServer, base_url, http_api_event
from tests.support.local_mode import SLUG, TOPIC_NAME, link_in, mails, seed_topic

PAGE_HEADERS = ("cache-control", "referrer-policy", "content-security-policy", "x-content-type-options")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One server for the module, on a database with one topic."""
    db = tmp_path_factory.mktemp("serve") / "earshot.db"
    with pytest.MonkeyPatch.context() as env:
        env.delenv("EARSHOT_PUBLIC_BASE_URL", raising=False)  # links must follow the server
        server = LocalServer(LocalSettings(EARSHOT_DB=db), host="127.0.0.1", port=0, threads=4)
    with server:
        seed_topic(server.runtime.store)
        server.start()
        yield server


@pytest.fixture
def client(served: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{served.port}", trust_env=False, timeout=20) as c:
        yield c


def outbox_dir(served: LocalServer) -> Path:
    return served.runtime.local.outbox_dir


def settled(served: LocalServer) -> None:
    """Wait until the server's confirmation thread has handled every queued subscribe
    request (the API only queues them, as deployed)."""
    deadline = time.monotonic() + 20
    while served.runtime.confirmation_queue.depth() and time.monotonic() < deadline:
        time.sleep(0.05)


def status_of(served: LocalServer, address: str) -> str:
    settled(served)
    sub = served.runtime.store.get_subscriber(address_hash(address), SLUG)
    return sub.status if sub else "none"


def confirmation_link(served: LocalServer, client: httpx.Client, address: str) -> str:
    assert client.post("/subscriptions", json={"email": address, "topic": SLUG}).status_code == 202
    settled(served)
    return link_in(mails(outbox_dir(served), address, "confirm")[-1], "confirm")


# ------------------------------------------------------------------ where links point
def test_public_base_url_is_where_the_server_listens(served: LocalServer) -> None:
    assert served.url == f"http://localhost:{served.port}"
    assert served.runtime.settings.public_base_url == served.url


@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1", "http://localhost:3000"), ("0.0.0.0", "http://localhost:3000"), ("::1", "http://localhost:3000"),
    ("192.0.2.10", "http://192.0.2.10:3000"), ("2001:db8::1", "http://[2001:db8::1]:3000"),
    ("earshot.lan", "http://earshot.lan:3000"),
])
def test_base_url_names_the_listening_address(host: str, expected: str) -> None:
    assert base_url(host, 3000) == expected


# ------------------------------------------------------------------ topic page and feed
def test_topic_page_is_html_with_links_to_this_server(served: LocalServer, client: httpx.Client) -> None:
    response = client.get(f"/topics/{SLUG}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["server"] == "earshot"
    # httpx asks for gzip: the length is of the bytes on the wire, the content is inflated.
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) == response.num_bytes_downloaded < len(response.content)
    assert "Podcasts about MLPs &amp; midstream" in response.text and "MLPs, part 2" in response.text
    assert f'href="{served.url}/topics/{SLUG}/feed.xml"' in response.text
    assert f'action="{served.url}/subscriptions"' in response.text


def test_topic_feed_is_rss_with_links_to_this_server(served: LocalServer, client: httpx.Client) -> None:
    response = client.get(f"/topics/{SLUG}/feed.xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/rss+xml; charset=utf-8"
    rss = ElementTree.fromstring(response.content)
    assert rss.tag == "rss"
    assert rss.findtext("channel/link") == f"{served.url}/topics/{SLUG}"
    assert [i.findtext("title") for i in rss.iter("item")] == ["MLPs, part 2", "MLPs, part 1"]


@pytest.mark.parametrize("path", ["/topics/no-such-topic", "/topics/no-such-topic/feed.xml"])
def test_unknown_topic_is_404(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert (response.status_code, response.text) == (404, "no topic 'no-such-topic'")
    assert response.headers["content-type"].startswith("text/plain")


def test_path_is_read_as_utf8(client: httpx.Client) -> None:
    # WSGI hands the path over as latin-1 (PEP 3333); the API sees the UTF-8 text.
    response = client.get("/topics/caf%C3%A9")
    assert (response.status_code, response.text) == (404, "no topic 'café'")


# ------------------------------------------------------------------ subscribing
def test_subscribe_with_json(served: LocalServer, client: httpx.Client) -> None:
    response = client.post("/subscriptions", json={"email": "ada@example.com", "topic": SLUG})
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == "pending"
    assert status_of(served, "ada@example.com") == "pending"
    (mail,) = mails(outbox_dir(served), "ada@example.com", "confirm")
    assert TOPIC_NAME in mail["Subject"]
    assert link_in(mail, "confirm").startswith(f"{served.url}/confirm?token=")


def test_subscribe_with_a_form_answers_with_a_page(served: LocalServer, client: httpx.Client) -> None:
    response = client.post("/subscriptions", data={"email": "bo@example.com", "topic": SLUG})
    assert response.status_code == 202
    assert response.headers["content-type"].startswith("text/html")
    assert "Check your inbox" in response.text
    assert all(h in response.headers for h in PAGE_HEADERS)
    assert status_of(served, "bo@example.com") == "pending"
    assert len(mails(outbox_dir(served), "bo@example.com", "confirm")) == 1


@pytest.mark.parametrize("content, content_type", [
    (b"{not json", "application/json"),
    (b'{"email": "cy@example.com"}', "application/json"),
    (b"", "application/json"),
    (b"", ""),
    (b"\xff\xfe{\x00", "application/json"),                                    # not UTF-8
    (b"email=c\xe9@example.com&topic=mlp-finance", "application/x-www-form-urlencoded"),  # latin-1 form
    (b"email=cy%40example.com&topic=mlp-finance", "text/plain"),               # a form, mislabelled
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
    ('{"email": "zoë@example.com", "topic": "mlp-finance"}'.encode(), "application/json; charset=utf-8"),
    (b'{"email": "not-an-address", "topic": "mlp-finance"}', "application/json"),
], ids=["bad-json", "no-topic", "empty-json", "empty-untyped", "not-utf8-json", "latin1-form", "form-as-text",
        "binary", "non-ascii-local-part", "no-at-sign"])
def test_bad_subscribe_bodies_are_400(served: LocalServer, client: httpx.Client, content: bytes,
                                      content_type: str) -> None:
    before = sorted(outbox_dir(served).glob("*.eml"))
    response = client.post("/subscriptions", content=content, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert sorted(outbox_dir(served).glob("*.eml")) == before


def test_subscribe_to_an_unknown_topic_is_404(client: httpx.Client) -> None:
    response = client.post("/subscriptions", json={"email": "dee@example.com", "topic": "no-such-topic"})
    assert response.status_code == 404


# ------------------------------------------------------------------ query strings
def test_confirm_link_query_string(served: LocalServer, client: httpx.Client) -> None:
    link = confirmation_link(served, client, "eve@example.com")
    token = link.split("token=")[1]
    page = client.get(f"/confirm?token={token}")
    assert page.status_code == 200 and f'value="{token}"' in page.text and 'method="post"' in page.text
    assert f'action="{served.url}/confirm"' in page.text
    assert all(h in page.headers for h in PAGE_HEADERS)
    # HTTP API v2 joins a repeated parameter with commas: no longer a token
    assert client.get(f"/confirm?token={token}&token={token}").status_code == 400
    for query in ("", "?token=", "?token=%ZZ%ff", "?token=%00", f"?token={token}x", "?token=caf%C3%A9"):
        assert client.get(f"/confirm{query}").status_code == 400, query
    assert status_of(served, "eve@example.com") == "pending"  # GETs changed nothing
    # the confirmation POST may carry the token in the query string instead of the body
    assert client.post(f"/confirm?token={token}&utm_source=mail").status_code == 200
    assert status_of(served, "eve@example.com") == "confirmed"


def test_topic_page_ignores_unknown_query_parameters(client: httpx.Client) -> None:
    response = client.get(f"/topics/{SLUG}?utm_source=x&q=caf%C3%A9&flag&a=1&a=2")
    assert response.status_code == 200


def test_event_shape_is_http_api_v2() -> None:
    body = "email=a%40example.com".encode()
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/topics/caf\xc3\xa9", "SERVER_PROTOCOL": "HTTP/1.1",
        "QUERY_STRING": "a=1&a=2&b=&c=%C3%A9&d=x+y", "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost",
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "localhost:3000", "HTTP_USER_AGENT": "test/1", "HTTP_COOKIE": "x=1; y=2",
        "HTTP_X_FORWARDED_FOR": "203.0.113.7", "wsgi.input": io.BytesIO(body),
    }
    event = APIGatewayProxyEventV2(http_api_event(environ))
    assert (event.http_method, event.path, event.raw_query_string) == ("POST", "/topics/café", environ["QUERY_STRING"])
    assert event.query_string_parameters == {"a": "1,2", "b": "", "c": "é", "d": "x y"}
    assert event.cookies == ["x=1", "y=2"]
    assert event.headers["x-forwarded-for"] == "203.0.113.7"
    assert event.headers["content-type"] == "application/x-www-form-urlencoded"
    assert event.headers["content-length"] == str(len(body))
    assert (event.is_base64_encoded, event.decoded_body) == (False, "email=a%40example.com")
    assert event.request_context.http.user_agent == "test/1"
    assert event.request_context.domain_name == "localhost" and event.request_context.stage == "$default"

    binary = {**environ, "CONTENT_TYPE": "application/octet-stream", "CONTENT_LENGTH": "3",
              "wsgi.input": io.BytesIO(b"\x00\xff\x10")}
    raw = http_api_event(binary)
    assert raw["isBase64Encoded"] is True and base64.b64decode(raw["body"]) == b"\x00\xff\x10"


# ------------------------------------------------------------------ what is not an API route
@pytest.mark.parametrize("method, path", [
    ("HEAD", f"/topics/{SLUG}"), ("HEAD", "/"), ("GET", "/"), ("GET", "/nope"), ("GET", "/topics"),
    ("GET", "/topics/"), ("GET", f"/topics/{SLUG}/feed.xml/more"), ("GET", "/subscriptions"),
    ("DELETE", f"/topics/{SLUG}"), ("PUT", "/subscriptions"), ("PATCH", "/confirm"),
    ("OPTIONS", "/subscriptions"), ("POST", f"/topics/{SLUG}"), ("BREW", "/"),
    ("GET", "/%2e%2e/%2e%2e/etc/passwd"),
])
def test_unknown_paths_and_methods_get_what_the_api_answers(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    # Powertools answers 404 for a path or method no route has (API Gateway would too).
    assert response.status_code in (404, 405), (response.status_code, response.text)
    if method == "HEAD":
        assert response.content == b""
    else:
        assert response.json() == {"statusCode": 404, "message": "Not found"}


def test_malformed_http_is_a_4xx_from_waitress(served: LocalServer) -> None:
    for request in (
        b"POST /subscriptions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET /topics/" + SLUG.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    ):
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            sock.sendall(request)
            status_line = sock.makefile("rb").readline()
        assert status_line.split()[1][:1] == b"4", (request, status_line)


# ------------------------------------------------------------------ body size
def test_oversized_body_is_413_and_the_server_goes_on(client: httpx.Client) -> None:
    big = b'{"email": "' + b"a" * MAX_BODY_BYTES + b'"}'
    response = client.post("/subscriptions", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    chunked = client.post("/subscriptions", content=iter([b"a" * 65536] * 17),  # no length: chunked
                          headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert client.get(f"/topics/{SLUG}").status_code == 200


def test_body_at_the_limit_reaches_the_api(client: httpx.Client) -> None:
    response = client.post("/subscriptions", content=b"a" * MAX_BODY_BYTES, headers={"content-type": "application/json"})
    assert response.status_code == 400  # the route read it: not JSON


# ------------------------------------------------------------------ threads
def test_a_slow_request_keeps_its_own_event_while_others_are_served(
        served: LocalServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """waitress runs requests on several threads, and Powertools keeps the current request
    on a class attribute: requests answered while a slow one is in its route must not
    replace its event (or clear the resolver's context under it)."""
    started = threading.Event()
    normalize = subscriptions.normalize_email

    def slow_normalize(raw: str) -> str:
        if raw.startswith("slow"):
            started.set()
            time.sleep(0.5)
        return normalize(raw)

    monkeypatch.setattr(subscriptions, "normalize_email", slow_normalize)
    url = f"http://127.0.0.1:{served.port}"

    def slow_form_post() -> httpx.Response:
        with httpx.Client(trust_env=False, timeout=30) as own:
            return own.post(f"{url}/subscriptions", data={"email": "slow@example.com", "topic": SLUG})

    def quick_get(i: int) -> int:
        with httpx.Client(trust_env=False, timeout=30) as own:
            return own.get(f"{url}/topics/none-{i}").status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        slow = pool.submit(slow_form_post)
        assert started.wait(10)
        quick = list(pool.map(quick_get, range(3)))
        response = slow.result()
    assert quick == [404, 404, 404]
    assert response.status_code == 202 and "Check your inbox" in response.text  # the form's answer
    assert status_of(served, "slow@example.com") == "pending"
