"""When to check a feed next: one policy for every outcome (Miniflux-style).

Inputs come from the check that just happened; the output is ``next_check_at``.

- **Success** (200, 304, or an unchanged body): an *adaptive interval* from the feed's
  own cadence — a quarter of the median gap between its latest episodes, so a daily
  show is looked at about every 6 h and a weekly one daily — clamped to
  [``min_interval_s``, ``max_interval_s``] (1 h .. 24 h by default). The publisher can
  only *raise* it: RSS ``<ttl>`` (minutes), ``Cache-Control: max-age`` (RFC 9111 §5.2.2.1)
  and ``Retry-After``, each honoured up to the ceiling.
- **Error**: exponential backoff ``min_interval_s * 2**(errors-1)`` with ±20 % jitter so
  a host that failed for many feeds is not hit by all of them at once, capped at
  ``max_backoff_s`` (7 days). A failing feed is never disabled: it keeps being retried
  at the cap, and its error is recorded for ``earshot feeds list``.
- **429/503 with Retry-After** (RFC 9110 §10.2.3): never earlier than the server asked.
- **410 Gone**: no next check at all (the caller marks the feed gone).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta

from earshot.settings import Settings

# Look at this many of the newest episodes to estimate cadence.
CADENCE_WINDOW = 10
# Check about this many times per typical gap between episodes.
CHECKS_PER_GAP = 4
JITTER = 0.2


def cadence_interval_s(published: Sequence[datetime | None], settings: Settings) -> int:
    """Adaptive interval from episode dates, clamped to the configured bounds.

    >>> from datetime import UTC
    >>> s = Settings()
    >>> daily = [datetime(2026, 1, d, tzinfo=UTC) for d in range(1, 12)]
    >>> cadence_interval_s(daily, s) // 3600
    6
    >>> weekly = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(weeks=w) for w in range(8)]
    >>> cadence_interval_s(weekly, s) // 3600   # clamped to 24 h
    24
    >>> cadence_interval_s([], s) // 3600       # unknown cadence: the ceiling
    24
    """
    dates = sorted((d for d in published if d is not None), reverse=True)[:CADENCE_WINDOW]
    gaps = [(a - b).total_seconds() for a, b in zip(dates, dates[1:], strict=False) if a > b]
    if not gaps:
        return settings.max_interval_s
    interval = statistics.median(gaps) / CHECKS_PER_GAP
    return int(min(max(interval, settings.min_interval_s), settings.max_interval_s))


def next_check_after_success(
    now: datetime,
    *,
    interval_s: int,
    settings: Settings,
    ttl_minutes: int | None = None,
    cache_max_age_s: int | None = None,
    retry_after_s: float | None = None,
) -> datetime:
    """Next check after a successful fetch (200/304/unchanged).

    >>> from datetime import UTC
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> s = Settings()
    >>> next_check_after_success(now, interval_s=3600, settings=s, ttl_minutes=180) - now
    datetime.timedelta(seconds=10800)
    >>> next_check_after_success(now, interval_s=3600, settings=s, cache_max_age_s=7 * 86400) - now
    datetime.timedelta(days=1)
    """
    seconds = float(interval_s)
    for publisher_hint in (ttl_minutes * 60 if ttl_minutes else None, cache_max_age_s, retry_after_s):
        if publisher_hint:
            seconds = max(seconds, float(publisher_hint))
    seconds = min(max(seconds, settings.min_interval_s), settings.max_interval_s)
    return now + timedelta(seconds=seconds)


def next_check_after_error(
    now: datetime,
    *,
    error_count: int,
    settings: Settings,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """Next check after a failed fetch: exponential backoff with jitter, capped.

    ``error_count`` includes the error that just happened (1 for the first).

    >>> from datetime import UTC
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> s = Settings()
    >>> later = next_check_after_error(now, error_count=30, settings=s)
    >>> later - now <= timedelta(days=7)
    True
    >>> next_check_after_error(now, error_count=1, settings=s, retry_after_s=86400) - now >= timedelta(days=1)
    True
    """
    rng = rng or random.Random()
    base = settings.min_interval_s * 2 ** max(0, min(error_count - 1, 30))
    seconds = min(base, settings.max_backoff_s) * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after_s:
        seconds = max(seconds, retry_after_s)
    return now + timedelta(seconds=min(seconds, settings.max_backoff_s))
