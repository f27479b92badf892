"""The topic page's players in a real browser (headless Debian Chromium, driven by
Playwright over its own protocol; Playwright never downloads a browser here).

The page comes from the API's route (``earshot serve``'s WSGI app) on one loopback
address, the episodes' audio from a loopback server on another (a different host, as a
podcast CDN is), whose request log shows what the browser fetched and when.
"""

from __future__ import annotations

import io
import time
import urllib.request
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest

from earshot.models import MatchedEpisode, Topic, TranscriptMoment
from earshot.topics.pages import CONTENT_SECURITY_POLICY
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import domain_settings
from tests.support.api_server import serving_api
from tests.support.feedserver import FeedServer, Ranged

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # the dev extras are not installed
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} absent (apt-get install -y chromium)"),
    pytest.mark.skipif(sync_playwright is None, reason="playwright not installed (pip install -e '.[dev]')"),
]

SLUG = "pipes"
AUDIO_SECONDS = 6
MOMENT_SECONDS = 3
# Reports Content-Security-Policy violations the page causes (an init script runs before
# the page's own and is not subject to its policy).
WATCH_CSP = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


def silent_wav(seconds: int, rate: int = 8000) -> bytes:
    """A mono 8-bit PCM WAV of silence (what any browser decodes, no codec involved)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(rate)
        wav.writeframes(b"\x80" * (rate * seconds))  # 8-bit PCM is unsigned: 128 is silence
    return out.getvalue()


@dataclass
class Site:
    page_url: str
    audio: FeedServer
    audio_urls: list[str]


@pytest.fixture
def site(feed_server: FeedServer) -> Iterator[Site]:
    wav = silent_wav(AUDIO_SECONDS)
    # The audio lives on 127.0.0.2, the page on 127.0.0.1: another host, as a podcast CDN is.
    for name in ("moment.wav", "plain.wav"):
        feed_server.route(f"/{name}", Ranged(wav, content_type="audio/wav"))
    moment_url, plain_url = feed_server.url("/moment.wav", alt=True), feed_server.url("/plain.wav", alt=True)
    with serving_api() as base, LocalRuntime(settings=domain_settings().with_(public_base_url=base)) as local:
        now = datetime.now(UTC)
        local.store.create_topic(Topic(slug=SLUG, name="Pipes", query="pipes", created_at=now, updated_at=now))
        local.store.replace_topic_matches(SLUG, [
            MatchedEpisode(feed_id="f1", episode_id="m", podcast="Pod M", title="Pipes, with a moment",
                           published=now - timedelta(days=1), duration_seconds=AUDIO_SECONDS, audio_url=moment_url,
                           audio_type="audio/wav",
                           moment=TranscriptMoment(start_seconds=MOMENT_SECONDS, text="pipes")),
            MatchedEpisode(feed_id="f2", episode_id="p", podcast="Pod P", title="Pipes, plain",
                           published=now - timedelta(days=2), duration_seconds=AUDIO_SECONDS, audio_url=plain_url,
                           audio_type="audio/wav"),
            MatchedEpisode(feed_id="f3", episode_id="x", podcast="Pod X", title="Pipes, no playable audio",
                           published=now - timedelta(days=3), audio_url="javascript:alert(1)",
                           link="https://pod-x.example/episode"),
        ])
        yield Site(page_url=f"{base}/topics/{SLUG}", audio=feed_server, audio_urls=[moment_url, plain_url])


@pytest.fixture
def page() -> Iterator[Page]:
    assert sync_playwright is not None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_init_script(WATCH_CSP)
            yield context.new_page()
        finally:
            browser.close()


def _audio_requests(site: Site) -> dict[str, int]:
    return {path: len(site.audio.requests_to(path)) for path in ("/moment.wav", "/plain.wav")}


def _tab_to(page: Page, selector: str, max_presses: int = 60) -> None:
    """Press Tab until ``selector`` holds keyboard focus (a shadow-DOM control inside a
    media element counts as focus on the element)."""
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement === document.querySelector(s)", selector):
            return
    raise AssertionError(f"keyboard focus never reached {selector} in {max_presses} Tab presses")


def _wait(page: Page, what: str, expression: str, arg: Any = None, timeout_ms: int = 10_000) -> None:
    """Wait until ``expression`` (a function of ``arg``) is true in the page, else fail
    saying what did not happen, where the page is, and what its policy blocked."""
    try:
        page.wait_for_function(expression, arg=arg, timeout=timeout_ms)
    except PlaywrightError as exc:
        violations = page.evaluate("window.__violations || []")
        raise AssertionError(f"{what}: not within {timeout_ms} ms (page {page.url}, CSP violations "
                             f"{violations}): {exc.message.splitlines()[0]}") from None


def test_players_load_nothing_until_played_and_work_from_the_keyboard(site: Site, page: Page) -> None:
    response = page.goto(site.page_url)
    assert response is not None and response.ok
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY

    # One native player per playable episode, in page order; none for the javascript: one.
    players = page.eval_on_selector_all(
        "audio", "els => els.map(a => [a.getAttribute('src'), a.preload, a.controls, a.readyState])")
    assert players == [[url, "none", True, 0] for url in site.audio_urls]
    assert "0:06" in page.inner_text("article:first-of-type .player")  # the length, before any load

    # preload="none": nothing fetched from the audio host, even after the page settled.
    page.wait_for_load_state("networkidle")
    time.sleep(0.5)
    assert _audio_requests(site) == {"/moment.wav": 0, "/plain.wav": 0}

    # Keyboard: Tab reaches the first player; Space on it plays, and time advances.
    _tab_to(page, "audio")
    page.keyboard.press("Space")
    _wait(page, "the first player plays after Space",
          "() => { const a = document.querySelector('audio'); return a && !a.paused && a.currentTime > 0.3; }")
    assert page.evaluate("document.querySelector('audio').readyState") >= 1  # HAVE_METADATA or better
    assert _audio_requests(site)["/moment.wav"] >= 1
    page.keyboard.press("Space")  # and pauses it again
    _wait(page, "the first player pauses after Space", "() => document.querySelector('audio')?.paused")

    # "Play from 0:03", also from the keyboard: the card's own player resumes at the moment.
    _tab_to(page, "a.play-from")
    assert page.inner_text("a.play-from") == f"Play from 0:0{MOMENT_SECONDS}"
    page.keyboard.press("Enter")
    _wait(page, "Play from starts the card's player at the moment",
          "(t) => { const a = document.querySelector('audio'); return a && !a.paused && a.currentTime >= t; }",
          arg=MOMENT_SECONDS)
    assert page.url == site.page_url  # the control stayed in the page

    # The player that was never pressed still fetched nothing, and the page broke no policy.
    assert _audio_requests(site)["/plain.wav"] == 0
    assert page.evaluate("document.querySelectorAll('audio')[1].readyState") == 0
    assert page.evaluate("window.__violations") == []


def test_feed_discovery_link_parses_with_feedparser(site: Site, page: Page) -> None:
    page.goto(site.page_url)
    href = page.get_attribute('link[rel="alternate"][type="application/rss+xml"]', "href")
    assert href == page.get_attribute("a.follow-link", "href") and page.is_visible("a.follow-link")
    assert page.inner_text("a.follow-link") == "Follow in your podcast app"
    with urllib.request.urlopen(href, timeout=10) as response:  # noqa: S310 - loopback only
        parsed = feedparser.parse(response.read())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert [e.enclosures[0].href for e in parsed.entries] == site.audio_urls
