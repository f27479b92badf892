"""What the local-mode tests share: a topic with matched episodes in a SQLite database,
and reading the outbox (the local mailer's ``.eml`` files)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from earshot.mail.digest import iso_week, week_window
from earshot.models import MatchedEpisode, Topic
from earshot.store import Store
from earshot_local.outbox import read_eml

SLUG = "mlp-finance"
TOPIC_NAME = "MLPs & midstream"
TOKEN_LINK = re.compile(r"(https?://\S+?/(?:confirm|unsubscribe)\?token=[\w-]{43})")


def seed_topic(store: Store, *, slug: str = SLUG, name: str = TOPIC_NAME, now: datetime | None = None) -> str:
    """A topic with two matched episodes in the current ISO week and one from 2019;
    returns the week with news."""
    now = now or datetime.now(UTC)
    store.create_topic(Topic(slug=slug, name=name, query="MLP", created_at=now, updated_at=now))
    start, _ = week_window(iso_week(now))
    store.replace_topic_matches(slug, [
        MatchedEpisode(feed_id="f-pipes", episode_id=f"e{i}", podcast="Pipeline Pod", title=f"MLPs, part {i}",
                       published=start + (now - start) * i / 3, duration_seconds=1800, summary="Midstream news.",
                       audio_url=f"https://cdn.example/{i}.mp3", reason="MLPs in title")
        for i in (1, 2)
    ] + [MatchedEpisode(feed_id="f-pipes", episode_id="old", podcast="Pipeline Pod", title="MLPs in 2019",
                        published=datetime(2019, 5, 1, tzinfo=UTC) + timedelta(hours=1), reason="MLPs in title")])
    return iso_week(now)


def outbox(folder: Path) -> list[EmailMessage]:
    """Every mail in the outbox folder, oldest first."""
    return [read_eml(p) for p in sorted(folder.glob("*.eml"))]


def mails(folder: Path, to: str, kind: str) -> list[EmailMessage]:
    """Mails to ``to``: ``confirm`` (no List-Unsubscribe) or ``digest`` (with one)."""
    return [m for m in outbox(folder) if m["To"] == to and bool(m["List-Unsubscribe"]) == (kind == "digest")]


def link_in(message: EmailMessage, path: str) -> str:
    """The ``/confirm`` or ``/unsubscribe`` link in a mail's plain-text part."""
    links = [u for u in TOKEN_LINK.findall(message.get_body(("plain",)).get_content()) if f"/{path}?" in u]
    assert links, f"no /{path} link in the mail"
    return links[0]
