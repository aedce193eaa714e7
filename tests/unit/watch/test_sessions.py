"""Session hours: FEED_STALE only while the instrument's market is open, judged in the exchange's
time zone, the silence counted from the session's open; per-instrument hours override the
global ones."""

from __future__ import annotations

import tomllib
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tickwise.streams.config import SessionHours, WatchConfig
from tickwise.streams.watch.health import Alarms, feed_alerts, in_session
from tickwise.streams.watch.sessions import DAYS, session_start

CHICAGO = ZoneInfo("America/Chicago")
CME = SessionHours()  # Globex equity index: Sunday-Thursday 17:00 to 16:00 the next day
# Sunday 2024-01-07 .. Saturday 2024-01-13, Chicago (standard time all week)


def chicago(day: int, hh: int, mm: int = 0, ss: float = 0.0) -> float:
    """Unix seconds of 2024-01-<day> hh:mm:ss in Chicago."""
    return datetime(2024, 1, day, hh, mm, tzinfo=CHICAGO).timestamp() + ss


@pytest.mark.parametrize(
    ("when", "opened"),
    [
        (chicago(7, 16, 59, 59), None),  # Sunday before the open
        (chicago(7, 17), chicago(7, 17)),  # Sunday's session opens
        (chicago(8, 9, 30), chicago(7, 17)),  # Monday morning: still Sunday's session
        (chicago(8, 15, 59, 59.5), chicago(7, 17)),
        (chicago(8, 16), None),  # the daily maintenance break
        (chicago(8, 16, 30), None),
        (chicago(8, 17), chicago(8, 17)),  # Monday's session
        (chicago(12, 15, 59), chicago(11, 17)),  # Friday afternoon: Thursday's session
        (chicago(12, 16), None),  # Friday close: nothing until Sunday
        (chicago(12, 17, 30), None),  # Friday has no evening session
        (chicago(13, 12), None),  # Saturday
    ],
)
def test_cme_globex_hours(when: float, opened: float | None) -> None:
    assert session_start(CME, when) == opened


def test_the_open_is_the_exchanges_wall_clock_across_daylight_saving() -> None:
    # US clocks went forward on Sunday 2024-03-10: 17:00 in Chicago is 22:00 UTC that day
    utc = ZoneInfo("UTC")
    after = datetime(2024, 3, 10, 23, 0, tzinfo=utc).timestamp()
    assert session_start(CME, after) == datetime(2024, 3, 10, 22, 0, tzinfo=utc).timestamp()
    before = datetime(2024, 3, 3, 22, 30, tzinfo=utc).timestamp()  # a week earlier: 16:30 CST
    assert session_start(CME, before) is None


def test_a_session_within_one_day_and_no_hours_at_all() -> None:
    xetra = SessionHours(timezone="Europe/Berlin", days=("mon", "tue", "wed", "thu", "fri"))
    xetra = xetra.model_copy(update={"open": time(9, 0), "close": time(17, 30)})
    berlin = ZoneInfo("Europe/Berlin")
    monday = datetime(2024, 1, 8, 9, 0, tzinfo=berlin).timestamp()
    assert session_start(xetra, monday) == monday
    assert session_start(xetra, monday + 8.5 * 3600) is None  # 17:30
    assert session_start(xetra, monday - 1) is None
    assert session_start(None, 0.0) == float("-inf")  # no hours: always open


@given(st.floats(min_value=1.5e9, max_value=2.5e9))
def test_an_open_session_opened_at_its_open_on_one_of_its_days(now: float) -> None:
    opened = session_start(CME, now)
    local_now = datetime.fromtimestamp(now, CHICAGO)
    if opened is None:
        # closed: the maintenance hour, or Friday 16:00 to Sunday 17:00
        weekday, hour = DAYS[local_now.weekday()], local_now.time()
        assert (
            time(16) <= hour < time(17)
            or weekday == "sat"
            or ((weekday == "fri" and hour >= time(16)) or (weekday == "sun" and hour < time(17)))
        )
        return
    start = datetime.fromtimestamp(opened, CHICAGO)
    assert start.time() == time(17) and DAYS[start.weekday()] in CME.days
    assert timedelta(0) <= local_now - start < timedelta(hours=23, seconds=1)


CONFIG = WatchConfig(stale_after_s=30.0, session=CME)


def test_outside_session_hours_a_silent_feed_is_not_stale() -> None:
    alarms = Alarms()
    last_tick = chicago(12, 15, 59, 50)  # Friday, just before the close
    for when in (chicago(12, 16, 5), chicago(13, 12), chicago(7, 16, 59, 59)):
        assert feed_alerts(alarms, {"ES": last_tick}, when, CONFIG) == []
    assert in_session({"ES": last_tick}, chicago(13, 12), CONFIG) == {"ES": False}


def test_crossing_into_the_session_with_a_silent_feed_raises_after_the_grace() -> None:
    alarms = Alarms()
    last_tick = chicago(12, 15, 59, 50)
    # the feed gets stale_after_s from the open for its first tick, not a weekend's silence
    assert feed_alerts(alarms, {"ES": last_tick}, chicago(7 + 7, 17, 0, 1), CONFIG) == []
    assert feed_alerts(alarms, {"ES": last_tick}, chicago(14, 17, 0, 29), CONFIG) == []
    stale = feed_alerts(alarms, {"ES": last_tick}, chicago(14, 17, 0, 30.5), CONFIG)
    assert [(a.code, a.instrument) for a in stale] == [("FEED_STALE", "ES")]
    assert "since its session opened 30.5 s ago" in stale[0].detail


def test_a_stale_feed_clears_when_its_session_closes_and_is_judged_again_at_the_open() -> None:
    alarms = Alarms()
    seen = {"ES": chicago(8, 15, 0)}
    assert [a.code for a in feed_alerts(alarms, seen, chicago(8, 15, 1), CONFIG)] == ["FEED_STALE"]
    cleared = feed_alerts(alarms, seen, chicago(8, 16, 0, 1), CONFIG)
    assert [a.code for a in cleared] == ["FEED_STALE_CLEARED"]
    assert "session is closed" in cleared[0].detail
    assert feed_alerts(alarms, seen, chicago(8, 17, 0, 10), CONFIG) == []
    assert [a.code for a in feed_alerts(alarms, seen, chicago(8, 17, 1), CONFIG)] == ["FEED_STALE"]


def test_instrument_hours_replace_the_global_ones_and_are_watched_before_a_first_tick() -> None:
    brent = SessionHours(timezone="Europe/London", days=("mon", "tue", "wed", "thu", "fri"))
    brent = brent.model_copy(update={"open": time(1, 0), "close": time(23, 0)})
    config = WatchConfig(stale_after_s=30.0, session=CME, sessions={"BRN": brent})
    london = ZoneInfo("Europe/London")
    # Monday 2024-01-08 16:30 London = 10:30 Chicago: both open; ES ticked, BRN never did
    now = datetime(2024, 1, 8, 16, 30, tzinfo=london).timestamp()
    seen = {"ES": now - 5}
    assert in_session(seen, now, config) == {"BRN": True, "ES": True}
    stale = feed_alerts(Alarms(), seen, now, config)
    assert [(a.code, a.instrument) for a in stale] == [("FEED_STALE", "BRN")]
    # 23:30 London = 17:30 Chicago: Globex open again, BRN closed
    late = datetime(2024, 1, 8, 23, 30, tzinfo=london).timestamp()
    assert in_session({"ES": late}, late, config) == {"BRN": False, "ES": True}


def test_session_hours_read_from_toml_and_bad_ones_are_refused() -> None:
    doc = tomllib.loads(
        '[session]\ntimezone = "America/Chicago"\ndays = ["sun", "mon"]\n'
        'open = "17:00"\nclose = 16:00:00\n'
        '[sessions.BRN]\ntimezone = "Europe/London"\nopen = "01:00"\nclose = "23:00"\n'
    )
    config = WatchConfig.model_validate(doc)
    assert config.session == SessionHours(days=("sun", "mon"))
    assert config.session_for("BRN").timezone == "Europe/London"  # type: ignore[union-attr]
    assert config.session_for("ES") == config.session
    for bad in ({"timezone": "Mars/Olympus"}, {"days": []}, {"days": ["funday"]}):
        with pytest.raises(ValidationError):
            SessionHours.model_validate(bad)
    with pytest.raises(ValidationError):
        SessionHours.model_validate({"open": "17:00+01:00"})
