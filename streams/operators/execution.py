"""Paper execution: a simulated broker that fills approved orders at a later tick, in event time.

An order is due ``latency_ms`` of event time after its decision and fills on the first tick of
its instrument at or after that time (never on the tick that decided it). Buys lift the ask and
sells hit the bid on quotes; on a trade-only feed the trade price is moved by a configured half
spread. Slippage and fees are charged on every fill. Accounts are per instrument (the partition
key), so live and replay compute the same positions, cash and P&L whatever the interleaving.

Accounting is average cost: ``equity - initial_cash == realized + unrealized - fees`` always.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from tickwise.schemas.decisions import Action, Decision, Fill, Order
from tickwise.schemas.ticks import QuoteTick, TradeTick
from tickwise.streams.config import ExecutionConfig
from tickwise.streams.operators.state import InstrumentStateMixin
from tickwise.streams.operators.units import UNIT_PER_BPS

DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9


@dataclass(frozen=True, slots=True)
class AccountView:
    """A read-only snapshot of one instrument's paper account at an event time."""

    instrument: str
    ts_event_ns: int
    position: float
    pending_quantity: float
    avg_price: float
    mark: float
    cash: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    equity: float
    peak_equity: float
    day_start_equity: float
    n_fills: int
    trading_day: int

    @property
    def net_pnl(self) -> float:
        """Realized plus unrealized, after fees."""
        return self.realized_pnl + self.unrealized_pnl - self.fees

    @property
    def drawdown(self) -> float:
        """How far equity is below its peak (>= 0)."""
        return self.peak_equity - self.equity

    @property
    def day_pnl(self) -> float:
        """Equity change since the trading day began."""
        return self.equity - self.day_start_equity


@dataclass
class _Account:
    cash: float
    position: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0
    mark: float = math.nan
    ts_event_ns: int = 0
    peak_equity: float = math.nan
    day: int | None = None
    day_start_equity: float = math.nan
    n_fills: int = 0
    pending: deque[Order] = field(default_factory=deque)


class PaperBroker(InstrumentStateMixin):
    """Fill approved orders at a later tick with spread, slippage and fees; keep the accounts.

    Call ``on_tick`` for every clean tick before deciding on it (it fills due orders and marks
    to market), then ``submit`` the decision taken on that tick.

    Examples
    --------
    >>> from tickwise.schemas.ticks import QuoteTick
    >>> broker = PaperBroker(ExecutionConfig(latency_ms=0, slippage_bps=0, fee_bps=0))
    >>> q = lambda i, bid: QuoteTick(tick_id=str(i), instrument="ES", ts_event_ns=i,
    ...                              bid=bid, ask=bid + 1, bid_size=1, ask_size=1)
    >>> broker.on_tick(q(1, 100.0))
    []
    >>> order = broker.submit(_decision_buy("ES", ts=1, qty=2.0))
    >>> [(f.side.value, f.quantity, f.price) for f in broker.on_tick(q(2, 102.0))]  # lifts ask
    [('BUY', 2.0, 103.0)]
    >>> broker.account("ES").unrealized_pnl   # marked at the mid, 102.5
    -1.0
    """

    def __init__(self, config: ExecutionConfig) -> None:
        self.config = config
        self.latency_ns = round(config.latency_ms * 1e6)
        self._state: dict[str, _Account] = {}

    # --- events -----------------------------------------------------------------------------

    def on_tick(self, tick: TradeTick | QuoteTick) -> list[Fill]:
        """Fill every order due by ``tick``'s event time at its prices; then mark to market."""
        acct = self._state.get(tick.instrument)
        if acct is None:
            acct = self._state[tick.instrument] = _Account(cash=self.config.initial_cash)
        reference = tick.reference_price
        self._roll_day(acct, tick.ts_event_ns)
        fills: list[Fill] = []
        while acct.pending and acct.pending[0].due_ts_event_ns <= tick.ts_event_ns:
            fills.append(self._fill(acct, acct.pending.popleft(), tick, reference))
        acct.mark = reference
        acct.ts_event_ns = max(acct.ts_event_ns, tick.ts_event_ns)
        equity = self._equity(acct)
        if not equity <= acct.peak_equity:  # also replaces the initial NaN
            acct.peak_equity = equity
        if math.isnan(acct.day_start_equity):
            acct.day_start_equity = equity
        return fills

    def submit(self, decision: Decision) -> Order | None:
        """Queue the order of an approved BUY/SELL decision; return it (None: nothing to send)."""
        if not decision.approved or decision.action is Action.HOLD or decision.quantity <= 0.0:
            return None
        acct = self._state.get(decision.instrument)
        if acct is None:
            acct = self._state[decision.instrument] = _Account(cash=self.config.initial_cash)
        order = Order(
            order_id=f"ord-{decision.decision_id}",
            decision_id=decision.decision_id,
            instrument=decision.instrument,
            ts_event_ns=decision.ts_event_ns,
            due_ts_event_ns=decision.ts_event_ns + self.latency_ns,
            side=decision.action,
            quantity=decision.quantity,
            model_id=decision.model_id,
            model_version=decision.model_version,
        )
        acct.pending.append(order)
        return order

    # --- queries ----------------------------------------------------------------------------

    def position(self, instrument: str) -> float:
        """Filled position (signed)."""
        acct = self._state.get(instrument)
        return acct.position if acct else 0.0

    def pending_quantity(self, instrument: str) -> float:
        """Signed quantity of orders sent but not yet filled."""
        acct = self._state.get(instrument)
        if acct is None:
            return 0.0
        return sum(o.quantity if o.side is Action.BUY else -o.quantity for o in acct.pending)

    def account(self, instrument: str) -> AccountView:
        """Snapshot of the instrument's account (a fresh account if it never traded)."""
        acct = self._state.get(instrument) or _Account(cash=self.config.initial_cash)
        mult = self.config.multiplier
        mark = acct.mark
        unrealized = acct.position * (mark - acct.avg_price) * mult if acct.position else 0.0
        equity = self._equity(acct)
        return AccountView(
            instrument=instrument,
            ts_event_ns=acct.ts_event_ns,
            position=acct.position,
            pending_quantity=self.pending_quantity(instrument),
            avg_price=acct.avg_price,
            mark=mark,
            cash=acct.cash,
            realized_pnl=acct.realized_pnl,
            unrealized_pnl=unrealized,
            fees=acct.fees,
            equity=equity,
            peak_equity=equity if math.isnan(acct.peak_equity) else acct.peak_equity,
            day_start_equity=equity if math.isnan(acct.day_start_equity) else acct.day_start_equity,
            n_fills=acct.n_fills,
            trading_day=acct.day if acct.day is not None else 0,
        )

    def instruments(self) -> list[str]:
        """Instruments with an account, sorted."""
        return sorted(self._state)

    # --- internals --------------------------------------------------------------------------

    def _equity(self, acct: _Account) -> float:
        if not acct.position:
            return acct.cash
        return acct.cash + acct.position * acct.mark * self.config.multiplier

    def _roll_day(self, acct: _Account, ts_ns: int) -> None:
        day = (ts_ns - self.config.day_start_utc_hour * HOUR_NS) // DAY_NS
        if acct.day is None or day > acct.day:
            if acct.day is not None:  # equity carried over from the last mark of the old day
                acct.day_start_equity = self._equity(acct)
            acct.day = day

    def _fill(
        self, acct: _Account, order: Order, tick: TradeTick | QuoteTick, reference: float
    ) -> Fill:
        cfg = self.config
        buy = order.side is Action.BUY
        if isinstance(tick, QuoteTick):
            touch = tick.ask if buy else tick.bid
        else:
            touch = tick.price * (
                1.0 + cfg.half_spread_bps * UNIT_PER_BPS
                if buy
                else 1.0 - cfg.half_spread_bps * UNIT_PER_BPS
            )
        price = touch * (
            1.0 + cfg.slippage_bps * UNIT_PER_BPS if buy else 1.0 - cfg.slippage_bps * UNIT_PER_BPS
        )
        qty = order.quantity
        fee = qty * price * cfg.multiplier * cfg.fee_bps * UNIT_PER_BPS + qty * cfg.fee_per_unit
        self._book(acct, qty if buy else -qty, price)
        acct.cash -= (qty if buy else -qty) * price * cfg.multiplier + fee
        acct.fees += fee
        acct.n_fills += 1
        return Fill(
            fill_id=f"fill-{order.order_id}",
            order_id=order.order_id,
            decision_id=order.decision_id,
            instrument=order.instrument,
            tick_id=tick.tick_id,
            ts_event_ns=tick.ts_event_ns,
            order_ts_event_ns=order.ts_event_ns,
            side=order.side,
            quantity=qty,
            price=price,
            reference_price=reference,
            fee=fee,
            position_after=acct.position,
            cash_after=acct.cash,
            realized_pnl_after=acct.realized_pnl,
            model_id=order.model_id,
            model_version=order.model_version,
        )

    def _book(self, acct: _Account, signed_qty: float, price: float) -> None:
        """Average-cost position keeping: realize P&L on the part that closes."""
        pos = acct.position
        new = pos + signed_qty
        if pos == 0.0 or (pos > 0.0) == (signed_qty > 0.0):
            acct.avg_price = (acct.avg_price * abs(pos) + price * abs(signed_qty)) / abs(new)
        else:
            closing = min(abs(signed_qty), abs(pos))
            direction = 1.0 if pos > 0.0 else -1.0
            acct.realized_pnl += (
                closing * (price - acct.avg_price) * direction * self.config.multiplier
            )
            if new == 0.0:
                acct.avg_price = 0.0
            elif (new > 0.0) != (pos > 0.0):
                acct.avg_price = price  # flipped: the remainder opened at this price
        acct.position = new


def _decision_buy(instrument: str, ts: int, qty: float) -> Decision:
    """A minimal approved BUY decision (used by the docstring example)."""
    from tickwise.schemas.decisions import Side

    return Decision(
        decision_id=f"dec-{ts}",
        signal_id=f"sig-{ts}",
        instrument=instrument,
        tick_id=str(ts),
        ts_event_ns=ts,
        model_id="m",
        model_version=1,
        score=0.9,
        side=Side.BUY,
        action=Action.BUY,
        quantity=qty,
        price=0.0,
        approved=True,
        reject_reasons=[],
        position_before=0.0,
        position_after=qty,
    )
