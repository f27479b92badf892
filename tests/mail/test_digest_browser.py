"""The HTML digest rendered by a real browser engine (headless Debian Chromium) is not blank."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from earshot.mail.digest import render_digest
from earshot.models import Topic
from earshot.topics.stats import BestPodcast, EpisodeCard, TopicReport
from earshot_local.cli.digest import CHROMIUM, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} absent (apt-get install -y chromium)"),
]


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """(width, height, raw scanlines) of an 8-bit RGB/RGBA PNG, stdlib only."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_digest_html_renders_with_visible_content(tmp_path: Path) -> None:
    card = EpisodeCard(podcast="Pipeline Pod", title="MLPs rally", guid="g", episode_id="e", feed_id="f",
                       published=datetime(2025, 1, 8, tzinfo=UTC), duration_seconds=1800, has_transcript=True,
                       summary="Midstream names led.", listen_url="https://cdn.example/a.mp3",
                       reason="MLPs in title", also_in=1)
    report = TopicReport(podcasts=2, episodes=9, duplicates_folded=0, avg_duration_seconds=1800,
                         cadence="1 episode a week", latest=card.published, per_year={"2024": 4, "2025": 5},
                         best_podcasts=[BestPodcast(podcast="Pipeline Pod", feed_id="f", episodes_last_12_months=9,
                                                    latest=None)], latest_episodes=[card])
    digest = render_digest(Topic(slug="mlp", name="MLPs", query="MLP"), report, week="2025-W02",
                           base_url="https://api.example", domain="earshot.example")
    html_path = tmp_path / "digest.html"
    html_path.write_text(digest.personalize("https://api.example/unsubscribe?token=x")[1], encoding="utf-8")

    png = screenshot(html_path, tmp_path / "digest.png", height=900)

    width, height, pixels = _png_pixels(png)
    assert (width, height) == (680, 900)
    # Not blank: many distinct byte values (text, bars, badges), not one background colour.
    assert len(set(pixels[::7])) > 20


def test_preview_screenshot_is_the_whole_mail_and_no_blank_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from earshot_local.cli import main
    from earshot_local.cli.digest import page_height
    from earshot_local.cli.topics import FINANCE_QUERY

    monkeypatch.chdir(tmp_path)
    samples = sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "samples" / "feeds").glob("*.xml"))
    assert main(["feeds", "add", *samples]) == 0
    assert main(["run"]) == 0
    assert main(["topics", "add", "mlp-finance", "--name", "MLPs", "--query", FINANCE_QUERY]) == 0
    assert main(["digest", "preview", "mlp-finance", "--out", "preview", "--screenshot"]) == 0
    assert "preview/digest.png" in capsys.readouterr().out

    width, height, _ = _png_pixels(tmp_path / "preview" / "digest.png")
    content = page_height(tmp_path / "preview" / "digest.html", width=680)
    # The image is the mail, top to bottom: as tall as its layout, not a fixed 2400 px
    # window that leaves most of it empty.
    assert width == 680 and 300 < content < 2400 and abs(height - content) <= 2
