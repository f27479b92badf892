"""The subscription flow end to end, as a person does it: ``earshot serve`` (the real
command, in a subprocess) and headless Debian Chromium driven by Playwright.

A database with the sample feeds ingested and the sample topics defined; the server on a
free loopback port, its public base URL left to default (where it listens). In the
browser: the topic page's form subscribes; the confirmation mail (the outbox's .eml)
links to a page whose GET confirms nothing and whose button does; ``earshot digest run``
mails a digest whose RFC 8058 one-click POST unsubscribes one reader, and whose
unsubscribe link, clicked in the mail's HTML, unsubscribes another; a later digest run
mails nobody.

Every request goes to the server this test starts: the browser context aborts any request
for another host (and the test fails if there was one); httpx ignores proxy settings.
"""

from __future__ import annotations

import io
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from earshot.mail.digest import iso_week
from earshot.mail.subscriptions import address_hash
from earshot_local.cli.digest import CHROMIUM
from earshot_local.cli.ingest import add_feeds, read_feed_list, run_cycle
from earshot_local.cli.topics import demo_step as define_sample_topics
from earshot_local.functions import REPO_ROOT
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import LocalSettings
from earshot_local.sqlite_store import SqliteStore
from tests.support.local_mode import link_in, mails, outbox

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} absent (apt-get install -y chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright absent (pip install -e '.[dev]')")

SLUG = "mlp-finance"
TOPIC_NAME = "MLPs (master limited partnerships)"
# Debian's Chromium, never a downloaded build; nothing in the background phones home.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--no-proxy-server"]
LOOPBACK = {"localhost", "127.0.0.1", "[::1]", "::1"}
TIMEOUT_S = 60


# ------------------------------------------------------------------ the database
@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample feeds ingested from their files (no HTTP) and the sample topics defined,
    as ``earshot demo`` does, without the demo's subscriber and mails."""
    folder = tmp_path_factory.mktemp("served")
    db = folder / "earshot.db"
    with LocalRuntime(LocalSettings(EARSHOT_DB=db, EARSHOT_OUTBOX=folder / "outbox")) as local:
        add_feeds(local.store, read_feed_list(REPO_ROOT / "samples" / "feeds.txt").urls, test_fetch=False,
                  out=io.StringIO())
        report = run_cycle(local, 1, check_all=True, concurrency=4)
        assert report.new_episodes > 0, report
        define_sample_topics(local.store, folder / "pages")
    return db


def news_weeks(db: Path, slug: str = SLUG) -> list[str]:
    """ISO weeks with at least one matched episode, newest first."""
    store = SqliteStore(db)
    try:
        return sorted({iso_week(m.published) for m in store.list_matches(slug) if m.published}, reverse=True)
    finally:
        store.close()


def status_of(db: Path, address: str, slug: str = SLUG) -> str:
    store = SqliteStore(db)  # its own connection: the server's process writes, WAL lets us read
    try:
        sub = store.get_subscriber(address_hash(address), slug)
        return sub.status if sub else "none"
    finally:
        store.close()


# ------------------------------------------------------------------ earshot, the command
def earshot_command(*args: str) -> list[str]:
    script = shutil.which("earshot", path=str(Path(sys.executable).parent))
    if script:
        return [script, *args]
    return [sys.executable, "-c", "import sys; from earshot_local.cli import main; sys.exit(main(sys.argv[1:]))",
            *args]


def command_env() -> dict[str, str]:
    """This environment without Earshot's settings: the defaults are what is tested."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EARSHOT_")}


def earshot(*args: str) -> str:
    result = subprocess.run(earshot_command(*args), capture_output=True, text=True, timeout=TIMEOUT_S,
                            env=command_env(), check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@dataclass
class Served:
    url: str
    outbox: Path
    process: subprocess.Popen[str]


@pytest.fixture
def served(database: Path) -> Iterator[Served]:
    """``earshot --db DB serve --port 0``: the URL and outbox come from the line it prints."""
    process = subprocess.Popen(earshot_command("--db", str(database), "serve", "--host", "127.0.0.1", "--port", "0"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=command_env())
    lines: queue.Queue[str] = queue.Queue()
    errors: list[str] = []
    # Both pipes are read as they fill, so the server never blocks on a full one.
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    reading_errors = threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True)  # type: ignore[arg-type]
    reading_errors.start()
    try:
        first = lines.get(timeout=TIMEOUT_S)
        match = re.match(r"Earshot on (http://\S+)\s+\(database (.+); mail to (.+)\)$", first.strip())
        assert match, first
        yield Served(url=match[1], outbox=Path(match[3]), process=process)
    finally:
        process.send_signal(signal.SIGTERM)  # a graceful stop: waitress ends, the database closes
        try:
            process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    reading_errors.join(TIMEOUT_S)
    stderr = "".join(errors)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr


# ------------------------------------------------------------------ the browser
@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Person:
    """One browser context (own cookies and history): someone at their own computer."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context()
        self.context.set_default_timeout(TIMEOUT_S * 1000)
        self.elsewhere: list[str] = []
        self.context.route("**/*", self._loopback_only)
        self.page = self.context.new_page()

    def _loopback_only(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("about:", "data:")) or urlsplit(url).hostname in LOOPBACK:
            route.continue_()
        else:
            self.elsewhere.append(url)
            route.abort()

    def heading(self) -> str:
        return str(self.page.locator("h1").inner_text())


def confirmed_via_browser(person: Person, served: Served, database: Path, address: str) -> None:
    """Subscribe on the topic page, open the mailed link, press the button."""
    page = person.page
    page.goto(f"{served.url}/topics/{SLUG}")
    page.get_by_label("Get the new episodes by email, once a week").fill(address)
    page.get_by_role("button", name="Subscribe").click()
    sync_api.expect(page.locator("h1")).to_have_text("Check your inbox")
    assert page.url == f"{served.url}/subscriptions"
    # The API queued the request; the server's confirmation thread mails it a moment later
    deadline = time.monotonic() + 20
    while not mails(served.outbox, address, "confirm") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status_of(database, address) == "pending"

    (confirmation,) = mails(served.outbox, address, "confirm")
    assert TOPIC_NAME in confirmation["Subject"]
    link = link_in(confirmation, "confirm")
    assert link.startswith(f"{served.url}/confirm?token=")
    assert f'href="{link}"' in confirmation.get_body(("html",)).get_content()

    page.goto(link)
    assert person.heading() == "Confirm your subscription"
    assert status_of(database, address) == "pending"  # opening the link (a GET) confirms nothing
    page.get_by_role("button", name="Confirm subscription").click()
    sync_api.expect(page.locator("h1")).to_have_text("You're subscribed")
    assert page.url == f"{served.url}/confirm"
    assert status_of(database, address) == "confirmed"


def digest_for(served: Served, address: str) -> EmailMessage:
    (digest,) = mails(served.outbox, address, "digest")
    return digest


def run_digest(database: Path, week: str) -> dict[str, Any]:
    return json.loads(earshot("--db", str(database), "digest", "run", "--week", week))


# ------------------------------------------------------------------ the flow
def test_subscribe_confirm_digest_unsubscribe_in_chromium(database: Path, served: Served, browser: Any) -> None:
    alice, bob = "alice@example.com", "bob@example.com"
    assert served.url.startswith("http://localhost:")  # the default: where it listens

    # The topic page, from the server, links to this server
    with httpx.Client(trust_env=False, timeout=TIMEOUT_S) as client:
        page = client.get(f"{served.url}/topics/{SLUG}")
        assert page.status_code == 200 and f"Podcasts about {TOPIC_NAME}" in page.text
        assert f'href="{served.url}/topics/{SLUG}/feed.xml"' in page.text
        assert client.get(f"{served.url}/topics/{SLUG}/feed.xml").status_code == 200

    # Alice and Bob each subscribe on the page and confirm from the mail, in their own browser
    people = {address: Person(browser) for address in (alice, bob)}
    for address, person in people.items():
        confirmed_via_browser(person, served, database, address)

    # The weekly job, for the newest week with news: one digest each
    newest, older = news_weeks(database)[:2]
    planned = run_digest(database, newest)
    assert (planned["topics_queued"], planned["recipients"], planned["failed_batches"]) == ([SLUG], 2, 0)
    digests = {address: digest_for(served, address) for address in (alice, bob)}
    for digest in digests.values():
        assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe_url = re.search(r"<(https?://[^>]+)>", digest["List-Unsubscribe"])[1]  # type: ignore[index]
        assert unsubscribe_url.startswith(f"{served.url}/unsubscribe?token=")
        html = digest.get_body(("html",)).get_content()
        assert f'href="{served.url}/topics/{SLUG}"' in html and f'href="{unsubscribe_url}"' in html

    # Alice's mail client does the RFC 8058 one-click POST to the List-Unsubscribe URL
    one_click = re.search(r"<(https?://[^>]+)>", digests[alice]["List-Unsubscribe"])[1]  # type: ignore[index]
    with httpx.Client(trust_env=False, timeout=TIMEOUT_S) as client:
        response = client.post(one_click, data={"List-Unsubscribe": "One-Click"})
    assert (response.status_code, response.text) == (200, "Unsubscribed.")
    assert status_of(database, alice) == "unsubscribed"

    # Bob reads the digest and clicks its Unsubscribe link: a page with a button
    bob_page = people[bob].page
    bob_page.set_content(digests[bob].get_body(("html",)).get_content())
    bob_page.get_by_role("link", name="Unsubscribe").click()
    sync_api.expect(bob_page.locator("h1")).to_have_text("Unsubscribe")
    assert bob_page.url.startswith(f"{served.url}/unsubscribe?token=")
    assert status_of(database, bob) == "confirmed"  # the GET changed nothing
    bob_page.get_by_role("button", name="Unsubscribe").click()
    sync_api.expect(bob_page.locator("h1")).to_have_text("You're unsubscribed")
    assert status_of(database, bob) == "unsubscribed"

    # The next digest (another week with news, which nobody got yet) mails nobody
    before = len(outbox(served.outbox))
    planned = run_digest(database, older)
    assert planned["recipients"] == 0 and planned["send_batches"] == 0
    assert len(outbox(served.outbox)) == before

    for person in people.values():
        assert person.elsewhere == [], "the browser asked for a page off this machine"
        person.context.close()


def test_confirm_and_unsubscribe_pages_refuse_a_bad_token_in_the_browser(served: Served, browser: Any) -> None:
    person = Person(browser)
    for path in ("confirm", "unsubscribe"):
        response = person.page.goto(f"{served.url}/{path}?token={'A' * 43}")
        assert response is not None and response.status == 400
        assert "invalid or has expired" in person.page.content()
    person.context.close()
