"""Digest commands: ``digest preview SLUG --out DIR [--week W] [--screenshot]``, and the
digest part of ``earshot demo`` (:func:`demo_step`).

``preview`` renders a stored topic's digest from the local database exactly as the
digest function would, and writes
``digest.html``, ``digest.txt`` and a complete ``digest.eml`` (the raw message SES would
get, addressed to a sample recipient; its unsubscribe link is a placeholder that no
stored token matches). ``--screenshot`` renders digest.html with headless Chromium.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from earshot import runtime
from earshot.mail import tokens
from earshot.mail.delivery import digest_report, digest_skeleton, personal_digest
from earshot.mail.digest import iso_week, previous_week, render_digest, week_window
from earshot.topics.service import get_topic, topic_report
from earshot_local.cli.common import CliError, open_local
from earshot_local.cli.topics import DEMO_TOPICS
from earshot_local.functions import sample_event
from earshot_local.runtime import LocalRuntime

CHROMIUM = Path("/usr/bin/chromium")
PREVIEW_RECIPIENT = "you@example.com"
DEMO_RECIPIENT = "listener@example.com"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    digest = subparsers.add_parser("digest", help="weekly digest email tools")
    sub = digest.add_subparsers(dest="digest_command", required=True, metavar="SUBCOMMAND")
    preview = sub.add_parser("preview", help="write digest.html, digest.txt and digest.eml for a topic")
    preview.add_argument("slug", help="the topic (see `earshot topics list`)")
    preview.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory to write into")
    preview.add_argument("--week", help="ISO week like 2025-W02 (default: the week of the topic's newest episode)")
    preview.add_argument("--screenshot", action="store_true",
                         help="also write digest.png, the whole mail as headless Chromium draws it")
    preview.set_defaults(func=cmd_preview)
    run = sub.add_parser("run", help="send this week's digests now (the weekly job), into the outbox")
    run.add_argument("--week", help="ISO week like 2025-W02 (default: last week, as the schedule does)")
    run.set_defaults(func=cmd_run)


def cmd_preview(args: argparse.Namespace) -> int:
    if args.week:
        try:
            week_window(args.week)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    with open_local(args):
        repo = runtime.store()
        settings = runtime.settings()
        topic = get_topic(repo, args.slug)
        now = datetime.now(UTC)
        zone = settings.digest_zone
        latest = topic_report(repo, topic.slug, now=now, latest_limit=1).latest
        week = args.week or (iso_week(latest, zone) if latest else previous_week(now, zone))
        # The numbers the digest function would mail for that week (as of its end).
        report = digest_report(repo, topic.slug, week, settings, now=now)
        rendered = render_digest(topic, report, week=week, base_url=settings.public_base_url,
                                 domain=settings.sender_domain)
        # A placeholder token that no stored record matches: the preview unsubscribes nobody.
        token, _ = tokens.issue_token("unsubscribe", topic=topic.slug, address_hash="preview", now=now)
        mail = personal_digest(rendered, digest_skeleton(rendered, settings), settings, to=PREVIEW_RECIPIENT,
                               token=token, now=now)
        text, html, raw = mail.text, mail.html, mail.raw
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "digest.html").write_text(html, encoding="utf-8")
    (out / "digest.txt").write_text(text, encoding="utf-8")
    (out / "digest.eml").write_bytes(raw)
    print(f"{topic.slug} {week}: {rendered.subject!r}")
    for name in ("digest.html", "digest.txt", "digest.eml"):
        print(f"  {out / name}")
    if args.screenshot:
        print(f"  {screenshot(out / 'digest.html', out / 'digest.png')}")
    return 0


_CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")
# Appended to a copy of the page: writes the laid-out height where --dump-dom shows it.
_MEASURE = ('<script>document.documentElement.setAttribute("data-earshot-height", '
            'Math.ceil(document.documentElement.getBoundingClientRect().height))</script>')


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    if not CHROMIUM.exists():
        raise CliError(f"{CHROMIUM} not found; install it with: apt-get install -y chromium")
    return subprocess.run([str(CHROMIUM), *_CHROMIUM_FLAGS, *args], capture_output=True, text=True,
                          timeout=120, check=False)


def page_height(html_path: Path, *, width: int) -> int:
    """The page's laid-out height at ``width``, measured by headless Chromium."""
    probe = html_path.with_name(f".{html_path.name}.measure.html")
    probe.write_text(html_path.read_text(encoding="utf-8") + _MEASURE, encoding="utf-8")
    try:
        result = _chromium(f"--window-size={width},600", "--dump-dom", probe.resolve().as_uri())
    finally:
        probe.unlink(missing_ok=True)
    found = re.search(r'data-earshot-height="(\d+)"', result.stdout)
    if result.returncode != 0 or not found:
        raise CliError(f"chromium could not lay out {html_path}: {result.stderr.strip()[-300:]}")
    return int(found[1])


def screenshot(html_path: Path, png_path: Path, *, width: int = 680, height: int | None = None) -> Path:
    """Render an HTML file with headless Chromium (no network, no profile state): the
    whole page, however long (``height`` fixes the viewport instead)."""
    height = height or page_height(html_path, width=width)
    result = _chromium(f"--window-size={width},{height}", f"--screenshot={png_path.resolve()}",
                       html_path.resolve().as_uri())
    if result.returncode != 0 or not png_path.exists():
        raise CliError(f"chromium failed: {result.stderr.strip()[-300:]}")
    return png_path


def cmd_run(args: argparse.Namespace) -> int:
    with open_local(args) as local:
        result = run_week(local, args.week)
    print(json.dumps(result, indent=2))
    return 0


def run_week(local: LocalRuntime, week: str | None) -> dict[str, Any]:
    """The weekly job as deployed: the digest handler plans (renders once, queues batches),
    then the queue is handed to the sender handler; mails land in the outbox."""
    if week:
        try:
            week_window(week)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    planned = local.invoke("digest", {**sample_event("digest_scheduled"), **({"week": week} if week else {})})
    sent = local.drain(local.digest_queue, "digest_sender")
    failed = sum(len(r.get("batchItemFailures", [])) for r in sent)
    return {**planned, "send_batches": len(sent), "failed_batches": failed}


# ------------------------------------------------------------------ demo
def demo_step(local: LocalRuntime, out_dir: Path) -> list[str]:
    """Subscribe and confirm a sample address through the real API handler, run the real
    digest handler and sender, and list the mails the outbox received."""
    repo = local.store
    now = datetime.now(UTC)
    topics = [slug for slug, *_ in DEMO_TOPICS if repo.get_topic(slug) is not None]
    lines: list[str] = []
    for slug in topics:
        body = json.dumps({"email": DEMO_RECIPIENT, "topic": slug})
        response = local.invoke("api", _api_event("api_subscribe", body=body))
        local.send_confirmations()  # the queued request, mailed after the answer
        confirm_mail = local.mailer.messages()[-1][1]
        token = re.search(r"token=([\w-]{43})", confirm_mail.get_body(("plain",)).get_content())
        if response["statusCode"] != 202 or token is None:
            raise CliError(f"subscribing to {slug} failed: {response['statusCode']} {response.get('body')}")
        confirmed = local.invoke("api", _api_event("api_confirm_post", body=f"token={token[1]}"))
        lines.append(f"{DEMO_RECIPIENT} subscribed to {slug}: POST /subscriptions {response['statusCode']}, "
                     f"POST /confirm {confirmed['statusCode']}")
    # The samples are not from last week: send each topic's digest for the week of its
    # newest episode (the scheduler's event plus the optional "week" override).
    weeks = sorted({iso_week(latest) for slug in topics
                    if (latest := topic_report(repo, slug, now=now, latest_limit=1).latest)})
    for week in weeks:
        planned = run_week(local, week)
        lines.append(f"digest {week}: {len(planned['topics_queued'])} topic(s) queued, "
                     f"{planned['recipients']} recipient(s)")
    for path, message in local.mailer.messages():
        lines.append(f"{path}  {message['Subject']}")
    return lines


def _api_event(name: str, *, body: str) -> dict[str, Any]:
    event = sample_event(name)
    event["body"] = body
    return event
