"""Report figures computed the standard way, from an equity curve and the trades behind it.

Definitions (also in docs/BACKTESTING.md, which users read):

* total return = last equity / first equity - 1;
* max drawdown = the most negative ``equity / running peak - 1`` over the unresampled curve;
* Sharpe = mean / standard deviation (ddof = 1) of the simple returns of the equity resampled
  at ``returns_period`` (last value in each period, carried forward over empty periods), times
  ``sqrt(periods_per_year)``; risk-free rate zero;
* Sortino = the same mean over the downside deviation ``sqrt(mean(min(r, 0)²))`` (all periods
  counted, target zero), times ``sqrt(periods_per_year)``.

``periods_per_year`` follows a trading calendar (``calendar_periods_per_year``): by default a
24/7 year of 365.25 days, right for markets that never close; ``cme_equity`` (23 h x 252 days)
for CME equity index futures. Ratios resting on fewer than ``MIN_RATIO_PERIODS`` returns are
flagged as not meaningful, and every Sharpe comes with its standard error.

Periods are anchored like pandas' ``resample`` (origin: midnight UTC of the first timestamp's
day) so an analyst re-computing the figures with pandas gets the same numbers; pandas itself is
not needed at run time. Figures that are undefined (fewer than two returns, zero deviation) are
``None``, never NaN, so ``report.json`` stays valid JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

NS_PER_DAY = 86_400 * 10**9
NS_PER_HOUR = 3_600 * 10**9
DAYS_PER_YEAR = 365.25
# Below about 30 returns a ratio says little: the sample standard deviation under it is itself
# off by more than 13% (1 / sqrt(2 (n - 1))), and the usual normal approximation of a Sharpe
# estimate's error (Lo, 2002) stops holding; 30 is the textbook floor for both.
MIN_RATIO_PERIODS = 30
# Trading hours per day and trading days per year of named calendars. Holidays and short
# sessions are averaged into the day count; a custom calendar is written "<hours>x<days>".
CALENDARS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "24x7": (24.0, DAYS_PER_YEAR),  # crypto, and the default: a market that never closes
        "cme_equity": (23.0, 252.0),  # CME Globex equity index futures (ES, NQ): 23 h a day
        "us_equity": (6.5, 252.0),  # NYSE / Nasdaq regular session
        "fx": (24.0, 260.0),  # spot FX: 24 h, five days a week
    }
)
_UNITS_NS = {
    "ns": 1,
    "us": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "S": 10**9,
    "min": 60 * 10**9,
    "T": 60 * 10**9,
    "h": 3600 * 10**9,
    "H": 3600 * 10**9,
    "D": NS_PER_DAY,
    "d": NS_PER_DAY,
}
_ALIAS = re.compile(r"^\s*(\d*)\s*([A-Za-z]+)\s*$")


def period_ns(alias: str) -> int:
    """Length in nanoseconds of a fixed pandas offset alias such as ``1min``, ``15s``, ``1D``.

    Calendar offsets (weeks, months, business days) have no fixed length and are refused with a
    clear error instead of being approximated.

    Examples
    --------
    >>> period_ns("1min"), period_ns("15s"), period_ns("D") == 86_400 * 10**9
    (60000000000, 15000000000, True)
    """
    match = _ALIAS.match(alias)
    if match is None or match.group(2) not in _UNITS_NS:
        raise ValueError(
            f"returns period {alias!r} is not a fixed pandas offset alias "
            f"(use e.g. 1s, 5min, 1h, 1D; units: {', '.join(_UNITS_NS)})"
        )
    count = int(match.group(1) or 1)
    if count <= 0:
        raise ValueError(f"returns period {alias!r} must be positive")
    return count * _UNITS_NS[match.group(2)]


def calendar_hours_days(calendar: str) -> tuple[float, float]:
    """Trading hours per day and days per year of a named calendar or of ``"<hours>x<days>"``.

    Examples
    --------
    >>> calendar_hours_days("cme_equity"), calendar_hours_days("6.5x250")
    ((23.0, 252.0), (6.5, 250.0))
    """
    if calendar in CALENDARS:
        return CALENDARS[calendar]
    hours, sep, days = calendar.partition("x")
    try:
        h, d = float(hours), float(days)
    except ValueError:
        h = d = math.nan
    if not sep or not (0.0 < h <= 24.0) or not (0.0 < d <= 366.0):
        raise ValueError(
            f"trading calendar {calendar!r}: name one of {', '.join(CALENDARS)} "
            "or write '<hours per day>x<days per year>', e.g. 23x252"
        )
    return h, d


def calendar_periods_per_year(alias: str, calendar: str = "24x7") -> float:
    """Periods of ``alias`` in a year of ``calendar``'s trading time.

    Examples
    --------
    >>> calendar_periods_per_year("1min", "cme_equity")   # 23 x 60 x 252
    347760.0
    >>> calendar_periods_per_year("1D")                   # a 24/7 year of 365.25 days
    365.25
    """
    hours, days = calendar_hours_days(calendar)
    return hours * NS_PER_HOUR * days / period_ns(alias)


def ratios_meaningful(n_returns: int) -> bool:
    """Whether a Sharpe or Sortino ratio rests on enough returns to mean something.

    Examples
    --------
    >>> ratios_meaningful(29), ratios_meaningful(30)
    (False, True)
    """
    return n_returns >= MIN_RATIO_PERIODS


def sharpe_standard_error(
    sharpe: float | None, n_returns: int, periods_per_year: float
) -> float | None:
    """Standard error of an annualised Sharpe ratio from ``n_returns`` iid returns (Lo, 2002):
    ``sqrt((1 + s^2 / 2) / n) x sqrt(periods_per_year)``, ``s`` the per-period ratio.

    About ``1 / sqrt(years covered)``: annualising a few hours gives a figure of tens either way.

    Examples
    --------
    >>> round(sharpe_standard_error(0.0, 100, 100.0), 9)
    1.0
    """
    if sharpe is None or n_returns < 2:
        return None
    per_period = sharpe / math.sqrt(periods_per_year)
    return math.sqrt((1.0 + per_period**2 / 2.0) / n_returns * periods_per_year)


class Resampler:
    """Streaming "last value per period, carried forward": bounded by periods, not by points.

    Examples
    --------
    >>> r = Resampler(period_ns("1s"))
    >>> for t, v in [(0, 1.0), (400_000_000, 2.0), (2_500_000_000, 3.0)]:
    ...     r.add(t, v)
    >>> r.values()
    [2.0, 2.0, 3.0]
    """

    def __init__(self, period: int) -> None:
        self.period = period
        self._closed: list[float] = []
        self._bucket: int | None = None
        self._last = math.nan

    def add(self, ts_ns: int, value: float) -> None:
        """Take one observation; timestamps must not go backwards."""
        if self._bucket is None:
            origin = ts_ns - ts_ns % NS_PER_DAY  # pandas' default origin: start of the day
            self._origin = origin
            self._bucket = (ts_ns - origin) // self.period
        bucket = (ts_ns - self._origin) // self.period
        if bucket < self._bucket:
            raise ValueError("equity timestamps went backwards")
        if bucket > self._bucket:
            self._closed.extend([self._last] * (bucket - self._bucket))
            self._bucket = bucket
        self._last = value

    def values(self) -> list[float]:
        """The resampled series so far, the current (still open) period included."""
        return [*self._closed, self._last] if self._bucket is not None else []


def simple_returns(levels: Sequence[float]) -> np.ndarray:
    """``levels[i] / levels[i-1] - 1``."""
    x = np.asarray(levels, dtype=float)
    return x[1:] / x[:-1] - 1.0 if x.size > 1 else np.empty(0)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def sharpe_of_returns(returns: Sequence[float], periods_per_year: float) -> float | None:
    """Annualised Sharpe ratio of per-period returns (risk-free zero); None when undefined."""
    r = np.asarray(returns, dtype=float)
    if r.size < 2:
        return None
    sd = float(np.std(r, ddof=1))
    if sd == 0.0:
        return None
    return _finite(float(np.mean(r)) / sd * math.sqrt(periods_per_year))


def sortino_of_returns(returns: Sequence[float], periods_per_year: float) -> float | None:
    """Annualised Sortino ratio (target zero, downside deviation over all periods)."""
    r = np.asarray(returns, dtype=float)
    if r.size < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if downside == 0.0:
        return None
    return _finite(float(np.mean(r)) / downside * math.sqrt(periods_per_year))


def total_return(equity: Sequence[float]) -> float | None:
    """Last equity over first equity, minus one.

    Examples
    --------
    >>> total_return([100.0, 90.0, 110.0])
    0.10000000000000009
    """
    return _finite(equity[-1] / equity[0] - 1.0) if len(equity) else None


class DrawdownTracker:
    """Running peak and the deepest ``equity / peak - 1`` seen: the streaming max drawdown."""

    def __init__(self) -> None:
        self.peak = -math.inf
        self.max_drawdown = 0.0

    def add(self, equity: float) -> float:
        """Take one equity value; return its drawdown from the running peak."""
        self.peak = max(self.peak, equity)
        dd = equity / self.peak - 1.0
        self.max_drawdown = min(self.max_drawdown, dd)
        return dd


def turnover(traded_notional: float, capital: float) -> float:
    """Traded notional (sum of |quantity x price| over fills) per unit of initial capital."""
    return traded_notional / capital
