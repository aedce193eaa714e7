"""Event-time exponentially weighted statistics: the building blocks of every feature.

Each running sum decays by ``exp(-dt / tau)`` where ``dt`` is the gap between tick timestamps,
and the new observation enters with weight one. So ticks sharing a timestamp are averaged
rather than ignored, the first ticks are not biased towards zero, and nothing depends on how
fast ticks are delivered. Means and variances use a weighted Welford update (no
``E[x^2] - E[x]^2`` cancellation), so price levels in the thousands keep their precision.
"""

from __future__ import annotations

import math


class EwmStats:
    """Event-time exponentially weighted mean and variance of one series.

    Examples
    --------
    >>> s = EwmStats(tau_s=10.0)
    >>> for x in (1.0, 2.0, 3.0):
    ...     s.update(x, 0.0)            # same timestamp: a plain average
    >>> s.mean, round(s.std, 6)
    (2.0, 0.816497)
    """

    __slots__ = ("m2", "mean", "tau_s", "weight")

    def __init__(self, tau_s: float) -> None:
        self.tau_s = tau_s
        self.weight = 0.0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, x: float, dt_s: float) -> None:
        """Decay by the event-time gap ``dt_s`` and add ``x`` with weight one."""
        self.add(x, math.exp(-dt_s / self.tau_s))

    def add(self, x: float, decay: float) -> None:
        """``update`` with the decay factor already worked out (shared by equal time constants)."""
        self.weight = self.weight * decay + 1.0
        delta = x - self.mean
        self.mean += delta / self.weight
        self.m2 = self.m2 * decay + delta * (x - self.mean)

    @property
    def std(self) -> float:
        """Weighted standard deviation (0 before two distinct observations)."""
        if self.weight <= 0.0:
            return 0.0
        return math.sqrt(max(self.m2 / self.weight, 0.0))


class DecayedSum:
    """An event-time exponentially decayed sum (e.g. recent volume, recent tick count).

    Examples
    --------
    >>> d = DecayedSum(tau_s=1.0)
    >>> d.update(1.0, 0.0); d.update(1.0, 1.0)
    >>> round(d.value, 4)   # the first unit has decayed by e^-1
    1.3679
    """

    __slots__ = ("tau_s", "value")

    def __init__(self, tau_s: float) -> None:
        self.tau_s = tau_s
        self.value = 0.0

    def update(self, x: float, dt_s: float) -> None:
        """Decay by ``dt_s`` and add ``x``."""
        self.value = self.value * math.exp(-dt_s / self.tau_s) + x

    def add(self, x: float, decay: float) -> None:
        """``update`` with the decay factor already worked out (shared by equal time constants)."""
        self.value = self.value * decay + x


def clip(x: float, bound: float) -> float:
    """Clamp ``x`` into ``[-bound, bound]``; a z-score of 300 carries no more news than 10."""
    return max(-bound, min(bound, x))


def ratio(num: float, den: float, tiny: float = 1e-12) -> float:
    """``num / den``, or 0 when ``den`` is too small to divide by (never inf or NaN)."""
    return num / den if abs(den) > tiny else 0.0
