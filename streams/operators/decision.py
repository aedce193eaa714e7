"""The decision rule: whether a signal is worth its costs, and when a position is left.

A classifier says how likely the price is up at the horizon, not how far it will move, so its
probability alone cannot be weighed against a cost. The expected return of going long over the
horizon is ``(2p - 1) x E|r|``, where ``E|r|`` counts only the moves the labels give a
direction (a move inside the dead zone counts as zero): ``p`` is the probability of up among
those, and a move in the dead zone is assumed symmetric. ``E|r|`` is an event-time EWMA of
``|forward return|`` over matured labels, so it is learned causally, from outcomes already known
when the signal is scored. A regressor forecasts the forward return in bps itself.

The cost of a round trip in bps of the price is ``2 x (half spread + slippage + fee)``: the
paper broker charges each on both fills (``streams.operators.execution``). The half spread is the
quoted one when the last tick was a quote and the configured one on a trade feed, as the broker
fills them.

Under the ``edge`` rule a flat instrument enters only when ``|edge|`` beats the cost (times
``entry_cost_multiple``); a position is kept at least ``min_hold_s``, reversed when the edge
against it beats the entry cost, and closed when its own edge drops below
``exit_cost_multiple x cost``. Each outcome comes with a reason a trader can read, carried on
the decision. The ``threshold`` rule acts on the signal's side alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from tickwise.schemas.decisions import Side
from tickwise.streams.config import DecisionConfig, ExecutionConfig
from tickwise.streams.operators.units import BPS_PER_UNIT

Target = Literal["long", "short", "flat", "keep"]


def round_trip_cost_bps(
    execution: ExecutionConfig, price: float, half_spread_bps: float | None = None
) -> float:
    """What entering and leaving one unit costs, in bps of ``price``.

    ``half_spread_bps`` is the quoted half spread when known; None takes the configured one.

    Examples
    --------
    >>> round_trip_cost_bps(ExecutionConfig(), 1650.0)   # 2 x (1.0 + 0.5 + 0.1)
    3.2
    """
    half = execution.half_spread_bps if half_spread_bps is None else half_spread_bps
    per_fill = half + execution.slippage_bps + execution.fee_bps
    if execution.fee_per_unit > 0.0 and price > 0.0:
        per_fill += execution.fee_per_unit / (price * execution.multiplier) * BPS_PER_UNIT
    return 2.0 * per_fill


def expected_edge_bps(task: str, score: float, move_bps: float) -> float:
    """The expected return of going long over the horizon, in bps (NaN without an estimate).

    ``score`` is P(up) for a classifier and the forecast in bps for a regressor.

    Examples
    --------
    >>> round(expected_edge_bps("classification", 0.6, move_bps=4.0), 9)   # (2 x 0.6 - 1) x 4
    0.8
    >>> expected_edge_bps("regression", -1.5, move_bps=4.0)
    -1.5
    """
    if task == "regression":
        return score
    return (2.0 * score - 1.0) * move_bps


@dataclass(slots=True)
class MoveEstimate:
    """Event-time EWMA of ``|forward return|`` (bps): every matured label weighs the same,
    decayed by the event time since it.

    Examples
    --------
    >>> m = MoveEstimate(tau_ns=10**9)
    >>> m.add(0, 2.0); m.add(0, 4.0); m.bps
    3.0
    """

    tau_ns: float
    total: float = 0.0
    weight: float = 0.0
    last_ns: int | None = None

    def add(self, ts_ns: int, move_bps: float) -> None:
        """Take one matured label's absolute move (labels mature in event-time order)."""
        if self.last_ns is not None:
            decay = math.exp(-max(ts_ns - self.last_ns, 0) / self.tau_ns)
            self.total *= decay
            self.weight *= decay
        self.total += move_bps
        self.weight += 1.0
        self.last_ns = ts_ns if self.last_ns is None else max(self.last_ns, ts_ns)

    @property
    def bps(self) -> float:
        """The typical absolute move; NaN before the first label."""
        return self.total / self.weight if self.weight > 0.0 else math.nan


@dataclass(frozen=True, slots=True)
class Intent:
    """Where the rule wants the position: long, short, flat, or kept as it is; and why."""

    target: Target
    reasons: tuple[str, ...] = ()


_BY_SIDE: Mapping[Side, Target] = MappingProxyType(
    {Side.BUY: "long", Side.SELL: "short", Side.FLAT: "keep"}
)


class DecisionRule:
    """Turn a signal into an intent, given the position held and since when.

    Plain numbers in, so a compiled engine can run the same rule over columns.

    Examples
    --------
    >>> rule = DecisionRule(DecisionConfig(), ExecutionConfig(), horizon_s=5.0)
    >>> rule.decide(Side.BUY, 0.8, ts_event_ns=0, held=0.0, held_since_ns=None, price=1650.0)
    Intent(target='keep', reasons=('edge +0.80 bps, |edge| < cost 3.20 bps: stay flat',))
    >>> rule.decide(Side.BUY, 3.6, 0, held=0.0, held_since_ns=None, price=1650.0).target
    'long'
    >>> rule.decide(Side.SELL, -3.6, 10**9, held=1.0, held_since_ns=0, price=1650.0).reasons
    ('held 1.00 s < min hold 5 s: keep long',)
    """

    def __init__(
        self, config: DecisionConfig, execution: ExecutionConfig, horizon_s: float
    ) -> None:
        self.config = config
        self.execution = execution
        hold_s = horizon_s if config.min_hold_s is None else config.min_hold_s
        self.min_hold_ns = round(hold_s * 1e9)
        self.min_hold_s = hold_s

    def decide(
        self,
        side: Side,
        edge_bps: float,
        ts_event_ns: int,
        held: float,
        held_since_ns: int | None,
        price: float,
        half_spread_bps: float | None = None,
    ) -> Intent:
        """The intent for a signal of ``side`` and expected edge ``edge_bps`` (see
        ``expected_edge_bps``) at ``ts_event_ns``, with ``held`` units (filled and in flight)
        since ``held_since_ns``."""
        cfg = self.config
        if cfg.rule == "threshold":
            return Intent(_BY_SIDE[side])
        edge = edge_bps
        if not math.isfinite(edge):
            return Intent("keep", ("no expected edge yet: no label has matured",))
        cost = round_trip_cost_bps(self.execution, price, half_spread_bps)
        entry = cfg.entry_cost_multiple * cost
        entry_text = _level("cost", cost, cfg.entry_cost_multiple)
        if held == 0.0:
            if edge > entry:
                return Intent("long", (f"edge {edge:+.2f} bps > {entry_text}: enter long",))
            if -edge > entry:
                return Intent(
                    "short", (f"edge {edge:+.2f} bps, |edge| > {entry_text}: enter short",)
                )
            return Intent("keep", (f"edge {edge:+.2f} bps, |edge| < {entry_text}: stay flat",))
        name: Target = "long" if held > 0.0 else "short"
        other: Target = "short" if held > 0.0 else "long"
        own = edge if held > 0.0 else -edge  # the edge in the position's favour
        if held_since_ns is not None:  # unknown for a position opened before it was tracked
            held_ns = ts_event_ns - held_since_ns
            if held_ns < self.min_hold_ns:
                return Intent(
                    "keep",
                    (f"held {held_ns / 1e9:.2f} s < min hold {self.min_hold_s:g} s: keep {name}",),
                )
        if -own > entry:
            return Intent(
                other,
                (f"edge {own:+.2f} bps for the {name}, against it > {entry_text}: go {other}",),
            )
        exit_level = cfg.exit_cost_multiple * cost
        exit_text = _level("exit", cost, cfg.exit_cost_multiple)
        if own < exit_level:
            return Intent("flat", (f"edge {own:+.2f} bps for the {name} < {exit_text}: exit",))
        return Intent("keep", (f"edge {own:+.2f} bps for the {name} >= {exit_text}: keep",))


def _level(name: str, cost: float, multiple: float) -> str:
    """``cost 3.20 bps``, or with a multiple ``exit 0 x cost 3.20 bps``."""
    if name == "cost" and multiple == 1.0:
        return f"cost {cost:.2f} bps"
    return f"{name} {multiple:g} x cost {cost:.2f} bps"
