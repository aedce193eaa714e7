"""Pre-trade risk and the decision rule as kernel functions: ``RiskEngine`` and
``DecisionRule`` over arrays, for the fused decide kernel (docs/ENGINE.md) to call per row.

Everything numeric is decided here in the per-tick operators' order of floating-point
operations: the market state risk tracks, the rule's intent, the sizing, the ten checks, the
trading state, the approval and the throttle. Texts (the rule's reason, each check's detail)
are rendered afterwards from the numbers each call leaves in ``out``, only for the decisions
that are published; ``RiskKernel.render`` writes them as the per-tick engine does, and the
oracle test holds both equal decision for decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tickwise.streams.config import DecisionConfig, ExecutionConfig, RiskConfig
from tickwise.streams.engine.batch import SymbolTable
from tickwise.streams.engine.jit import kernel
from tickwise.streams.operators.units import BPS_PER_UNIT

NONE = np.iinfo(np.int64).min  # an absent time or day
# intents of the decision rule
KEEP, LONG, SHORT, FLAT = range(4)
# reasons of the decision rule (texts in ``_RULE_TEXT``)
R_NONE, R_NO_EDGE, R_ENTER_LONG, R_ENTER_SHORT, R_STAY_FLAT, R_MIN_HOLD = range(6)
R_REVERSE, R_EXIT, R_KEEP = range(6, 9)
# sides of a signal
BUY, SELL, SIDE_FLAT = range(3)
# trading states
ACTIVE, REDUCING, HALTED = range(3)
CHECKS = (
    "allowed_instrument",
    "model_stage",
    "kill_switch",
    "max_drawdown",
    "daily_loss",
    "max_order_size",
    "max_position",
    "max_notional",
    "price_collar",
    "order_rate",
)
# limits, by column of ``lim`` (NaN: the limit is unset)
(
    L_TARGET, L_MAX_POS, L_MAX_ORDER, L_MAX_NOTIONAL, L_COLLAR, L_MAX_ORDERS, L_DRAWDOWN,
    L_DAILY, L_LOSS_HALTS, L_SIZING, L_FRACTION, L_VOL_TARGET, L_VOL_HORIZON, L_VOL_TAU,
    L_LOT, L_MIN_ORDER, L_ALLOWED,
) = range(17)  # fmt: skip
N_LIMITS = 17
SIZING = {"fixed": 0.0, "fixed_fraction": 1.0, "vol_target": 2.0}
# market state, by column of ``mkt``
M_REF, M_PREV, M_TOUCH_BUY, M_TOUCH_SELL, M_VAR_SUM, M_VAR_WEIGHT, M_HALF_SPREAD = range(7)
# what a call leaves for the texts and the decision, by position in ``out``
(
    O_DELTA, O_TARGET, O_STATE, O_INTENT, O_REASON, O_EDGE, O_LEVEL, O_HELD_NS, O_COST,
    O_NOTIONAL, O_COLLAR, O_N_ORDERS, O_APPROVED, O_HAS_CHECKS,
) = range(14)  # fmt: skip
N_OUT = 14 + len(CHECKS)  # then one pass (1.0) or fail (0.0) per check


@dataclass(slots=True)
class RiskState:
    """Risk's memory, a row per instrument."""

    mkt: np.ndarray  # float64 [instrument, 7]
    last_ts: np.ndarray  # int64, NONE before the first tick
    drawdown_stop: np.ndarray  # bool
    daily_stop_day: np.ndarray  # int64, NONE: no daily stop
    held_since: np.ndarray  # int64, NONE: flat or unknown
    orders: np.ndarray  # int64 [instrument, capacity] ring of approved order times
    orders_head: np.ndarray
    orders_len: np.ndarray


@kernel()
def on_tick(mkt, last_ts, lim, k, ts, trade, ref, bid, ask) -> None:  # pragma: no cover
    """Track the market the collar and the volatility estimate use (every clean tick)."""
    if last_ts[k] != NONE and mkt[k, M_REF] > 0.0 and ref > 0.0:
        gap = ts - last_ts[k]
        dt_s = (gap if gap > 0 else 0) * 1e-9
        decay = math.exp(-dt_s / lim[k, L_VOL_TAU])
        r = math.log(ref) - math.log(mkt[k, M_REF])
        mkt[k, M_VAR_SUM] = mkt[k, M_VAR_SUM] * decay + r * r
        mkt[k, M_VAR_WEIGHT] = mkt[k, M_VAR_WEIGHT] * decay + dt_s
    mkt[k, M_PREV] = mkt[k, M_REF]
    mkt[k, M_REF] = ref
    if trade:
        mkt[k, M_TOUCH_BUY] = ref
        mkt[k, M_TOUCH_SELL] = ref
        mkt[k, M_HALF_SPREAD] = np.nan
    else:
        mkt[k, M_TOUCH_BUY] = ask
        mkt[k, M_TOUCH_SELL] = bid
        mkt[k, M_HALF_SPREAD] = (ask - bid) / (ask + bid) * BPS_PER_UNIT
    if last_ts[k] == NONE or ts > last_ts[k]:
        last_ts[k] = ts


@kernel()
def _variance_per_s(mkt, k) -> float:  # pragma: no cover - compiled
    if mkt[k, M_VAR_WEIGHT] <= 0.0:
        return 0.0
    return mkt[k, M_VAR_SUM] / mkt[k, M_VAR_WEIGHT]


@kernel()
def _target(
    mkt, lim, mult, k, side, confidence, price, equity, held, fraction, flatten
):  # pragma: no cover - compiled  # fmt: skip
    if flatten:
        return 0.0
    if side == SIDE_FLAT:
        return held
    sizing = lim[k, L_SIZING]
    if sizing == 0.0:
        size = lim[k, L_TARGET] * fraction
    else:
        unit_value = price * mult
        if sizing == 1.0:
            positive = 0.0 if equity < 0.0 else equity  # Python's max(equity, 0.0)
            size = lim[k, L_FRACTION] * confidence * positive / unit_value * fraction
        else:
            sigma = math.sqrt(_variance_per_s(mkt, k) * lim[k, L_VOL_HORIZON])
            vol_size = confidence * lim[k, L_VOL_TARGET]
            size = vol_size / (unit_value * sigma) if sigma > 0 else 0.0
            size *= fraction
        if lim[k, L_MAX_POS] < size:  # Python's min(size, cap): size unless cap is smaller
            size = lim[k, L_MAX_POS]
        if not np.isnan(lim[k, L_MAX_NOTIONAL]):
            cap = lim[k, L_MAX_NOTIONAL] / unit_value
            if cap < size:
                size = cap
        if lim[k, L_LOT] > 0.0:
            size = math.floor(size / lim[k, L_LOT] + 1e-9) * lim[k, L_LOT]
    return size if side == BUY else -size


@kernel()
def _rule(rule_edge, cost_args, entry_mult, exit_mult, min_hold_ns, side, edge, ts, held,
          held_since, price, half_spread, out):  # pragma: no cover  # fmt: skip
    """The decision rule: an intent, with its reason's code and numbers in ``out``."""
    if not rule_edge:
        out[O_REASON] = R_NONE
        return LONG if side == BUY else SHORT if side == SELL else KEEP
    if not math.isfinite(edge):
        out[O_REASON] = R_NO_EDGE
        return KEEP
    half = cost_args[0] if np.isnan(half_spread) else half_spread
    per_fill = half + cost_args[1] + cost_args[2]
    if cost_args[3] > 0.0 and price > 0.0:
        per_fill += cost_args[3] / (price * cost_args[4]) * BPS_PER_UNIT
    cost = 2.0 * per_fill
    entry = entry_mult * cost
    out[O_COST] = cost
    out[O_EDGE] = edge
    if held == 0.0:
        if edge > entry:
            out[O_REASON] = R_ENTER_LONG
            return LONG
        if -edge > entry:
            out[O_REASON] = R_ENTER_SHORT
            return SHORT
        out[O_REASON] = R_STAY_FLAT
        return KEEP
    own = edge if held > 0.0 else -edge
    out[O_EDGE] = own
    if held_since != NONE:
        held_ns = ts - held_since
        if held_ns < min_hold_ns:
            out[O_REASON] = R_MIN_HOLD
            out[O_HELD_NS] = held_ns
            return KEEP
    if -own > entry:
        out[O_REASON] = R_REVERSE
        return SHORT if held > 0.0 else LONG
    exit_level = exit_mult * cost
    if own < exit_level:
        out[O_REASON] = R_EXIT
        return FLAT
    out[O_REASON] = R_KEEP
    return KEEP


@kernel()
def evaluate(
    mkt, lim, st_dd, st_daily, st_held_since, orders, orders_head, orders_len,
    mult, rule_edge, cost_args, entry_mult, exit_mult, min_hold_ns, windows,
    k, side, edge, confidence, fraction, ts, price,
    position, pending, equity, drawdown, day_pnl, trading_day, has_account,
    halted, demoted, cleared, out,
):  # pragma: no cover - compiled  # fmt: skip
    """Decide on one signal of instrument ``k``; False when the order ring is full (grow it).

    ``position``/``pending``/``equity``/``drawdown``/``day_pnl``/``trading_day`` describe the
    account (``has_account`` False: none); ``halted``/``demoted`` are the control view, and
    ``cleared`` says a kill switch was switched off at this tick (it clears loss stops).
    """
    cap = orders.shape[1]
    held = position + pending if has_account else 0.0
    ref = mkt[k, M_REF]
    intent = _rule(rule_edge, cost_args, entry_mult, exit_mult, min_hold_ns, side, edge, ts,
                   held, st_held_since[k], price if price > 0.0 else ref,
                   mkt[k, M_HALF_SPREAD], out)  # fmt: skip
    out[O_INTENT] = intent
    sized_side = BUY if intent == LONG else SELL if intent == SHORT else SIDE_FLAT
    eq = equity if has_account else 0.0
    px = price if price == price else ref
    target = _target(mkt, lim, mult, k, sized_side, confidence, px, eq, held, fraction,
                     intent == FLAT)  # fmt: skip
    if cleared:
        st_dd[k] = False
        st_daily[k] = NONE
    if has_account and not np.isnan(lim[k, L_DRAWDOWN]):
        st_dd[k] = st_dd[k] or drawdown > lim[k, L_DRAWDOWN]
    day = trading_day if has_account else NONE
    if has_account and not np.isnan(lim[k, L_DAILY]) and -day_pnl > lim[k, L_DAILY]:
        st_daily[k] = day
    daily_stop = st_daily[k] != NONE and st_daily[k] == day
    loss = st_dd[k] or daily_stop
    loss_halts = lim[k, L_LOSS_HALTS] == 1.0
    if halted or (loss and loss_halts):
        state = HALTED
    elif loss:
        state = REDUCING
    else:
        state = ACTIVE
    if state == REDUCING and target * held < 0.0:
        target = 0.0
    delta = target - held
    if abs(delta) < lim[k, L_MIN_ORDER]:
        delta, target = 0.0, held
    out[O_DELTA], out[O_TARGET], out[O_STATE] = delta, target, state
    out[O_HAS_CHECKS] = 0.0
    out[O_APPROVED] = 1.0
    if delta == 0.0:
        return True
    if orders_len[k] == cap:
        return False
    out[O_HAS_CHECKS] = 1.0
    reducing = abs(target) < abs(held) and (target * held >= 0.0)
    loss_blocks = loss and (loss_halts or not reducing)
    unit_value = px * mult
    notional = abs(target) * unit_value
    expected = mkt[k, M_TOUCH_BUY] if delta > 0 else mkt[k, M_TOUCH_SELL]
    collar_ref = mkt[k, M_PREV]
    collar = abs(expected - collar_ref) / collar_ref * BPS_PER_UNIT if collar_ref > 0 else 0.0
    window_ns = windows[k]
    while orders_len[k] > 0 and orders[k, orders_head[k]] <= ts - window_ns:
        orders_head[k] = (orders_head[k] + 1) % cap
        orders_len[k] -= 1
    n_orders = orders_len[k]
    max_orders = lim[k, L_MAX_ORDERS]
    max_notional = lim[k, L_MAX_NOTIONAL]
    max_collar = lim[k, L_COLLAR]
    out[14] = lim[k, L_ALLOWED]
    out[15] = 0.0 if demoted else 1.0
    out[16] = 0.0 if halted else 1.0
    out[17] = 0.0 if loss_blocks and st_dd[k] else 1.0
    out[18] = 0.0 if loss_blocks and daily_stop else 1.0
    out[19] = 1.0 if abs(delta) <= lim[k, L_MAX_ORDER] else 0.0
    out[20] = 1.0 if abs(target) <= lim[k, L_MAX_POS] or abs(target) <= abs(held) else 0.0
    ok = np.isnan(max_notional) or not notional > max_notional or abs(target) <= abs(held)
    out[21] = 1.0 if ok else 0.0
    out[22] = 1.0 if np.isnan(max_collar) or collar <= max_collar else 0.0
    out[23] = 1.0 if max_orders == 0 or n_orders < max_orders else 0.0
    approved = True
    for c in range(14, N_OUT):
        approved = approved and out[c] == 1.0
    out[O_NOTIONAL], out[O_COLLAR], out[O_N_ORDERS] = notional, collar, n_orders
    out[O_APPROVED] = 1.0 if approved else 0.0
    if approved:
        tail = (orders_head[k] + orders_len[k]) % cap
        orders[k, tail] = ts
        orders_len[k] += 1
        after = held + delta
        if after == 0.0:
            st_held_since[k] = NONE
        elif held == 0.0 or (after > 0.0) != (held > 0.0):
            st_held_since[k] = ts
    return True


def limits_of(config: RiskConfig, names: list[str]) -> np.ndarray:
    """The limits of each instrument, overrides applied, a row each."""
    rows = []
    for name in names:
        c = config.for_instrument(name)
        allowed = config.allowed_instruments
        rows.append(
            [
                c.target_size, c.max_position, c.max_order_size,
                math.nan if c.max_notional is None else c.max_notional,
                math.nan if c.collar_bps is None else c.collar_bps,
                c.max_orders,
                math.nan if c.max_drawdown is None else c.max_drawdown,
                math.nan if c.max_daily_loss is None else c.max_daily_loss,
                1.0 if c.loss_action == "HALTED" else 0.0,
                SIZING[c.sizing], c.fraction, c.vol_target, c.vol_horizon_s, c.vol_tau_s,
                c.lot_size, c.min_order_size,
                1.0 if allowed is None or name in allowed else 0.0,
            ]
        )  # fmt: skip
    return np.array(rows, dtype=np.float64).reshape(len(names), N_LIMITS)


class RiskKernel:
    """The kernel functions with their arrays, for one partition's instruments."""

    def __init__(
        self,
        config: RiskConfig,
        execution: ExecutionConfig,
        decision: DecisionConfig,
        horizon_s: float,
        symbols: SymbolTable,
    ) -> None:
        self.config, self.execution, self.decision = config, execution, decision
        self.symbols = symbols
        self.mult = execution.multiplier
        self.rule_edge = decision.rule == "edge"
        self.cost_args = np.array(
            [
                execution.half_spread_bps,
                execution.slippage_bps,
                execution.fee_bps,
                execution.fee_per_unit,
                execution.multiplier,
            ]
        )
        hold_s = horizon_s if decision.min_hold_s is None else decision.min_hold_s
        self.min_hold_s = hold_s
        self.min_hold_ns = round(hold_s * 1e9)
        self.lim = limits_of(config, [])
        self.windows = np.zeros(0, np.int64)
        self.state = RiskState(
            np.zeros((0, 7)), np.zeros(0, np.int64), np.zeros(0, np.bool_),
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 32), np.int64),
            np.zeros(0, np.int64), np.zeros(0, np.int64),
        )  # fmt: skip

    def sync(self) -> None:
        """Room and limits for every instrument the symbol table knows."""
        n, s = len(self.symbols), self.state
        extra = n - s.last_ts.size
        if extra <= 0:
            return
        self.lim = limits_of(self.config, self.symbols.names)
        self.windows = np.array(
            [
                round(self.config.for_instrument(x).throttle_window_s * 1e9)
                for x in self.symbols.names
            ],
            np.int64,
        )
        mkt = np.zeros((extra, 7))
        mkt[:, [M_REF, M_PREV, M_TOUCH_BUY, M_TOUCH_SELL, M_HALF_SPREAD]] = np.nan
        s.mkt = np.concatenate([s.mkt, mkt])
        none = np.full(extra, NONE, np.int64)
        s.last_ts = np.concatenate([s.last_ts, none])
        s.drawdown_stop = np.concatenate([s.drawdown_stop, np.zeros(extra, np.bool_)])
        s.daily_stop_day = np.concatenate([s.daily_stop_day, none])
        s.held_since = np.concatenate([s.held_since, none])
        s.orders = np.concatenate([s.orders, np.zeros((extra, s.orders.shape[1]), np.int64)])
        s.orders_head = np.concatenate([s.orders_head, np.zeros(extra, np.int64)])
        s.orders_len = np.concatenate([s.orders_len, np.zeros(extra, np.int64)])

    def widen(self) -> None:
        """Double the order-time rings, each laid out from slot 0."""
        s = self.state
        cap = s.orders.shape[1]
        order = (s.orders_head[:, None] + np.arange(cap)[None, :]) % cap
        wide = np.zeros((order.shape[0], 2 * cap), np.int64)
        wide[:, :cap] = s.orders[np.arange(order.shape[0])[:, None], order]
        s.orders, s.orders_head[:] = wide, 0


_INTENT = {KEEP: "keep", LONG: "long", SHORT: "short", FLAT: "flat"}
_STATE = {ACTIVE: "ACTIVE", REDUCING: "REDUCING", HALTED: "HALTED"}


def rule_reasons(kernel: RiskKernel, out: np.ndarray, held: float) -> list[str]:
    """The decision rule's reason, in the words of ``DecisionRule.decide``."""
    from tickwise.streams.operators.decision import _level

    code = int(out[O_REASON])
    if code == R_NONE:
        return []
    if code == R_NO_EDGE:
        return ["no expected edge yet: no label has matured"]
    cfg = kernel.decision
    cost, edge = float(out[O_COST]), float(out[O_EDGE])
    entry_text = _level("cost", cost, cfg.entry_cost_multiple)
    name = "long" if held > 0.0 else "short"
    other = "short" if held > 0.0 else "long"
    if code == R_ENTER_LONG:
        return [f"edge {edge:+.2f} bps > {entry_text}: enter long"]
    if code == R_ENTER_SHORT:
        return [f"edge {edge:+.2f} bps, |edge| > {entry_text}: enter short"]
    if code == R_STAY_FLAT:
        return [f"edge {edge:+.2f} bps, |edge| < {entry_text}: stay flat"]
    if code == R_MIN_HOLD:
        held_ns = int(out[O_HELD_NS])
        return [f"held {held_ns / 1e9:.2f} s < min hold {kernel.min_hold_s:g} s: keep {name}"]
    if code == R_REVERSE:
        return [f"edge {edge:+.2f} bps for the {name}, against it > {entry_text}: go {other}"]
    exit_text = _level("exit", cost, cfg.exit_cost_multiple)
    if code == R_EXIT:
        return [f"edge {edge:+.2f} bps for the {name} < {exit_text}: exit"]
    return [f"edge {edge:+.2f} bps for the {name} >= {exit_text}: keep"]


def check_details(
    kernel: RiskKernel,
    instrument: str,
    out: np.ndarray,
    held: float,
    account: tuple[float, float] | None,
    model_id: str,
    halted_by: object | None,
    demoted_by: object | None,
) -> list[tuple[str, bool, str | None, str]]:
    """Each check's (name, passed, reason code, detail) as ``RiskEngine.check`` words them;
    ``account`` is (drawdown, day P&L) when there is one."""
    from tickwise.streams.operators.risk import Reason

    if out[O_HAS_CHECKS] == 0.0:
        return []
    cfg = kernel.config.for_instrument(instrument)
    allowed = kernel.config.allowed_instruments
    delta, target = float(out[O_DELTA]), float(out[O_TARGET])
    details = [
        "any instrument" if allowed is None else f"allowed: {', '.join(allowed)}",
        f"{model_id} demoted: {demoted_by.reason}" if demoted_by else "",  # type: ignore[attr-defined]
        f"{halted_by.command_id} ({halted_by.scope}): {halted_by.reason}"  # type: ignore[attr-defined]
        if halted_by
        else "off",
        f"drawdown {account[0]:.2f}, limit {cfg.max_drawdown}" if account else "",
        f"day P&L {account[1]:.2f}, limit {cfg.max_daily_loss}" if account else "",
        f"order {abs(delta):g}, limit {cfg.max_order_size:g}",
        f"target {target:g}, limit {cfg.max_position:g}",
        f"notional {float(out[O_NOTIONAL]):.2f}, limit {cfg.max_notional}",
        f"{float(out[O_COLLAR]):.1f} bps from last trade/mid, limit {cfg.collar_bps}",
        f"{int(out[O_N_ORDERS])} orders in {cfg.throttle_window_s:g} s, limit {cfg.max_orders}",
    ]
    reasons = [
        Reason.INSTRUMENT_NOT_ALLOWED, Reason.MODEL_SHADOW, Reason.KILL_SWITCH,
        Reason.MAX_DRAWDOWN, Reason.DAILY_LOSS, Reason.MAX_ORDER_SIZE, Reason.MAX_POSITION,
        Reason.MAX_NOTIONAL, Reason.PRICE_COLLAR, Reason.ORDER_RATE,
    ]  # fmt: skip
    rows = []
    for c, name in enumerate(CHECKS):
        ok = out[14 + c] == 1.0
        rows.append((name, bool(ok), None if ok else reasons[c], details[c]))
    return rows
