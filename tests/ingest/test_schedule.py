"""The next-check policy (pure)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from earshot.ingest import schedule
from earshot.settings import Settings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
S = Settings()
H = 3600


def _every(hours: float, n: int = 10) -> list[datetime]:
    return [NOW - timedelta(hours=hours * i) for i in range(n)]


@pytest.mark.parametrize(
    ("dates", "expected_s"),
    [
        pytest.param(_every(1), H, id="hourly-show-clamped-to-1h"),
        pytest.param(_every(24), 6 * H, id="daily-show-6h"),
        pytest.param(_every(12), 3 * H, id="twice-daily-3h"),
        pytest.param(_every(24 * 7), 24 * H, id="weekly-show-clamped-to-24h"),
        pytest.param([], 24 * H, id="no-dates-ceiling"),
        pytest.param([None, None], 24 * H, id="undated-ceiling"),
        pytest.param([NOW, NOW, NOW], 24 * H, id="same-instant-ceiling"),
        pytest.param(_every(24) + [NOW - timedelta(days=400 + 30 * i) for i in range(30)], 6 * H,
                     id="only-newest-ten-count"),
    ],
)
def test_cadence_interval(dates: list[datetime | None], expected_s: int) -> None:
    assert schedule.cadence_interval_s(dates, S) == expected_s


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, timedelta(hours=2), id="interval-only"),
        pytest.param({"ttl_minutes": 300}, timedelta(hours=5), id="ttl-raises"),
        pytest.param({"ttl_minutes": 30}, timedelta(hours=2), id="ttl-never-lowers"),
        pytest.param({"cache_max_age_s": 4 * H}, timedelta(hours=4), id="max-age-raises"),
        pytest.param({"cache_max_age_s": 30 * 86400}, timedelta(hours=24), id="max-age-capped-at-ceiling"),
        pytest.param({"retry_after_s": 3 * H}, timedelta(hours=3), id="retry-after-raises"),
    ],
)
def test_next_check_after_success(kwargs: dict, expected: timedelta) -> None:
    assert schedule.next_check_after_success(NOW, interval_s=2 * H, settings=S, **kwargs) - NOW == expected


@pytest.mark.parametrize(
    ("errors", "low_h", "high_h"),
    [
        pytest.param(1, 0.8, 1.2, id="first-error-about-1h"),
        pytest.param(2, 1.6, 2.4, id="second-error-about-2h"),
        pytest.param(5, 12.8, 19.2, id="fifth-error-about-16h"),
        pytest.param(40, 7 * 24 * 0.8, 7 * 24, id="capped-at-7-days"),
    ],
)
def test_error_backoff_is_exponential_jittered_and_capped(errors: int, low_h: float, high_h: float) -> None:
    rng = random.Random(7)
    delays = [(schedule.next_check_after_error(NOW, error_count=errors, settings=S, rng=rng) - NOW)
              for _ in range(50)]
    assert all(timedelta(hours=low_h) <= d <= timedelta(hours=high_h) for d in delays)
    assert len(set(delays)) > 1, "jitter spreads retries"


def test_retry_after_is_never_undercut_by_backoff() -> None:
    later = schedule.next_check_after_error(NOW, error_count=1, settings=S, retry_after_s=10 * H)
    assert later - NOW >= timedelta(hours=10)


def test_retry_after_beyond_cap_is_capped() -> None:
    later = schedule.next_check_after_error(NOW, error_count=1, settings=S, retry_after_s=30 * 86400)
    assert later - NOW == timedelta(days=7)
