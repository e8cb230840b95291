"""Where "today" starts for the start pages' figures, in the site's time zone."""
from __future__ import annotations

from datetime import datetime, timezone

from app.home.domain import day_start

UTC = timezone.utc


def test_utc_days_start_at_midnight_utc():
    assert day_start(datetime(2026, 12, 3, 17, 5, tzinfo=UTC), "UTC") == datetime(2026, 12, 3, tzinfo=UTC)


def test_a_site_west_of_greenwich_is_still_on_yesterday_after_midnight_utc():
    # 02:00 UTC on the 4th is 18:00 on the 3rd in Reno (PST, UTC-8): its day began at 08:00 UTC on the 3rd
    assert day_start(datetime(2026, 12, 4, 2, 0, tzinfo=UTC), "America/Los_Angeles") == datetime(2026, 12, 3, 8, tzinfo=UTC)


def test_the_offset_is_the_one_at_midnight_on_a_daylight_saving_day():
    # 8 March 2026: Los Angeles springs forward at 02:00; its midnight was still PST (UTC-8)
    assert day_start(datetime(2026, 3, 8, 20, 0, tzinfo=UTC), "America/Los_Angeles") == datetime(2026, 3, 8, 8, tzinfo=UTC)
