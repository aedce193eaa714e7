"""Delayed labels in event time: a tick's label exists only once its horizon has passed.

The label of a tick at ``t`` is the log return from its price to the last price at or before
``t + H``. It matures when the first tick *after* ``t + H`` arrives; the price it uses is then
the previous tick's, which is at or before ``t + H``. Nothing learns from it before that.

* classification: the direction (``True`` = up); returns inside the dead zone (or exactly
  zero) carry no direction and are neither learned nor scored;
* regression: the forward return in bps.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

BPS = 1e4


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
            forward = (math.log(self.last_price) - math.log(entry)) * BPS
            target: bool | float | None
            if self.task == "regression":
                target = forward
            elif forward == 0.0 or abs(forward) <= self.dead_zone_bps:
                target = None
            else:
                target = forward > 0.0
            out.append(Label(ts, x, forward, target, predictions))
        return out
