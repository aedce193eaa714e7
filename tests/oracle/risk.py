"""Pre-trade risk one signal at a time: the per-tick ``RiskEngine`` the engine's risk kernel
(``streams.engine.risk``) is held to.

Limits apply per instrument (``RiskConfig`` with ``risk.instruments`` overrides). Trading
states: ACTIVE; REDUCING (only orders that bring the position towards zero), reached by the
drawdown or daily-loss stop; HALTED, by the kill switch (or a stop with ``loss_action =
"HALTED"``). Before the limits, the decision rule (``streams.operators.decision``) says where the
signal wants the position.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType

from tests.oracle.control import ControlView
from tickwise.schemas.decisions import Decision, RiskCheckResult, Side, Signal, TradingState
from tickwise.schemas.ticks import QuoteTick, TradeTick
from tickwise.streams.config import DecisionConfig, ExecutionConfig, RiskConfig
from tickwise.streams.operators.decision import DecisionRule, expected_edge_bps
from tickwise.streams.operators.execution import AccountView
from tickwise.streams.operators.risk import Reason, _shared_check, decision_of
from tickwise.streams.operators.state import InstrumentStateMixin
from tickwise.streams.operators.units import BPS_PER_UNIT

NS = 1e-9


@dataclass
class _RiskState:
    reference: float = math.nan
    prev_reference: float = math.nan
    touch_buy: float = math.nan
    touch_sell: float = math.nan
    last_ts_ns: int | None = None
    var_sum: float = 0.0  # event-time EWMA of squared log returns per second
    var_weight: float = 0.0
    order_times: deque[int] = field(default_factory=deque)
    drawdown_stop: bool = False
    daily_stop_day: int | None = None
    half_spread_bps: float = math.nan  # quoted, at the last tick; NaN after a trade
    held_since_ns: int | None = None  # decision time of the order that opened the position


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    """A decision with every check behind it and the trading state it was taken in."""

    decision: Decision
    checks: list[RiskCheckResult]
    trading_state: TradingState


def _check(name: str, ok: bool, reason: str, detail: str) -> RiskCheckResult:
    """A check result; identical ones are shared (they are immutable) to spare building ten
    validated objects per decision."""
    return _shared_check(name, bool(ok), None if ok else reason, detail)


# where an intent points the sizing: "flat" is sized as no position, see ``target``
_SIDES = MappingProxyType(
    {"long": Side.BUY, "short": Side.SELL, "keep": Side.FLAT, "flat": Side.FLAT}
)


class RiskEngine(InstrumentStateMixin):
    """Size a signal into a target position and check the order that gets there.

    A BUY aims for a long target, a SELL for a short one, FLAT holds what is held (filled plus
    in flight). ``fixed`` sizing targets ``target_size``; ``fixed_fraction`` and ``vol_target``
    scale with the signal's confidence and are capped by ``max_position`` and ``max_notional``.
    ``rule`` turns a signal into that side first; the pipeline gives the configured one, and
    without one the signal's side acts as it is (the ``threshold`` rule).

    Examples
    --------
    >>> from tickwise.schemas.decisions import Side
    >>> risk = RiskEngine(RiskConfig(target_size=2.0, max_position=1.0))
    >>> checks = risk.check("ES", Side.BUY)[1]
    >>> [(c.check, c.reason) for c in checks if not c.passed]
    [('max_position', 'MAX_POSITION')]
    """

    def __init__(
        self, config: RiskConfig, multiplier: float = 1.0, rule: DecisionRule | None = None
    ) -> None:
        self.config = config
        self.multiplier = multiplier
        self.rule = rule or DecisionRule(DecisionConfig(rule="threshold"), ExecutionConfig(), 0.0)
        self._limits: dict[str, RiskConfig] = {}
        self._state: dict[str, _RiskState] = {}

    def limits(self, instrument: str) -> RiskConfig:
        """The limits for ``instrument`` (global ones with its overrides), cached."""
        cfg = self._limits.get(instrument)
        if cfg is None:
            cfg = self._limits[instrument] = self.config.for_instrument(instrument)
        return cfg

    def _get(self, instrument: str) -> _RiskState:
        st = self._state.get(instrument)
        if st is None:
            st = self._state[instrument] = _RiskState()
        return st

    def on_tick(self, tick: TradeTick | QuoteTick) -> None:
        """Track the market the collar and the volatility estimate use (every clean tick)."""
        st = self._get(tick.instrument)
        price = tick.reference_price
        if st.last_ts_ns is not None and st.reference > 0.0 and price > 0.0:
            dt_s = max(tick.ts_event_ns - st.last_ts_ns, 0) * NS
            decay = math.exp(-dt_s / self.limits(tick.instrument).vol_tau_s)
            r = math.log(price) - math.log(st.reference)
            st.var_sum = st.var_sum * decay + r * r
            st.var_weight = st.var_weight * decay + dt_s
        st.prev_reference = st.reference
        st.reference = price
        if isinstance(tick, QuoteTick):
            st.touch_buy, st.touch_sell = tick.ask, tick.bid
            st.half_spread_bps = (tick.ask - tick.bid) / (tick.ask + tick.bid) * BPS_PER_UNIT
        else:
            st.touch_buy = st.touch_sell = tick.price
            st.half_spread_bps = math.nan
        st.last_ts_ns = (
            tick.ts_event_ns if st.last_ts_ns is None else max(st.last_ts_ns, tick.ts_event_ns)
        )

    def variance_per_s(self, instrument: str) -> float:
        """Event-time EWMA of the log-return variance per second (0 until two ticks)."""
        st = self._state.get(instrument)
        if st is None or st.var_weight <= 0.0:
            return 0.0
        return st.var_sum / st.var_weight

    def target(
        self,
        signal_side: Side,
        confidence: float,
        instrument: str,
        price: float,
        equity: float,
        held: float,
        fraction: float = 1.0,
        flatten: bool = False,
    ) -> float:
        """The signed position a signal asks for, after sizing and its caps.

        ``fraction`` scales the size: a canary model trades a fraction of the capital;
        ``flatten`` asks for no position at all (the decision rule's exit).
        """
        cfg = self.limits(instrument)
        if flatten:
            return 0.0
        if signal_side is Side.FLAT:
            return held
        if cfg.sizing == "fixed":
            size = cfg.target_size * fraction
        else:
            unit_value = price * self.multiplier
            if cfg.sizing == "fixed_fraction":
                size = cfg.fraction * confidence * max(equity, 0.0) / unit_value * fraction
            else:
                sigma = math.sqrt(self.variance_per_s(instrument) * cfg.vol_horizon_s)
                size = confidence * cfg.vol_target / (unit_value * sigma) if sigma > 0 else 0.0
                size *= fraction
            size = min(size, cfg.max_position)
            if cfg.max_notional is not None:
                size = min(size, cfg.max_notional / unit_value)
            if cfg.lot_size > 0.0:
                size = math.floor(size / cfg.lot_size + 1e-9) * cfg.lot_size
        return size if signal_side is Side.BUY else -size

    def check(
        self,
        instrument: str,
        side: Side,
        confidence: float = 1.0,
        price: float = math.nan,
        account: AccountView | None = None,
        control: ControlView | None = None,
        model_id: str = "",
        ts_event_ns: int = 0,
        fraction: float = 1.0,
        flatten: bool = False,
    ) -> tuple[float, list[RiskCheckResult], TradingState]:
        """Return the signed order quantity, the checks' verdicts (none without an order) and
        the trading state; ``flatten`` aims for no position whatever ``side`` says."""
        cfg = self.limits(instrument)
        st = self._get(instrument)
        control = control or ControlView()
        held = account.position + account.pending_quantity if account else 0.0
        equity = account.equity if account else 0.0
        px = price if price == price else st.reference
        target = self.target(side, confidence, instrument, px, equity, held, fraction, flatten)
        # trading state: loss stops are sticky (drawdown until cleared, daily loss for the day);
        # an operator's kill_switch_off reaching this instrument clears them
        if any(a.command == "kill_switch_off" for a in control.newly_applied):
            st.drawdown_stop, st.daily_stop_day = False, None
        if account is not None and cfg.max_drawdown is not None:
            st.drawdown_stop = st.drawdown_stop or account.drawdown > cfg.max_drawdown
        day = account.trading_day if account else None
        if (
            account is not None
            and cfg.max_daily_loss is not None
            and -account.day_pnl > cfg.max_daily_loss
        ):
            st.daily_stop_day = day
        daily_stop = st.daily_stop_day is not None and st.daily_stop_day == day
        loss_state = TradingState(cfg.loss_action) if (st.drawdown_stop or daily_stop) else None
        if control.halted_by is not None or loss_state is TradingState.HALTED:
            state = TradingState.HALTED
        elif loss_state is TradingState.REDUCING:
            state = TradingState.REDUCING
        else:
            state = TradingState.ACTIVE
        if state is TradingState.REDUCING and target * held < 0.0:
            target = 0.0  # a reversal while reducing only goes as far as flat
        delta = target - held
        if abs(delta) < cfg.min_order_size:
            delta, target = 0.0, held
        order = delta != 0.0
        if not order:
            # Pre-trade checks guard orders; a hold sends none, so there is nothing to check
            # (and ten passing verdicts per tick would bury the ones that matter in the audit).
            return delta, [], state
        reducing = abs(target) < abs(held) and (target * held >= 0.0)
        loss_blocks = loss_state is not None and (loss_state is TradingState.HALTED or not reducing)

        allowed = cfg.allowed_instruments
        unit_value = px * self.multiplier
        notional = abs(target) * unit_value
        expected = st.touch_buy if delta > 0 else st.touch_sell
        collar_ref = st.prev_reference
        collar_bps = (
            abs(expected - collar_ref) / collar_ref * BPS_PER_UNIT if collar_ref > 0 else 0.0
        )
        window_ns = round(cfg.throttle_window_s * 1e9)
        while st.order_times and st.order_times[0] <= ts_event_ns - window_ns:
            st.order_times.popleft()
        kill = control.halted_by
        checks = [
            _check(
                "allowed_instrument",
                allowed is None or instrument in allowed,
                Reason.INSTRUMENT_NOT_ALLOWED,
                "any instrument" if allowed is None else f"allowed: {', '.join(allowed)}",
            ),
            _check(
                "model_stage",
                control.demoted_by is None,
                Reason.MODEL_SHADOW,
                f"{model_id} demoted: {control.demoted_by.reason}" if control.demoted_by else "",
            ),
            _check(
                "kill_switch",
                kill is None,
                Reason.KILL_SWITCH,
                f"{kill.command_id} ({kill.scope}): {kill.reason}" if kill else "off",
            ),
            _check(
                "max_drawdown",
                not (loss_blocks and st.drawdown_stop),
                Reason.MAX_DRAWDOWN,
                f"drawdown {account.drawdown:.2f}, limit {cfg.max_drawdown}" if account else "",
            ),
            _check(
                "daily_loss",
                not (loss_blocks and daily_stop),
                Reason.DAILY_LOSS,
                f"day P&L {account.day_pnl:.2f}, limit {cfg.max_daily_loss}" if account else "",
            ),
            _check(
                "max_order_size",
                abs(delta) <= cfg.max_order_size,
                Reason.MAX_ORDER_SIZE,
                f"order {abs(delta):g}, limit {cfg.max_order_size:g}",
            ),
            _check(
                "max_position",
                abs(target) <= cfg.max_position or abs(target) <= abs(held),
                Reason.MAX_POSITION,
                f"target {target:g}, limit {cfg.max_position:g}",
            ),
            _check(
                "max_notional",
                cfg.max_notional is None
                or not notional > cfg.max_notional
                or abs(target) <= abs(held),
                Reason.MAX_NOTIONAL,
                f"notional {notional:.2f}, limit {cfg.max_notional}",
            ),
            _check(
                "price_collar",
                cfg.collar_bps is None or collar_bps <= cfg.collar_bps,
                Reason.PRICE_COLLAR,
                f"{collar_bps:.1f} bps from last trade/mid, limit {cfg.collar_bps}",
            ),
            _check(
                "order_rate",
                cfg.max_orders == 0 or len(st.order_times) < cfg.max_orders,
                Reason.ORDER_RATE,
                f"{len(st.order_times)} orders in {cfg.throttle_window_s:g} s, "
                f"limit {cfg.max_orders}",
            ),
        ]
        return delta, checks, state

    def evaluate(
        self,
        signal: Signal,
        price: float,
        account: AccountView | None = None,
        control: ControlView | None = None,
        move_bps: float = math.nan,
    ) -> RiskVerdict:
        """Decide on ``signal`` given the account (filled and pending) and the controls.

        ``move_bps`` is the typical absolute move over the horizon (``ModelStage.move_bps``),
        which prices a classifier's probability for the decision rule.
        """
        held = account.position + account.pending_quantity if account else 0.0
        st = self._get(signal.instrument)
        intent = self.rule.decide(
            signal.side,
            expected_edge_bps(signal.task, signal.score, move_bps),
            signal.ts_event_ns,
            held,
            st.held_since_ns,
            price if price > 0.0 else st.reference,
            None if math.isnan(st.half_spread_bps) else st.half_spread_bps,
        )
        delta, checks, state = self.check(
            signal.instrument,
            _SIDES[intent.target],
            signal.confidence,
            price,
            account,
            control,
            signal.model_id,
            signal.ts_event_ns,
            signal.capital_fraction,
            intent.target == "flat",
        )
        approved = all(c.passed for c in checks)
        if approved and delta != 0.0:
            st.order_times.append(signal.ts_event_ns)
            after = held + delta
            if after == 0.0:
                st.held_since_ns = None
            elif held == 0.0 or (after > 0.0) != (held > 0.0):
                st.held_since_ns = signal.ts_event_ns
        decision = decision_of(signal, delta, approved, price, held, checks, list(intent.reasons))
        return RiskVerdict(decision, checks, state)
