"""Prequential accuracy of published signals: was the score on the right side of the outcome?

Downstream of the model, like any consumer of the ``signals`` topic: each signal's outcome is
the direction of the forward return over ``label.horizon_s`` of event time, known only once a
tick beyond ``t + horizon`` has arrived. It is the model's own label rule
(``streams.operators.labels.outcome``), dead zone included, so the two agree. Memory is bounded
by the signals of one horizon.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from tickwise.streams.config import LabelConfig
from tickwise.streams.operators.labels import NO_DIRECTION, UP, horizon_ns, outcome_one


@dataclass(frozen=True, slots=True)
class Outcome:
    """One resolved signal."""

    instrument: str
    ts_signal_ns: int
    ts_resolved_ns: int
    score: float
    up: bool

    @property
    def correct(self) -> bool:
        return (self.score > 0.5) == self.up

    @property
    def log_loss(self) -> float:
        p = min(max(self.score, 1e-15), 1.0 - 1e-15)
        return -math.log(p if self.up else 1.0 - p)


class SignalOutcomes:
    """Resolve signals against later prices, in event time, per instrument.

    Examples
    --------
    >>> so = SignalOutcomes(LabelConfig(horizon_s=1.0))
    >>> so.on_price("ES", 0, 100.0)
    []
    >>> so.on_signal("ES", 0, 100.0, score=0.7)
    >>> so.on_price("ES", 500_000_000, 101.0)   # within the horizon: unresolved
    []
    >>> [o.correct for o in so.on_price("ES", 2_000_000_000, 99.0)]  # resolved at 101: up
    [True]
    """

    def __init__(self, label: LabelConfig) -> None:
        self.horizon_ns = horizon_ns(label.horizon_s)
        self.dead_zone_bps = label.dead_zone_bps
        self._pending: dict[str, deque[tuple[int, float, float]]] = {}
        self._last: dict[str, float] = {}

    def on_signal(self, instrument: str, ts_ns: int, price: float, score: float) -> None:
        """Register a signal scored at ``price`` (call after ``on_price`` for its tick)."""
        self._pending.setdefault(instrument, deque()).append((ts_ns, price, score))

    def on_price(self, instrument: str, ts_ns: int, price: float) -> list[Outcome]:
        """Resolve every signal whose horizon passed before this tick, then record its price."""
        out: list[Outcome] = []
        pending = self._pending.get(instrument)
        last = self._last.get(instrument)
        while pending and last is not None and pending[0][0] + self.horizon_ns < ts_ns:
            ts0, entry, score = pending.popleft()
            _, sign = outcome_one(entry, last, self.dead_zone_bps)
            if sign == NO_DIRECTION:
                continue
            out.append(Outcome(instrument, ts0, ts_ns, score, sign == UP))
        self._last[instrument] = price
        return out
