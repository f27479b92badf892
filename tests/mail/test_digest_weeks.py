"""The week a digest covers is the previous ISO week in the digest's own time zone
(template DigestTimezone): the schedule fires Monday 08:00 *local*, which east of UTC+8
is still Sunday in UTC, and a UTC week would then be the week before last."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from earshot.mail.digest import iso_week, previous_week, week_window
from earshot.settings import Settings

AUCKLAND, LONDON, HONOLULU = ZoneInfo("Pacific/Auckland"), ZoneInfo("Europe/London"), ZoneInfo("Pacific/Honolulu")


@pytest.mark.parametrize("zone, local_send_time, utc_send_time, expected_week", [
    # Monday 2025-01-13 08:00 in Auckland (UTC+13, summer) is Sunday 2025-01-12 19:00 UTC:
    # a UTC week would say 2025-W01; the local week just ended is 2025-W02.
    (AUCKLAND, datetime(2025, 1, 13, 8), datetime(2025, 1, 12, 19, tzinfo=UTC), "2025-W02"),
    # Auckland winter (UTC+12): Monday 2025-07-14 08:00 local = Sunday 20:00 UTC.
    (AUCKLAND, datetime(2025, 7, 14, 8), datetime(2025, 7, 13, 20, tzinfo=UTC), "2025-W28"),
    # London, the default zone: same ISO week either way.
    (LONDON, datetime(2025, 1, 13, 8), datetime(2025, 1, 13, 8, tzinfo=UTC), "2025-W02"),
    # West of UTC: Monday 08:00 in Honolulu is Monday 18:00 UTC.
    (HONOLULU, datetime(2025, 1, 13, 8), datetime(2025, 1, 13, 18, tzinfo=UTC), "2025-W02"),
    # Across New Year: Monday 2024-12-30 08:00 Auckland is Sunday 29th UTC (ISO 2024-W52).
    (AUCKLAND, datetime(2024, 12, 30, 8), datetime(2024, 12, 29, 19, tzinfo=UTC), "2024-W52"),
])
def test_previous_week_is_computed_in_the_digest_zone(
    zone: ZoneInfo, local_send_time: datetime, utc_send_time: datetime, expected_week: str
) -> None:
    assert local_send_time.replace(tzinfo=zone) == utc_send_time  # the table is self-consistent
    assert previous_week(utc_send_time, zone) == expected_week
    # and the run's window ended before the run, so nothing published later is skipped
    start, end = week_window(expected_week, zone)
    assert end <= utc_send_time and end - start >= timedelta(hours=167)


def test_utc_week_is_wrong_east_of_utc_plus_8() -> None:
    # What the digest used to do: the week before last
    assert previous_week(datetime(2025, 1, 12, 19, tzinfo=UTC)) == "2025-W01"


def test_local_weeks_tile_time_without_gaps_across_dst() -> None:
    # London's spring-forward (2025-03-30) and fall-back (2025-10-26) weeks
    for first in ("2025-W12", "2025-W42"):
        start, end = week_window(first, LONDON)
        year, week = first.split("-W")
        next_start, _ = week_window(f"{year}-W{int(week) + 1:02d}", LONDON)
        assert end == next_start
        assert end.astimezone(UTC) - start.astimezone(UTC) in (timedelta(hours=167), timedelta(hours=168),
                                                               timedelta(hours=169))
        assert start.astimezone(LONDON).hour == 0 and start.weekday() == 0
        assert iso_week(start, LONDON) == first and iso_week(end - timedelta(seconds=1), LONDON) == first


def test_settings_carry_the_zone_and_refuse_unknown_ones() -> None:
    assert Settings.from_env({"DIGEST_TIMEZONE": "Pacific/Auckland"}).digest_zone == AUCKLAND
    assert Settings.from_env({}).digest_timezone == "UTC"
    with pytest.raises(ValueError, match="unknown IANA time zone"):
        Settings.from_env({"DIGEST_TIMEZONE": "Mars/Olympus_Mons"})
