"""The engine's paper execution against ``PaperBroker`` driven by the same orders (the oracle),
and batch invariance of its fills and accounts."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle.validator import Validator
from tickwise.schemas.decisions import Action, Decision, Side
from tickwise.schemas.ticks import CleanTick, SourceRef
from tickwise.streams.config import ExecutionConfig, ValidationConfig
from tickwise.streams.engine.batch import SymbolTable, decode
from tickwise.streams.engine.execution import AVG, CASH, BatchExecution, pending_quantity
from tickwise.streams.engine.validate import BatchValidator
from tickwise.streams.operators.execution import PaperBroker
from tickwise.streams.sources import synthetic

COSTLY = ExecutionConfig(
    latency_ms=30.0, multiplier=50.0, fee_per_unit=1.2, day_start_utc_hour=17, slippage_bps=0.7
)


def stream(seed: int, n: int) -> list[bytes]:
    return [r.payload for r in synthetic(seed, n, bad_rate=0.02, regime="volatile")]


def random_orders(payloads: list[bytes], seed: int, rate: float) -> list[tuple[int, bool, float]]:
    """(row, buy, quantity) on clean rows, as decisions would place them."""
    rng = np.random.default_rng(seed)
    validator = Validator(ValidationConfig())
    out = []
    for i, raw in enumerate(payloads):
        (verdict,) = validator.on_raw(raw, SourceRef(topic="t", partition=0, offset=i))
        if isinstance(verdict, CleanTick) and rng.random() < rate:
            for _ in range(int(rng.integers(1, 3))):
                out.append((i, bool(rng.random() < 0.5), float(rng.choice([1.0, 2.0, 0.5, 3.0]))))
    return out


def oracle(payloads, orders, config):
    validator, broker = Validator(ValidationConfig()), PaperBroker(config)
    by_row: dict[int, list[tuple[int, bool, float]]] = {}
    for n, (row, buy, qty) in enumerate(orders):
        by_row.setdefault(row, []).append((n, buy, qty))
    fills, instruments = [], set()
    for i, raw in enumerate(payloads):
        (verdict,) = validator.on_raw(raw, SourceRef(topic="t", partition=0, offset=i))
        if not isinstance(verdict, CleanTick):
            continue
        tick = verdict.tick
        instruments.add(tick.instrument)
        for fill in broker.on_tick(tick):
            fills.append(
                (
                    i,
                    int(fill.order_id.split("-")[-1]),
                    fill.price,
                    fill.fee,
                    fill.position_after,
                    fill.cash_after,
                    fill.realized_pnl_after,
                )
            )
        for n, buy, qty in by_row.get(i, []):
            broker.submit(decision(tick.instrument, tick.ts_event_ns, n, buy, qty))
    return fills, {name: broker.account(name) for name in instruments}


def decision(instrument: str, ts: int, n: int, buy: bool, qty: float) -> Decision:
    action = Action.BUY if buy else Action.SELL
    return Decision(
        decision_id=f"{n}",
        signal_id=f"s{n}",
        instrument=instrument,
        tick_id=f"t{n}",
        ts_event_ns=ts,
        model_id="m",
        model_version=1,
        score=0.5,
        side=Side.BUY if buy else Side.SELL,
        action=action,
        quantity=qty,
        price=0.0,
        approved=True,
        reject_reasons=[],
        position_before=0.0,
        position_after=0.0,
    )


def engine(payloads, orders, config, cuts=()):
    symbols = SymbolTable()
    validator, execution = (
        BatchValidator(ValidationConfig(), symbols),
        BatchExecution(config, symbols),
    )
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(payloads)}), len(payloads)]
    rows = np.array([o[0] for o in orders], np.int64)
    fills = []
    for a, b in pairwise(bounds):
        batch = decode(payloads[a:b], symbols, "t", 0, np.arange(a, b), 16_384)
        _, verdict, _ = validator.run(batch)
        pick = (rows >= a) & (rows < b)
        ids = np.flatnonzero(pick)
        mine = (
            rows[pick] - a,
            np.array([orders[n][1] for n in ids], np.bool_),
            np.array([orders[n][2] for n in ids]),
            ids.astype(np.int64),
        )
        f = execution.run(batch, verdict == 0, mine)
        fills += [
            (int(r) + a, int(o), p, fee, pos, cash, real)
            for r, o, p, fee, pos, cash, real in zip(
                f.row,
                f.order_id,
                f.price,
                f.fee,
                f.position_after,
                f.cash_after,
                f.realized_pnl_after,
                strict=True,
            )
        ]
    return fills, execution, symbols


@pytest.mark.parametrize("config", [ExecutionConfig(), COSTLY], ids=["default", "costly"])
def test_fills_and_accounts_equal_the_paper_broker(config: ExecutionConfig) -> None:
    payloads = stream(3, 6_000)
    orders = random_orders(payloads, 1, 0.05)
    want_fills, want_accounts = oracle(payloads, orders, config)
    fills, execution, symbols = engine(payloads, orders, config)
    assert len(want_fills) > 200
    assert fills == want_fills
    s = execution.state
    for name, view in want_accounts.items():
        k = symbols.index(name)
        assert s.acct[k, CASH] == view.cash and s.acct[k, AVG] == view.avg_price
        assert s.n_fills[k] == view.n_fills and s.ts[k] == view.ts_event_ns
        assert s.day[k] == view.trading_day
        pending = pending_quantity(s.o_buy, s.o_qty, s.o_head, s.o_len, k)
        assert pending == view.pending_quantity


PAYLOADS = stream(8, 1_500)
ORDERS = random_orders(PAYLOADS, 2, 0.3)  # dense: the order rings must grow


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, len(PAYLOADS)), max_size=10))
def test_any_split_gives_the_same_fills_and_state(cuts: list[int]) -> None:
    config = ExecutionConfig(latency_ms=400.0)
    whole, ex_whole, _ = engine(PAYLOADS, ORDERS, config)
    split, ex_split, _ = engine(PAYLOADS, ORDERS, config, cuts)
    assert split == whole
    assert ex_whole.state.o_due.shape[1] > 16  # grew
    for name in ("acct", "ts", "day", "n_fills", "o_len"):
        assert getattr(ex_split.state, name).tobytes() == getattr(ex_whole.state, name).tobytes()
