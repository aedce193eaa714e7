"""Paper execution over a batch: ``streams.operators.execution.PaperBroker`` as kernel functions.

The fused decide kernel (docs/ENGINE.md) calls ``on_tick`` for every clean row before it
decides on it, and ``submit`` for an approved order; both work on one instrument's row of the
account arrays and keep the broker's order of floating-point operations, so fills, marks and
P&L are the per-tick broker's bit for bit (the oracle test drives both with the same orders).
Until that kernel exists, ``BatchExecution`` runs them over a batch with the orders given.

Accounts: average cost, ``equity - initial_cash == realized + unrealized - fees``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tickwise.streams.config import ExecutionConfig
from tickwise.streams.engine.batch import KIND_TRADE, SymbolTable, TickBatch
from tickwise.streams.engine.jit import kernel
from tickwise.streams.operators.units import UNIT_PER_BPS

DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
NO_DAY = np.iinfo(np.int64).min
# account scalars, by column of ``acct``
CASH, POSITION, AVG, REALIZED, FEES, MARK, PEAK, DAY_START = range(8)
# the broker's settings, by position in ``cfg``
HALF_SPREAD, SLIPPAGE, FEE_BPS, FEE_UNIT, MULT, INITIAL = range(6)


@dataclass(slots=True)
class ExecutionState:
    """Accounts and pending orders, a row per instrument."""

    started: np.ndarray  # bool: the instrument has an account
    acct: np.ndarray  # float64 [instrument, 8], see the column names above
    ts: np.ndarray  # int64 latest event time marked
    day: np.ndarray  # int64 trading day, NO_DAY before the first tick
    n_fills: np.ndarray  # int64
    o_due: np.ndarray  # int64 [instrument, capacity] ring of pending orders
    o_ts: np.ndarray
    o_buy: np.ndarray  # bool
    o_qty: np.ndarray
    o_id: np.ndarray  # int64, the caller's order number
    o_head: np.ndarray
    o_len: np.ndarray

    @classmethod
    def empty(cls, capacity: int = 16) -> ExecutionState:
        ring = (0, capacity)
        return cls(
            np.zeros(0, np.bool_), np.zeros((0, 8)), np.zeros(0, np.int64),
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(ring, np.int64),
            np.zeros(ring, np.int64), np.zeros(ring, np.bool_), np.zeros(ring),
            np.zeros(ring, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
        )  # fmt: skip

    def grow(self, n: int) -> None:
        """Room for ``n`` instruments."""
        extra = n - self.started.size
        if extra <= 0:
            return
        for name in self.__slots__:
            a = getattr(self, name)
            fill = NO_DAY if name == "day" else 0
            setattr(self, name, np.concatenate([a, np.full((extra, *a.shape[1:]), fill, a.dtype)]))

    def widen(self) -> None:
        """Double the order rings, each laid out from slot 0."""
        cap = self.o_due.shape[1]
        order = (self.o_head[:, None] + np.arange(cap)[None, :]) % cap
        rows = np.arange(order.shape[0])[:, None]
        for name in ("o_due", "o_ts", "o_buy", "o_qty", "o_id"):
            a = getattr(self, name)[rows, order]
            wide = np.zeros((a.shape[0], 2 * cap), a.dtype)
            wide[:, :cap] = a
            setattr(self, name, wide)
        self.o_head[:] = 0


@kernel(inline="always")
def equity(acct, k, mult):  # pragma: no cover - compiled
    if not acct[k, POSITION]:
        return acct[k, CASH]
    return acct[k, CASH] + acct[k, POSITION] * acct[k, MARK] * mult


@kernel()
def open_account(started, acct, cfg, k) -> None:  # pragma: no cover - compiled
    if not started[k]:
        started[k] = True
        acct[k, :] = 0.0
        acct[k, CASH] = cfg[INITIAL]
        acct[k, MARK] = np.nan
        acct[k, PEAK] = np.nan
        acct[k, DAY_START] = np.nan


@kernel()
def _book(acct, k, signed_qty, price, mult) -> None:  # pragma: no cover - compiled
    pos = acct[k, POSITION]
    new = pos + signed_qty
    if pos == 0.0 or (pos > 0.0) == (signed_qty > 0.0):
        acct[k, AVG] = (acct[k, AVG] * abs(pos) + price * abs(signed_qty)) / abs(new)
    else:
        closing = min(abs(signed_qty), abs(pos))
        direction = 1.0 if pos > 0.0 else -1.0
        acct[k, REALIZED] += closing * (price - acct[k, AVG]) * direction * mult
        if new == 0.0:
            acct[k, AVG] = 0.0
        elif (new > 0.0) != (pos > 0.0):
            acct[k, AVG] = price  # flipped: the remainder opened at this price
    acct[k, POSITION] = new


@kernel()
def on_tick(
    st_started, acct, st_ts, st_day, n_fills, o_due, o_ts, o_buy, o_qty, o_id, o_head, o_len,
    cfg, day_offset_ns, k, ts, trade, ref, bid, ask,
    f_row, f_id, f_price, f_fee, f_qty, f_buy, f_pos, f_cash, f_realized, n_out, row,
):  # pragma: no cover - compiled  # fmt: skip
    """Fill every order of instrument ``k`` due by ``ts``, then mark to market; fills are
    appended to the ``f_`` columns at ``n_out[0]``."""
    open_account(st_started, acct, cfg, k)
    mult = cfg[MULT]
    day = (ts - day_offset_ns) // DAY_NS
    if st_day[k] == NO_DAY or day > st_day[k]:
        if st_day[k] != NO_DAY:  # equity carried over from the last mark of the old day
            acct[k, DAY_START] = equity(acct, k, mult)
        st_day[k] = day
    cap = o_due.shape[1]
    while o_len[k] > 0 and o_due[k, o_head[k]] <= ts:
        h = o_head[k]
        buy = o_buy[k, h]
        if trade:
            hs = cfg[HALF_SPREAD] * UNIT_PER_BPS
            touch = ref * (1.0 + hs if buy else 1.0 - hs)
        else:
            touch = ask if buy else bid
        slip = cfg[SLIPPAGE] * UNIT_PER_BPS
        price = touch * (1.0 + slip if buy else 1.0 - slip)
        qty = o_qty[k, h]
        fee = qty * price * mult * cfg[FEE_BPS] * UNIT_PER_BPS + qty * cfg[FEE_UNIT]
        signed = qty if buy else -qty
        _book(acct, k, signed, price, mult)
        acct[k, CASH] -= signed * price * mult + fee
        acct[k, FEES] += fee
        n_fills[k] += 1
        j = n_out[0]
        f_row[j], f_id[j], f_price[j], f_fee[j], f_qty[j] = row, o_id[k, h], price, fee, qty
        f_buy[j], f_pos[j], f_cash[j] = buy, acct[k, POSITION], acct[k, CASH]
        f_realized[j] = acct[k, REALIZED]
        n_out[0] = j + 1
        o_head[k] = (h + 1) % cap
        o_len[k] -= 1
    acct[k, MARK] = ref
    if ts > st_ts[k]:
        st_ts[k] = ts
    eq = equity(acct, k, mult)
    if not eq <= acct[k, PEAK]:  # also replaces the initial NaN
        acct[k, PEAK] = eq
    if np.isnan(acct[k, DAY_START]):
        acct[k, DAY_START] = eq


@kernel()
def submit(
    st_started, acct, cfg, o_due, o_ts, o_buy, o_qty, o_id, o_head, o_len,
    k, ts, latency_ns, buy, qty, order_id,
) -> bool:  # pragma: no cover - compiled  # fmt: skip
    """Queue an approved order of instrument ``k``; False when its ring is full (grow it)."""
    cap = o_due.shape[1]
    if o_len[k] == cap:
        return False
    open_account(st_started, acct, cfg, k)
    tail = (o_head[k] + o_len[k]) % cap
    o_due[k, tail], o_ts[k, tail], o_buy[k, tail] = ts + latency_ns, ts, buy
    o_qty[k, tail], o_id[k, tail] = qty, order_id
    o_len[k] += 1
    return True


@kernel()
def pending_quantity(o_buy, o_qty, o_head, o_len, k) -> float:  # pragma: no cover - compiled
    """Signed quantity sent but not filled, summed oldest first as the per-tick broker does."""
    cap = o_buy.shape[1]
    total = 0.0
    for j in range(o_len[k]):
        h = (o_head[k] + j) % cap
        total = total + (o_qty[k, h] if o_buy[k, h] else -o_qty[k, h])
    return total


@kernel()
def _run(
    clean, inst, kind, ts, price, bid, ask,
    sub_row, sub_buy, sub_qty, sub_id, start_sub, resumed,
    st_started, acct, st_ts, st_day, n_fills, o_due, o_ts, o_buy, o_qty, o_id, o_head, o_len,
    cfg, day_offset_ns, latency_ns,
    f_row, f_id, f_price, f_fee, f_qty, f_buy, f_pos, f_cash, f_realized, n_out, start_row,
):  # pragma: no cover - compiled  # fmt: skip
    s = start_sub
    for i in range(start_row, inst.size):
        if clean[i] and not (resumed and i == start_row):  # a resumed row had its tick
            k = inst[i]
            on_tick(
                st_started, acct, st_ts, st_day, n_fills, o_due, o_ts, o_buy, o_qty, o_id,
                o_head, o_len, cfg, day_offset_ns, k, ts[i], kind[i] == KIND_TRADE, price[i],
                bid[i], ask[i], f_row, f_id, f_price, f_fee, f_qty, f_buy, f_pos, f_cash,
                f_realized, n_out, i,
            )  # fmt: skip
        while s < sub_row.size and sub_row[s] == i:
            ok = submit(
                st_started, acct, cfg, o_due, o_ts, o_buy, o_qty, o_id, o_head, o_len,
                inst[i], ts[i], latency_ns, sub_buy[s], sub_qty[s], sub_id[s],
            )  # fmt: skip
            if not ok:
                return i, s
            s += 1
    return -1, s


@dataclass(slots=True)
class FillColumns:
    """Fills of a batch in the order they happened; ``row`` is the tick each filled on."""

    row: np.ndarray
    order_id: np.ndarray
    price: np.ndarray
    fee: np.ndarray
    quantity: np.ndarray
    buy: np.ndarray
    position_after: np.ndarray
    cash_after: np.ndarray
    realized_pnl_after: np.ndarray


class BatchExecution:
    """The paper broker over batches, orders given by row (``submit`` after that row's tick)."""

    def __init__(self, config: ExecutionConfig, symbols: SymbolTable) -> None:
        self.config, self.symbols = config, symbols
        self.latency_ns = round(config.latency_ms * 1e6)
        self.day_offset_ns = config.day_start_utc_hour * HOUR_NS
        self.cfg = np.array(
            [
                config.half_spread_bps,
                config.slippage_bps,
                config.fee_bps,
                config.fee_per_unit,
                config.multiplier,
                config.initial_cash,
            ]
        )
        self.state = ExecutionState.empty()

    def run(
        self,
        batch: TickBatch,
        clean: np.ndarray,
        orders: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    ) -> FillColumns:
        """Fill and mark on every clean row; ``orders`` are (row, buy, quantity, id) columns,
        rows ascending, each submitted after its row's tick."""
        self.state.grow(len(self.symbols))
        rows, buys, qtys, ids = (np.ascontiguousarray(a) for a in orders)
        bound = int(self.state.o_len.sum()) + rows.size
        f = FillColumns(
            np.empty(bound, np.int64), np.empty(bound, np.int64), np.empty(bound),
            np.empty(bound), np.empty(bound), np.empty(bound, np.bool_), np.empty(bound),
            np.empty(bound), np.empty(bound),
        )  # fmt: skip
        n_out = np.zeros(1, np.int64)
        row, sub, resumed = 0, 0, False
        s = self.state
        while True:
            stop_row, sub = _run(
                clean, batch.instrument, batch.kind, batch.ts, batch.price, batch.bid,
                batch.ask, rows, buys, qtys, ids, sub, resumed, s.started, s.acct, s.ts, s.day,
                s.n_fills, s.o_due, s.o_ts, s.o_buy, s.o_qty, s.o_id, s.o_head, s.o_len,
                self.cfg, self.day_offset_ns, self.latency_ns, f.row, f.order_id, f.price,
                f.fee, f.quantity, f.buy, f.position_after, f.cash_after,
                f.realized_pnl_after, n_out, row,
            )  # fmt: skip
            if stop_row < 0:
                break
            s.widen()  # an order ring was full: room, then the rest of that row's orders
            row, resumed = stop_row, True
        n = int(n_out[0])
        return FillColumns(*(getattr(f, name)[:n] for name in FillColumns.__slots__))
