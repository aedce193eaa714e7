"""Streaming report figures: everything ``report.json`` and ``report.html`` need, in bounded memory.

A backtest over ten million ticks cannot keep its equity curve in memory to compute figures at
the end. Each figure here is kept as a running quantity instead (running peak for drawdown,
one value per ``returns_period`` for Sharpe, time held for exposure) using the definitions and
helpers of ``replay.metrics``, so the numbers equal what the pure functions give on the whole
``equity.csv``. Plots keep a fixed number of points (``Decimator``).

The report starts when the model first signals (the end of its warm-up): before that nothing can
trade and the flat stretch would only dilute the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TextIO

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tickwise.replay import metrics
from tickwise.replay.prequential import Outcome
from tickwise.schemas.decisions import Fill

NS_PER_S = 10**9


class ReportSettings(BaseModel):
    """How the report measures; fixed per run and written into ``report.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    returns_period: str = "1min"
    periods_per_year: float | None = Field(
        default=None, gt=0.0, description="None: the trading periods of ``calendar``'s year."
    )
    calendar: str = Field(
        default="24x7",
        description="Trading calendar that annualises: a name in replay.metrics.CALENDARS "
        "(24x7, cme_equity, us_equity, fx) or '<hours per day>x<days per year>'.",
    )
    walk_forward: str | None = Field(
        default="1D", description="Length of the walk-forward segments reported separately."
    )
    seed: int = Field(default=0, description="Seed of the random-signal baseline.")
    accuracy_window: int = Field(default=500, ge=1, description="Outcomes in rolling accuracy.")
    plot_points: int = Field(default=1500, ge=10)

    @field_validator("calendar")
    @classmethod
    def _known_calendar(cls, calendar: str) -> str:
        metrics.calendar_hours_days(calendar)
        return calendar

    def ppy(self) -> float:
        """Periods per year actually used: given, else those of the trading calendar."""
        if self.periods_per_year is not None:
            return self.periods_per_year
        return metrics.calendar_periods_per_year(self.returns_period, self.calendar)


@lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso_utc(ts_ns: int) -> str:
    """ISO-8601 UTC with nanoseconds, e.g. ``2013-09-01T22:00:00.083000000Z``.

    Examples
    --------
    >>> iso_utc(1_378_072_800_083_000_001)
    '2013-09-01T22:00:00.083000001Z'
    """
    seconds, ns = divmod(ts_ns, NS_PER_S)
    return f"{_iso_seconds(seconds)}.{ns:09d}Z"


def iso_utc_many(ts_ns: np.ndarray) -> list[str]:
    """``iso_utc`` of every time in an int64 array, in bulk.

    Examples
    --------
    >>> iso_utc_many(np.array([1_378_072_800_083_000_001]))
    ['2013-09-01T22:00:00.083000001Z']
    """
    text = np.datetime_as_string(np.asarray(ts_ns, np.int64).astype("datetime64[ns]"), unit="ns")
    return [f"{t}Z" for t in text.tolist()]


class Decimator:
    """Keep at most ``capacity`` evenly spaced points of a long series (stride doubles when full).

    Examples
    --------
    >>> d = Decimator(4)
    >>> for i in range(10):
    ...     d.add(i, float(i))
    >>> d.points()[0][0], d.points()[0][-1]   # first and last are always kept
    (0, 9)
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._t: list[int] = []
        self._v: list[float] = []
        self._stride = 1
        self._seen = 0
        self._last: tuple[int, float] | None = None

    def add(self, ts_ns: int, value: float) -> None:
        if self._seen % self._stride == 0:
            self._t.append(ts_ns)
            self._v.append(value)
            if len(self._t) > self.capacity:
                self._t, self._v = self._t[::2], self._v[::2]
                self._stride *= 2
        self._seen += 1
        self._last = (ts_ns, value)

    def extend(self, ts_ns: np.ndarray, values: np.ndarray) -> None:
        """``add`` each point in order, in bulk: the same points kept, the same stride.

        Examples
        --------
        >>> a, b = Decimator(4), Decimator(4)
        >>> for i in range(10):
        ...     a.add(i, float(i))
        >>> b.extend(np.arange(10), np.arange(10.0))
        >>> a.points() == b.points()
        True
        """
        n = len(ts_ns)
        i = 0
        while i < n:
            first = i + (-self._seen) % self._stride  # the next point ``add`` would keep
            kept = np.arange(first, n, self._stride)[: self.capacity + 1 - len(self._t)]
            self._t += np.asarray(ts_ns)[kept].tolist()
            self._v += np.asarray(values)[kept].tolist()
            if len(self._t) > self.capacity:  # the last one kept filled it: halve from there
                self._t, self._v = self._t[::2], self._v[::2]
                end = int(kept[-1]) + 1
                self._seen += end - i
                self._stride *= 2
                i = end
            else:
                self._seen += n - i
                i = n
        if n:
            self._last = (int(ts_ns[-1]), float(values[-1]))

    def points(self) -> tuple[list[int], list[float]]:
        if self._last is not None and (not self._t or self._t[-1] != self._last[0]):
            return [*self._t, self._last[0]], [*self._v, self._last[1]]
        return list(self._t), list(self._v)


@dataclass
class _Trip:
    realized: float = 0.0
    pnl: float = 0.0


@dataclass
class CurveAccumulator:
    """One equity curve and the trades behind it: the figures of a run, segment or baseline."""

    settings: ReportSettings
    capital: float
    multiplier: float
    start_ns: int | None = None
    end_ns: int | None = None
    first: float = math.nan
    last: float = math.nan
    n_points: int = 0
    n_trades: int = 0
    traded_units: float = 0.0
    traded_notional: float = 0.0
    fees: float = 0.0
    slippage: float = 0.0
    wins: int = 0
    round_trips: int = 0
    held_ns: int = 0
    outcomes: int = 0
    correct: int = 0
    log_loss: float = 0.0
    holding: bool = False
    _drawdown: metrics.DrawdownTracker = field(default_factory=metrics.DrawdownTracker)
    _resampler: metrics.Resampler | None = None
    _trips: dict[str, _Trip] = field(default_factory=dict)

    def on_equity(self, ts_ns: int, equity: float, holding: bool) -> float:
        """Take the equity after a change; return its drawdown from the running peak."""
        if self._resampler is None:
            self._resampler = metrics.Resampler(metrics.period_ns(self.settings.returns_period))
            self.start_ns, self.first = ts_ns, equity
        elif self.holding and self.end_ns is not None:
            self.held_ns += ts_ns - self.end_ns
        self._resampler.add(ts_ns, equity)
        self.end_ns, self.last, self.holding = ts_ns, equity, holding
        self.n_points += 1
        return self._drawdown.add(equity)

    def on_fill(self, fill: Fill, position_before: float) -> None:
        """Count a fill: costs, notional, and the round trip it extends or closes."""
        self.n_trades += 1
        self.traded_units += fill.quantity
        self.traded_notional += fill.quantity * fill.price * self.multiplier
        self.fees += fill.fee
        self.slippage += fill.quantity * abs(fill.price - fill.reference_price) * self.multiplier
        trip = self._trips.setdefault(fill.instrument, _Trip())
        trip.pnl += fill.realized_pnl_after - trip.realized - fill.fee
        trip.realized = fill.realized_pnl_after
        after = fill.position_after
        flipped = (after > 0.0) != (position_before > 0.0)
        closes = position_before != 0.0 and (after == 0.0 or flipped)
        if closes:
            self.round_trips += 1
            self.wins += trip.pnl > 0.0
            trip.pnl = 0.0

    def on_outcome(self, outcome: Outcome) -> None:
        self.outcomes += 1
        self.correct += outcome.correct
        self.log_loss += outcome.log_loss

    def figures(self) -> dict[str, Any]:
        """The report figures of this curve (JSON-ready: undefined figures are None)."""
        ppy = self.settings.ppy()
        levels = self._resampler.values() if self._resampler else []
        returns = metrics.simple_returns(levels)
        span = (self.end_ns or 0) - (self.start_ns or 0)
        sharpe = metrics.sharpe_of_returns(returns, ppy)
        return {
            "start": iso_utc(self.start_ns) if self.start_ns is not None else None,
            "end": iso_utc(self.end_ns) if self.end_ns is not None else None,
            "first_equity": self.first if self.n_points else None,
            "last_equity": self.last if self.n_points else None,
            "total_return": metrics.total_return([self.first, self.last])
            if self.n_points
            else None,
            "sharpe": sharpe,
            "sortino": metrics.sortino_of_returns(returns, ppy),
            "max_drawdown": self._drawdown.max_drawdown,
            "n_returns": int(returns.size),
            "ratios_meaningful": metrics.ratios_meaningful(int(returns.size)),
            "sharpe_standard_error": metrics.sharpe_standard_error(sharpe, returns.size, ppy),
            "n_trades": self.n_trades,
            "round_trips": self.round_trips,
            "hit_rate": self.wins / self.round_trips if self.round_trips else None,
            "turnover": metrics.turnover(self.traded_notional, self.capital),
            "traded_units": self.traded_units,
            "fees_paid": self.fees,
            "slippage_paid": self.slippage,
            "exposure": self.held_ns / span if span > 0 else None,
            "model_accuracy": self.correct / self.outcomes if self.outcomes else None,
            "model_log_loss": self.log_loss / self.outcomes if self.outcomes else None,
            "n_outcomes": self.outcomes,
        }


class SegmentedCurve:
    """The run's curve plus one ``CurveAccumulator`` per walk-forward segment."""

    def __init__(self, settings: ReportSettings, capital: float, multiplier: float) -> None:
        self.settings = settings
        self.whole = CurveAccumulator(settings, capital, multiplier)
        self._args = (settings, capital, multiplier)
        self._period = metrics.period_ns(settings.walk_forward) if settings.walk_forward else None
        self._origin: int | None = None
        self._index: int | None = None
        self._segment: CurveAccumulator | None = None
        self.closed: list[dict[str, Any]] = []

    def _route(self, ts_ns: int) -> CurveAccumulator | None:
        if self._period is None:
            return None
        if self._origin is None:
            self._origin = ts_ns - ts_ns % metrics.NS_PER_DAY
        index = (ts_ns - self._origin) // self._period
        if self._index is not None:
            index = max(index, self._index)  # a late event belongs to the open segment
        if index != self._index:
            previous = self._segment
            self._close()
            self._index, self._segment = index, CurveAccumulator(*self._args)
            if previous is not None:  # each segment starts where the previous one ended
                start = self._origin + index * self._period
                self._segment.on_equity(start, previous.last, previous.holding)
        return self._segment

    def _close(self) -> None:
        if self._segment is not None and self._index is not None:
            figures = self._segment.figures()
            self.closed.append({"segment": self._index, **figures})

    def on_equity(self, ts_ns: int, equity: float, holding: bool) -> float:
        seg = self._route(ts_ns)
        if seg is not None:
            seg.on_equity(ts_ns, equity, holding)
        return self.whole.on_equity(ts_ns, equity, holding)

    def on_fill(self, fill: Fill, position_before: float) -> None:
        seg = self._route(fill.ts_event_ns)
        if seg is not None:
            seg.on_fill(fill, position_before)
        self.whole.on_fill(fill, position_before)

    def on_outcome(self, outcome: Outcome) -> None:
        seg = self._route(outcome.ts_resolved_ns)
        if seg is not None:
            seg.on_outcome(outcome)
        self.whole.on_outcome(outcome)

    def segments(self) -> list[dict[str, Any]]:
        """Figures per segment (the open one included), numbered from 0."""
        out = list(self.closed)
        if self._segment is not None and self._index is not None:
            out.append({"segment": self._index, **self._segment.figures()})
        first = out[0]["segment"] if out else 0
        return [{**s, "segment": s["segment"] - first} for s in out]


class EquityWriter:
    """``equity.csv``: ``time,equity``, one row after each change of the account, ISO-8601 UTC."""

    def __init__(self, fh: TextIO) -> None:
        self.fh = fh
        fh.write("time,equity\n")

    def write(self, ts_ns: int, equity: float) -> None:
        self.fh.write(f"{iso_utc(ts_ns)},{equity!r}\n")

    def write_many(self, ts_ns: np.ndarray, equity: np.ndarray) -> None:
        """``write`` each row, in bulk."""
        rows = zip(iso_utc_many(ts_ns), np.asarray(equity, np.float64).tolist(), strict=True)
        self.fh.write("".join(f"{t},{e!r}\n" for t, e in rows))
