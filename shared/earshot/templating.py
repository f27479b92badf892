"""Jinja2 for the topic page, mail and the subscription pages (templates in ``earshot/templates``).

``*.html.j2`` templates autoescape: feed text is untrusted (titles and summaries can
carry markup or scripts), so every value is escaped unless a template says otherwise,
and none does. ``*.txt.j2`` are plain text and do not escape. Undefined names raise,
so a typo in a template fails a test instead of rendering an empty string.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from earshot.textutil import neutralize


def duration_text(seconds: int | None) -> str:
    """Human duration.

    >>> duration_text(3725), duration_text(59 * 60), duration_text(None)
    ('1 h 2 min', '59 min', '')
    """
    if not seconds:
        return ""
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def clock_text(seconds: int | None) -> str:
    """A position or length as a media player shows it: ``m:ss``, or ``h:mm:ss`` from an hour.

    >>> clock_text(754), clock_text(3725), clock_text(59), clock_text(0), clock_text(None)
    ('12:34', '1:02:05', '0:59', '0:00', '')
    """
    if seconds is None:
        return ""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def date_text(value: datetime | None) -> str:
    """``3 Mar 2025`` (no zero padding, no locale dependence)."""
    return f"{value.day} {value:%b %Y}" if value else ""


# Plain http(s) URLs with nothing that could break out of an attribute.
_SAFE_URL = re.compile(r"^https?://[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+$")


def safe_link(url: str | None) -> str | None:
    """A feed-supplied URL if it is plain http(s), else None: a ``javascript:`` or
    ``data:`` link from a feed must never become a clickable link on a page or in a mail.

    >>> safe_link("https://example.com/a.mp3"), safe_link("javascript:alert(1)")
    ('https://example.com/a.mp3', None)
    """
    url = (url or "").strip()
    return url if _SAFE_URL.match(url) else None


def oneline(text: str | None) -> str:
    """Feed text on one line (plain-text mail keeps its layout whatever the feed sent).

    >>> oneline("two\\r\\nlines  here")
    'two lines here'
    """
    return " ".join((text or "").split())


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("earshot", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Every value a template prints, whatever stored it: no text a feed wrote may hide
        # or reorder what is displayed (earshot.textutil.neutralize). Markup is Earshot's own.
        finalize=_neutralized,
    )
    env.filters["duration"] = duration_text
    env.filters["date"] = date_text
    env.filters["clock"] = clock_text
    env.filters["oneline"] = oneline
    env.globals["safe_link"] = safe_link
    return env


def _neutralized(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Markup):
        return neutralize(value)
    return value


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
