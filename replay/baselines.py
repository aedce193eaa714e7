"""Baselines in the same report: does the model add anything over doing nothing clever?

Both baselines trade through their own ``PaperBroker`` (the execution operator the pipeline
uses), on the same ticks, with the same latency, spread, slippage and fees, so the only
difference from the model is where the orders come from:

* **buy and hold**: buy ``risk.target_size`` of each instrument at its first decision after
  warm-up and keep it;
* **random signals**: at each decision tick, trade with probability equal to the model's own
  running trade rate (orders per decision so far) plus a feedback term that pulls the random
  order count back to the model's, so turnover matches closely (both are in the report) while
  the timing stays independent of prices; each trade takes a random side from flat and
  reverses the position after that, like the model's ``±target_size`` positions. Seeded, so a
  run is reproducible.
"""

from __future__ import annotations

import random

from tickwise.replay.report import CurveAccumulator, Decimator, ReportSettings
from tickwise.schemas.decisions import Action, Decision, Side
from tickwise.schemas.ticks import QuoteTick, TradeTick
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.operators.execution import PaperBroker

NAMES = ("buy_and_hold", "random")
FEEDBACK_DECISIONS = 50  # how fast the random order count is pulled back to the model's


def _order(
    name: str, instrument: str, tick_id: str, ts_ns: int, price: float, before: float, after: float
) -> Decision:
    delta = after - before
    side = Side.BUY if delta > 0 else Side.SELL
    return Decision(
        decision_id=f"{name}-{tick_id}",
        signal_id=f"{name}-{tick_id}",
        instrument=instrument,
        tick_id=tick_id,
        ts_event_ns=ts_ns,
        model_id=name,
        model_version=1,
        score=0.5,
        side=side,
        action=Action.BUY if delta > 0 else Action.SELL,
        quantity=abs(delta),
        price=price,
        approved=True,
        reject_reasons=[],
        position_before=before,
        position_after=after,
    )


class Baselines:
    """The buy-and-hold and random-signal accounts, fed the same ticks and decision times."""

    def __init__(self, config: TickwiseConfig, settings: ReportSettings) -> None:
        ex = config.execution
        self.initial_cash = ex.initial_cash
        self.size = config.risk.target_size
        self.brokers = {name: PaperBroker(ex) for name in NAMES}
        self.curves = {
            name: CurveAccumulator(settings, ex.initial_cash, ex.multiplier) for name in NAMES
        }
        self.plots = {name: Decimator(settings.plot_points) for name in NAMES}
        self._pnl: dict[str, dict[str, float]] = {name: {} for name in NAMES}
        self._rng = random.Random(settings.seed)
        self._marks: dict[str, float] = {}
        self._bought: set[str] = set()
        self._decisions = 0
        self._model_orders = 0
        self._random_orders = 0
        self.started = False

    def _target(self, name: str, instrument: str) -> float:
        broker = self.brokers[name]
        return broker.position(instrument) + broker.pending_quantity(instrument)

    def on_tick(self, tick: TradeTick | QuoteTick, now_ns: int) -> None:
        """Fill due baseline orders and mark the accounts; ``now_ns``: the report's clock."""
        mark = tick.reference_price
        unchanged = self._marks.get(tick.instrument) == mark
        self._marks[tick.instrument] = mark
        for name, broker in self.brokers.items():
            before = broker.position(tick.instrument)
            fills = broker.on_tick(tick)
            for fill in fills:
                if self.started:
                    self.curves[name].on_fill(fill, before)
                before = fill.position_after
            if not self.started or (unchanged and not fills and tick.instrument in self._pnl[name]):
                continue  # the account cannot have changed
            pnl = self._pnl[name]
            pnl[tick.instrument] = broker.account(tick.instrument).equity - self.initial_cash
            holding = any(broker.position(i) != 0.0 for i in pnl)
            equity = self.initial_cash + sum(pnl.values())
            curve = self.curves[name]
            if (equity, holding) != (curve.last, curve.holding):
                curve.on_equity(now_ns, equity, holding)
                self.plots[name].add(now_ns, equity)

    def on_decision(self, decision: Decision, model_ordered: bool) -> None:
        """Let each baseline act at the model's decision tick."""
        if not self.started:  # the baselines' curves start with the model's, flat
            self.started = True
            for curve in self.curves.values():
                curve.on_equity(decision.ts_event_ns, self.initial_cash, False)
        inst, tick_id, ts, price = (
            decision.instrument,
            decision.tick_id,
            decision.ts_event_ns,
            decision.price,
        )
        if inst not in self._bought:
            self._bought.add(inst)
            held = self._target("buy_and_hold", inst)
            self.brokers["buy_and_hold"].submit(
                _order("bh", inst, tick_id, ts, price, held, self.size)
            )
        self._decisions += 1
        self._model_orders += model_ordered
        gap = self._model_orders - self._random_orders
        rate = self._model_orders / self._decisions + gap / FEEDBACK_DECISIONS
        if self._rng.random() < rate:
            self._random_orders += 1
            held = self._target("random", inst)
            target = -held if held else self._rng.choice((self.size, -self.size))
            self.brokers["random"].submit(_order("rnd", inst, tick_id, ts, price, held, target))

    def finish(self, ts_ns: int) -> None:
        """Extend every baseline curve to the run's last tick."""
        for curve in self.curves.values():
            if curve.end_ns is not None and curve.end_ns < ts_ns:
                curve.on_equity(ts_ns, curve.last, curve.holding)

    def figures(self) -> dict[str, dict[str, object]]:
        """Report figures per baseline."""
        return {name: curve.figures() for name, curve in self.curves.items()}
