"""Jinja2 for mail and the subscription pages (templates in ``earshot/templates``).

``*.html.j2`` templates autoescape: feed text is untrusted (titles and summaries can
carry markup or scripts), so every value is escaped unless a template says otherwise,
and none does. ``*.txt.j2`` are plain text and do not escape. Undefined names raise,
so a typo in a template fails a test instead of rendering an empty string.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


def duration_text(seconds: int | None) -> str:
    """Human duration.

    >>> duration_text(3725), duration_text(59 * 60), duration_text(None)
    ('1 h 2 min', '59 min', '')
    """
    if not seconds:
        return ""
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def date_text(value: datetime | None) -> str:
    """``3 Mar 2025`` (no zero padding, no locale dependence)."""
    return f"{value.day} {value:%b %Y}" if value else ""


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
    )
    env.filters["duration"] = duration_text
    env.filters["date"] = date_text
    env.filters["oneline"] = oneline
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
