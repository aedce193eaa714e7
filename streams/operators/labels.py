"""Delayed labels in event time: a tick's label exists only once its horizon has passed.

The label of a tick at ``t`` is the log return from its price to the last price at or before
``t + H``. It matures when the first tick *after* ``t + H`` arrives; the price it uses is then
the previous tick's, which is at or before ``t + H``. Nothing learns from it before that.

* classification: the direction (``True`` = up); returns inside the dead zone (boundary
  included, and so a zero return) carry no direction and are neither learned nor scored;
* regression: the forward return in bps.

The model's labels, the monitor's outcomes and the report's resolved signals all come from
:func:`outcome` and :func:`horizon_ns`, so the three never disagree on what happened.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from tickwise.streams.operators.units import BPS_PER_UNIT

UP, NO_DIRECTION, DOWN = 1, 0, -1


def horizon_ns(horizon_s: float) -> int:
    """A duration in seconds as integer nanoseconds of event time, to the nearest nanosecond.

    Rounded, not truncated: ``horizon_s * 1e9`` is a float product, and for most decimal
    values it lands a hair off the integer meant (``1.001 * 1e9`` is ``1000999999.9999999``),
    so truncating would cut a nanosecond off some horizons and not others. Up to about a month,
    rounding returns the exact nanosecond count of the decimal written in the config.

    Examples
    --------
    >>> horizon_ns(1.001), int(1.001 * 1e9)
    (1001000000, 1000999999)
    """
    return round(horizon_s * 1e9)


def forward_bps(entry: float, last: float) -> float:
    """The log return from ``entry`` to ``last``, in bps.

    A log difference, not a ratio, so the return back is exactly the negative of the return
    there. The log is libm's: ``math.log`` here, and what numba compiles ``math.log`` and
    ``np.log`` to, so a compiled kernel (``forward_bps_nb``, :func:`outcome`) gives the same
    bits; numpy's own vectorised ``np.log`` differs in the last bit on some inputs.

    Examples
    --------
    >>> forward_bps(100.0, 101.0) == -forward_bps(101.0, 100.0)
    True
    """
    return (math.log(last) - math.log(entry)) * BPS_PER_UNIT


def direction(forward: float, dead_zone_bps: float) -> int:
    """``UP`` (1), ``DOWN`` (-1) or ``NO_DIRECTION`` (0) of a forward return in bps.

    A return whose size is at most ``dead_zone_bps`` has no direction: too small to call,
    and with a zero dead zone, no move at all.

    Examples
    --------
    >>> [direction(f, 2.0) for f in (-3.0, -2.0, 0.0, 2.0, 2.5)]
    [-1, 0, 0, 0, 1]
    """
    return (forward > dead_zone_bps) - (forward < -dead_zone_bps)


def outcome_one(entry: float, last: float, dead_zone_bps: float) -> tuple[float, int]:
    """The forward return in bps and its direction: the one outcome rule, for one signal.

    Examples
    --------
    >>> outcome_one(100.0, 100.0, 0.0)
    (0.0, 0)
    """
    forward = forward_bps(entry, last)
    return forward, direction(forward, dead_zone_bps)


# The same two functions compiled, for kernels over columns to call (numba compiles on first
# use and caches on disk; nothing is compiled for the per-tick path).
forward_bps_nb = njit(cache=True, inline="always")(forward_bps)
direction_nb = njit(cache=True, inline="always")(direction)


@njit(cache=True)
def _outcome_columns(
    entry: npt.NDArray[np.float64],
    last: npt.NDArray[np.float64],
    dead_zone_bps: float,
    forward: npt.NDArray[np.float64],
    sign: npt.NDArray[np.int8],
) -> None:  # pragma: no cover - compiled
    for i in range(entry.shape[0]):
        f = forward_bps_nb(entry[i], last[i])
        forward[i] = f
        sign[i] = direction_nb(f, dead_zone_bps)


def outcome(
    entry: npt.ArrayLike, last: npt.ArrayLike, dead_zone_bps: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]:
    """:func:`outcome_one` over columns: equal to it element by element, to the bit.

    Examples
    --------
    >>> fwd, up = outcome([100.0, 100.0, 100.0], [100.03, 100.01, 99.0], 2.0)
    >>> up.tolist(), fwd.tolist()[2] == forward_bps(100.0, 99.0)
    ([1, 0, -1], True)
    """
    entry = np.ascontiguousarray(entry, dtype=np.float64)
    last = np.ascontiguousarray(last, dtype=np.float64)
    if entry.shape != last.shape or entry.ndim != 1:
        raise ValueError(f"entry {entry.shape} and last {last.shape}: one column each, alike")
    forward = np.empty(entry.shape[0], dtype=np.float64)
    sign = np.empty(entry.shape[0], dtype=np.int8)
    _outcome_columns(entry, last, float(dead_zone_bps), forward, sign)
    return forward, sign


@dataclass(frozen=True, slots=True)
class Label:
    """A matured label with the features and predictions recorded when its tick was scored."""

    ts_event_ns: int
    x: dict[str, float]
    forward_bps: float
    target: bool | float | None
    predictions: dict[str, Any]


@dataclass
class LabelQueue:
    """Pending ticks of one instrument, released when their horizon has passed.

    Examples
    --------
    >>> q = LabelQueue(horizon_ns=10, dead_zone_bps=0.0, task="classification")
    >>> q.add(0, 100.0, {"x": 1.0})
    >>> q.add(5, 101.0, {"x": 2.0})
    >>> q.mature(10)                 # t=0 + 10 is not passed yet at t=10
    []
    >>> [(lab.ts_event_ns, lab.target) for lab in q.mature(11)]   # uses the price at t=5
    [(0, True)]
    """

    horizon_ns: int
    dead_zone_bps: float
    task: str
    pending: deque[tuple[int, float, dict[str, float], dict[str, Any]]] = field(
        default_factory=deque
    )
    last_price: float = math.nan

    def add(
        self, ts_ns: int, price: float, x: dict[str, float], predictions: dict | None = None
    ) -> None:
        """Queue a scored tick; its price also becomes the latest known price."""
        self.pending.append((ts_ns, price, x, predictions or {}))
        self.last_price = price

    def due(self, now_ns: int) -> bool:
        """Whether ``mature(now_ns)`` would release anything (cheap: the oldest only)."""
        return bool(self.pending) and self.pending[0][0] + self.horizon_ns < now_ns

    def mature(self, now_ns: int) -> list[Label]:
        """Release every label whose horizon ended strictly before ``now_ns``, oldest first."""
        out = []
        pending = self.pending
        while pending and pending[0][0] + self.horizon_ns < now_ns:
            ts, entry, x, predictions = pending.popleft()
            forward, sign = outcome_one(entry, self.last_price, self.dead_zone_bps)
            target: bool | float | None
            if self.task == "regression":
                target = forward
            else:
                target = None if sign == NO_DIRECTION else sign == UP
            out.append(Label(ts, x, forward, target, predictions))
        return out
