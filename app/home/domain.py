"""The start pages' plain rules: where "today" starts at the site."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo


def day_start(now: datetime, zone: str) -> datetime:
    """The moment (in UTC) today began in the site's time zone `zone`, for `now` (aware)."""
    local = now.astimezone(ZoneInfo(zone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(timezone.utc)  # the zone's offset at that midnight, not at `now`
