"""Pre-trade risk: every signal becomes a decision, approved or rejected with reasons."""

from __future__ import annotations

from schemas.decisions import Action, Decision, RiskCheckResult, Side, Signal
from streams.config import RiskConfig
from streams.operators.state import InstrumentStateMixin


class RiskEngine(InstrumentStateMixin):
    """Turn a signal into a target position and check the order that gets there.

    A BUY aims for ``+target_size``, a SELL for ``-target_size``, FLAT holds what is held. The
    skeleton treats approved orders as filled at the tick's price (paper execution comes later),
    so the position here is the position the next decision starts from.

    Examples
    --------
    >>> from schemas.decisions import Side
    >>> risk = RiskEngine(RiskConfig(target_size=2.0, max_position=1.0))
    >>> checks = risk.check("ES", Side.BUY)[1]
    >>> [(c.check, c.passed, c.reason) for c in checks]
    [('max_position', False, 'MAX_POSITION'), ('max_order_size', True, None)]
    """

    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        self._state: dict[str, float] = {}

    def position(self, instrument: str) -> float:
        return self._state.get(instrument, 0.0)

    def check(
        self, instrument: str, side: Side, fraction: float = 1.0
    ) -> tuple[float, list[RiskCheckResult]]:
        """Return the signed order quantity the signal asks for and every check's verdict.

        ``fraction`` scales the target size (a canary model trades a fraction of capital).
        """
        cfg = self.config
        held = self.position(instrument)
        size = cfg.target_size * fraction
        target = {Side.BUY: size, Side.SELL: -size, Side.FLAT: held}[side]
        delta = target - held
        checks = [
            RiskCheckResult(
                check="max_position",
                passed=abs(target) <= cfg.max_position,
                reason=None if abs(target) <= cfg.max_position else "MAX_POSITION",
                detail=f"target {target:g}, limit {cfg.max_position:g}",
            ),
            RiskCheckResult(
                check="max_order_size",
                passed=abs(delta) <= cfg.max_order_size,
                reason=None if abs(delta) <= cfg.max_order_size else "MAX_ORDER_SIZE",
                detail=f"order {abs(delta):g}, limit {cfg.max_order_size:g}",
            ),
        ]
        return delta, checks

    def on_signal(self, signal: Signal, price: float) -> tuple[Decision, list[RiskCheckResult]]:
        """Decide on ``signal``; an approved order moves the position."""
        held = self.position(signal.instrument)
        delta, checks = self.check(signal.instrument, signal.side, signal.capital_fraction)
        approved = all(c.passed for c in checks)
        if delta > 0:
            action = Action.BUY
        elif delta < 0:
            action = Action.SELL
        else:
            action = Action.HOLD
        after = held + delta if approved else held
        self._state[signal.instrument] = after
        decision = Decision(
            decision_id=f"dec-{signal.tick_id}-{signal.model_id}-v{signal.model_version}",
            signal_id=signal.signal_id,
            instrument=signal.instrument,
            tick_id=signal.tick_id,
            ts_event_ns=signal.ts_event_ns,
            model_id=signal.model_id,
            model_version=signal.model_version,
            score=signal.score,
            side=signal.side,
            action=action,
            quantity=abs(delta),
            price=price,
            approved=approved,
            reject_reasons=[c.reason for c in checks if c.reason is not None],
            position_before=held,
            position_after=after,
        )
        return decision, checks
