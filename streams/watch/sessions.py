"""When a market is open: the wall-clock side of ``[watch] session`` hours.

A feed is expected to tick only while its market's session is open, so FEED_STALE is judged from
the later of the last tick and the session's open. Nothing here reads the clock: the caller
passes ``now`` (Unix seconds).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from tickwise.streams.config import SessionHours

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def session_start(hours: SessionHours | None, now: float) -> float | None:
    """Unix seconds at which the session open at ``now`` opened; None while the market is closed.

    No hours: always open, since ``-inf``. A session lasts at most a day, so only one opened
    today or yesterday (in the exchange's zone) can be open now.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> cme = SessionHours()  # Globex: Sunday-Thursday 17:00 to 16:00 the next day, Chicago
    >>> sunday_1830 = datetime(2024, 1, 8, 0, 30, tzinfo=timezone.utc).timestamp()
    >>> datetime.fromtimestamp(session_start(cme, sunday_1830), timezone.utc).isoformat()
    '2024-01-07T23:00:00+00:00'
    >>> session_start(cme, sunday_1830 - 2 * 3600) is None  # Sunday 16:30: not open yet
    True
    """
    if hours is None:
        return -math.inf
    zone = _zone(hours.timezone)
    local = datetime.fromtimestamp(now, zone)
    for back in (0, 1):
        day: date = local.date() - timedelta(days=back)
        if DAYS[day.weekday()] not in hours.days:
            continue
        opened = datetime.combine(day, hours.open, zone)
        close_day = day if hours.close > hours.open else day + timedelta(days=1)
        closes = datetime.combine(close_day, hours.close, zone)
        if opened.timestamp() <= now < closes.timestamp():
            return opened.timestamp()
    return None
