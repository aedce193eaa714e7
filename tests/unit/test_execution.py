"""Paper execution: later-tick fills in event time, spread, slippage, fees and the accounts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stubs import MS, T0_NS

from tickwise.schemas.decisions import Action, Decision, Side
from tickwise.schemas.ticks import QuoteTick, TradeTick
from tickwise.streams.config import ExecutionConfig
from tickwise.streams.operators.execution import DAY_NS, PaperBroker

FREE = {"slippage_bps": 0.0, "fee_bps": 0.0, "half_spread_bps": 0.0}


def quote(i: int, bid: float, ts_ns: int, ask: float | None = None) -> QuoteTick:
    return QuoteTick(
        tick_id=f"q{i}",
        instrument="ES",
        ts_event_ns=ts_ns,
        bid=bid,
        ask=bid + 1.0 if ask is None else ask,
        bid_size=1.0,
        ask_size=1.0,
    )


def trade(i: int, price: float, ts_ns: int) -> TradeTick:
    return TradeTick(tick_id=f"t{i}", instrument="ES", ts_event_ns=ts_ns, price=price, size=1.0)


def order(action: Action, qty: float, ts_ns: int, tag: str = "") -> Decision:
    return Decision(
        decision_id=f"dec-{ts_ns}{tag}",
        signal_id=f"sig-{ts_ns}",
        instrument="ES",
        tick_id=f"x{ts_ns}",
        ts_event_ns=ts_ns,
        model_id="m",
        model_version=1,
        score=0.8,
        side=Side.BUY if action is Action.BUY else Side.SELL,
        action=action,
        quantity=qty,
        price=100.0,
        approved=True,
        reject_reasons=[],
        position_before=0.0,
        position_after=0.0,
    )


def test_an_order_fills_only_at_a_later_tick_after_the_latency() -> None:
    broker = PaperBroker(ExecutionConfig(latency_ms=50, **FREE))
    assert broker.on_tick(quote(0, 100.0, T0_NS)) == []
    placed = broker.submit(order(Action.BUY, 1.0, T0_NS))
    assert placed is not None and placed.due_ts_event_ns == T0_NS + 50 * MS
    assert broker.pending_quantity("ES") == 1.0
    assert broker.on_tick(quote(1, 101.0, T0_NS + 49 * MS)) == []  # too early
    (fill,) = broker.on_tick(quote(2, 102.0, T0_NS + 50 * MS))
    assert (fill.tick_id, fill.price, fill.ts_event_ns) == ("q2", 103.0, T0_NS + 50 * MS)
    assert fill.order_ts_event_ns == T0_NS
    assert broker.position("ES") == 1.0 and broker.pending_quantity("ES") == 0.0


def test_zero_latency_still_fills_on_the_next_tick_not_the_deciding_one() -> None:
    broker = PaperBroker(ExecutionConfig(latency_ms=0, **FREE))
    broker.on_tick(quote(0, 100.0, T0_NS))
    broker.submit(order(Action.SELL, 2.0, T0_NS))
    assert broker.position("ES") == 0.0
    (fill,) = broker.on_tick(quote(1, 99.0, T0_NS))  # same timestamp, later tick
    assert (fill.side, fill.price, fill.position_after) == (Action.SELL, 99.0, -2.0)


def test_trades_cross_a_configured_half_spread_and_pay_slippage_and_fees() -> None:
    cfg = ExecutionConfig(
        latency_ms=0, half_spread_bps=10, slippage_bps=5, fee_bps=2, fee_per_unit=0.5
    )
    broker = PaperBroker(cfg)
    broker.on_tick(trade(0, 100.0, T0_NS))
    broker.submit(order(Action.BUY, 2.0, T0_NS))
    (buy,) = broker.on_tick(trade(1, 100.0, T0_NS + MS))
    assert buy.price == pytest.approx(100.0 * 1.001 * 1.0005)
    assert buy.fee == pytest.approx(2 * buy.price * 2e-4 + 2 * 0.5)
    broker.submit(order(Action.SELL, 2.0, T0_NS + MS))
    (sell,) = broker.on_tick(trade(2, 100.0, T0_NS + 2 * MS))
    assert sell.price == pytest.approx(100.0 * 0.999 * 0.9995)
    acct = broker.account("ES")
    assert acct.position == 0.0
    assert acct.realized_pnl == pytest.approx(2 * (sell.price - buy.price))
    assert acct.fees == pytest.approx(buy.fee + sell.fee)
    assert acct.equity - cfg.initial_cash == pytest.approx(acct.realized_pnl - acct.fees)


def test_round_trip_and_flip_realize_pnl_at_average_cost() -> None:
    broker = PaperBroker(ExecutionConfig(latency_ms=0, multiplier=50.0, **FREE))
    broker.on_tick(quote(0, 100.0, T0_NS))
    broker.submit(order(Action.BUY, 1.0, T0_NS, "a"))
    broker.on_tick(quote(1, 100.0, T0_NS + 1))  # buy 1 @ 101
    broker.submit(order(Action.BUY, 1.0, T0_NS + 1, "b"))
    broker.on_tick(quote(2, 102.0, T0_NS + 2))  # buy 1 @ 103, avg 102
    assert broker.account("ES").avg_price == 102.0
    broker.submit(order(Action.SELL, 3.0, T0_NS + 2, "c"))
    (flip,) = broker.on_tick(quote(3, 106.0, T0_NS + 3))  # sell 3 @ 106: close 2, short 1
    acct = broker.account("ES")
    assert flip.realized_pnl_after == 2 * (106.0 - 102.0) * 50.0
    assert (acct.position, acct.avg_price) == (-1.0, 106.0)
    assert acct.unrealized_pnl == -1.0 * (106.5 - 106.0) * 50.0  # marked at the mid


def test_the_daily_loss_baseline_rolls_at_the_configured_hour() -> None:
    broker = PaperBroker(ExecutionConfig(latency_ms=0, day_start_utc_hour=0, **FREE))
    day0 = (T0_NS // DAY_NS) * DAY_NS
    broker.on_tick(quote(0, 100.0, day0 + 1))
    broker.submit(order(Action.BUY, 1.0, day0 + 1))
    broker.on_tick(quote(1, 100.0, day0 + 2))  # long 1 @ 101
    broker.on_tick(quote(2, 90.0, day0 + 3))
    assert broker.account("ES").day_pnl == pytest.approx(90.5 - 101.0)
    broker.on_tick(quote(3, 80.0, day0 + DAY_NS + 1))  # new day: baseline is last day's close
    acct = broker.account("ES")
    assert acct.day_pnl == pytest.approx(80.5 - 90.5)
    assert acct.drawdown == pytest.approx(100.5 - 80.5 + 0.5)  # peak 1_000_000 at the start


def test_unapproved_and_hold_decisions_send_nothing() -> None:
    broker = PaperBroker(ExecutionConfig())
    rejected = order(Action.BUY, 1.0, T0_NS).model_copy(update={"approved": False})
    hold = order(Action.HOLD, 0.0, T0_NS)
    assert broker.submit(rejected) is None and broker.submit(hold) is None
    assert broker.pending_quantity("ES") == 0.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([Action.BUY, Action.SELL]),
            st.integers(min_value=1, max_value=5),
            st.floats(min_value=50.0, max_value=150.0),
            st.floats(min_value=0.0, max_value=2.0),
        ),
        min_size=1,
        max_size=30,
    ),
    st.floats(min_value=0.0, max_value=20.0),
    st.floats(min_value=0.0, max_value=5.0),
)
def test_accounting_identity_holds_for_any_order_sequence(
    steps: list[tuple[Action, int, float, float]], slip_bps: float, fee_bps: float
) -> None:
    """Equity minus initial cash is realized + unrealized - fees; position is the fills' sum."""
    cfg = ExecutionConfig(latency_ms=0, slippage_bps=slip_bps, fee_bps=fee_bps, multiplier=5.0)
    broker = PaperBroker(cfg)
    ts, signed = T0_NS, 0.0
    broker.on_tick(quote(0, 100.0, ts))
    for i, (action, qty, bid, spread) in enumerate(steps, start=1):
        broker.submit(order(action, float(qty), ts, str(i)))
        ts += MS
        for fill in broker.on_tick(quote(i, bid, ts, ask=bid + spread)):
            signed += fill.quantity if fill.side is Action.BUY else -fill.quantity
            assert fill.ts_event_ns > fill.order_ts_event_ns
        acct = broker.account("ES")
        assert acct.position == signed
        assert acct.equity - cfg.initial_cash == pytest.approx(
            acct.realized_pnl + acct.unrealized_pnl - acct.fees, rel=1e-9, abs=1e-6
        )
        assert acct.drawdown >= 0.0
