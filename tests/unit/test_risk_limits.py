"""Pre-trade risk: each limit rejects with its reason code, states, sizing and overrides."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError
from stubs import MS, T0_NS, signal

from tests.oracle.control import ControlBook
from tests.oracle.risk import RiskEngine
from tickwise.schemas.decisions import ControlCommand, Side, TradingState
from tickwise.schemas.ticks import QuoteTick, TradeTick
from tickwise.streams.config import RiskConfig
from tickwise.streams.operators.execution import AccountView
from tickwise.streams.operators.risk import Reason


def account(
    position: float = 0.0,
    pending: float = 0.0,
    equity: float = 1e6,
    peak: float | None = None,
    day_start: float | None = None,
    day: int = 0,
) -> AccountView:
    return AccountView(
        instrument="ES",
        ts_event_ns=T0_NS,
        position=position,
        pending_quantity=pending,
        avg_price=100.0,
        mark=100.0,
        cash=equity,
        realized_pnl=0.0,
        unrealized_pnl=0.0,
        fees=0.0,
        equity=equity,
        peak_equity=equity if peak is None else peak,
        day_start_equity=equity if day_start is None else day_start,
        n_fills=0,
        trading_day=day,
    )


def tick(price: float, ts_ns: int = T0_NS, instrument: str = "ES") -> TradeTick:
    return TradeTick(tick_id="t", instrument=instrument, ts_event_ns=ts_ns, price=price, size=1.0)


def engine(**limits: object) -> RiskEngine:
    risk = RiskEngine(RiskConfig(**limits))  # type: ignore[arg-type]
    risk.on_tick(tick(100.0))
    return risk


def decide(risk: RiskEngine, side: Side = Side.BUY, acct=None, control=None, ts=T0_NS, **kw):
    sig = signal(side=side, ts_ns=ts, tick_id=f"t{ts}", **kw)
    return risk.evaluate(sig, 100.0, acct or account(), control)


def reasons(verdict) -> list[str]:
    return verdict.decision.reject_reasons


def test_a_plain_buy_within_limits_is_approved_with_every_check_recorded() -> None:
    v = decide(engine())
    assert v.decision.approved and v.decision.quantity == 1.0
    assert v.trading_state is TradingState.ACTIVE
    assert {c.check for c in v.checks} >= {
        "allowed_instrument",
        "kill_switch",
        "max_order_size",
        "max_position",
        "max_notional",
        "price_collar",
        "order_rate",
        "max_drawdown",
        "daily_loss",
    }


@pytest.mark.parametrize(
    ("limits", "acct", "reason"),
    [
        ({"allowed_instruments": ("NQ",)}, account(), Reason.INSTRUMENT_NOT_ALLOWED),
        ({"target_size": 3.0, "max_order_size": 2.0}, account(), Reason.MAX_ORDER_SIZE),
        ({"target_size": 3.0, "max_position": 2.0}, account(), Reason.MAX_POSITION),
        ({"target_size": 3.0, "max_notional": 250.0}, account(), Reason.MAX_NOTIONAL),
    ],
)
def test_each_limit_rejects_with_its_reason_code(limits, acct, reason) -> None:
    v = decide(engine(**limits), acct=acct)
    assert not v.decision.approved and reasons(v) == [reason]
    assert v.decision.position_after == v.decision.position_before


def test_position_limits_count_orders_in_flight() -> None:
    v = decide(engine(target_size=2.0, max_position=5.0), acct=account(position=1.0, pending=1.0))
    assert v.decision.action.value == "HOLD" and v.decision.quantity == 0.0


def test_the_price_collar_compares_the_expected_fill_with_the_last_trade_or_mid() -> None:
    risk = engine(collar_bps=50.0)
    risk.on_tick(tick(100.4))  # 40 bps from the last trade: fine
    assert decide(risk).decision.approved
    risk = engine(collar_bps=50.0)
    risk.on_tick(
        QuoteTick(
            tick_id="q",
            instrument="ES",
            ts_event_ns=T0_NS,
            bid=100.0,
            ask=101.0,
            bid_size=1,
            ask_size=1,
        )
    )
    assert reasons(decide(risk)) == [Reason.PRICE_COLLAR]  # ask 101 vs last trade 100


def test_the_order_rate_throttle_counts_in_event_time() -> None:
    risk = engine(max_orders=2, throttle_window_s=1.0, target_size=1.0, max_position=10.0)
    held = 0.0
    verdicts = []
    for i, side in enumerate([Side.BUY, Side.SELL, Side.BUY, Side.BUY]):
        v = decide(risk, side=side, acct=account(position=held), ts=T0_NS + i * 100 * MS)
        held = v.decision.position_after
        verdicts.append(v)
    assert [v.decision.approved for v in verdicts] == [True, True, False, False]
    assert reasons(verdicts[2]) == [Reason.ORDER_RATE]
    later = decide(risk, side=Side.BUY, acct=account(position=held), ts=T0_NS + 1500 * MS)
    assert later.decision.approved  # the window slid in event time, whatever the wall clock did


def test_drawdown_stop_allows_only_reducing_orders_until_an_operator_clears_it() -> None:
    risk = engine(max_drawdown=1000.0, target_size=2.0, max_position=5.0)
    hurt = account(position=1.0, equity=1e6 - 1500, peak=1e6)
    add = decide(risk, side=Side.BUY, acct=hurt)
    assert add.trading_state is TradingState.REDUCING and reasons(add) == [Reason.MAX_DRAWDOWN]
    cut = decide(risk, side=Side.FLAT, acct=hurt)  # no order at all: nothing to reject
    assert cut.decision.approved
    reduce = RiskEngine(RiskConfig(max_drawdown=1000.0, target_size=0.5))
    reduce.on_tick(tick(100.0))
    assert decide(reduce, side=Side.BUY, acct=hurt).trading_state is TradingState.REDUCING
    # sticky even when equity recovers, until kill_switch_off reaches the instrument
    healed = account(position=1.0)
    assert reasons(decide(risk, side=Side.BUY, acct=healed)) == [Reason.MAX_DRAWDOWN]
    book = ControlBook()
    book.on_command(_cmd("off1", "kill_switch_off", "ES"))
    assert decide(risk, acct=healed, control=book.view("ES", "logreg", T0_NS)).decision.approved


def test_a_reducing_order_passes_the_loss_stop() -> None:
    risk = engine(max_drawdown=1000.0, target_size=1.0)
    v = decide(risk, side=Side.BUY, acct=account(position=-3.0, equity=1e6 - 2000, peak=1e6))
    assert v.decision.approved and v.trading_state is TradingState.REDUCING
    assert v.decision.position_after == 0.0  # the reversal to +1 is cut at flat


def test_daily_loss_stop_lasts_for_the_trading_day() -> None:
    risk = engine(max_daily_loss=500.0, loss_action="HALTED")
    v = decide(risk, acct=account(equity=1e6 - 600, day_start=1e6, day=3))
    assert v.trading_state is TradingState.HALTED and reasons(v) == [Reason.DAILY_LOSS]
    assert reasons(decide(risk, acct=account(day=3))) == [Reason.DAILY_LOSS]
    assert decide(risk, acct=account(day=4)).decision.approved


def test_kill_switch_halts_every_order_and_demotion_makes_the_model_shadow() -> None:
    book = ControlBook()
    book.on_command(_cmd("k1", "kill_switch_on", "global"))
    v = decide(
        engine(),
        side=Side.SELL,
        acct=account(position=1.0),
        control=book.view("ES", "logreg", T0_NS),
    )
    assert v.trading_state is TradingState.HALTED and reasons(v) == [Reason.KILL_SWITCH]
    book = ControlBook()
    book.on_command(_cmd("d1", "demote", "ES", model_id="logreg"))
    v = decide(engine(), control=book.view("ES", "logreg", T0_NS))
    assert reasons(v) == [Reason.MODEL_SHADOW]
    assert decide(engine(), control=book.view("ES", "other", T0_NS)).decision.approved


def test_per_instrument_overrides_apply_only_to_their_instrument() -> None:
    cfg = RiskConfig(target_size=3.0, max_position=5.0, instruments={"ES": {"max_position": 2.0}})
    assert cfg.for_instrument("ES").max_position == 2.0
    assert cfg.for_instrument("NQ").max_position == 5.0
    with pytest.raises(ValidationError):
        RiskConfig(instruments={"ES": {"max_postion": 2.0}})
    with pytest.raises(ValidationError):
        RiskConfig(instruments={"ES": {"max_position": -1.0}})


def test_fixed_fraction_sizing_scales_with_confidence_and_is_capped() -> None:
    risk = engine(sizing="fixed_fraction", fraction=0.01, lot_size=1.0, max_position=50.0)
    # 1% of 1e6 at confidence 0.4 = 4000 of notional = 40 units at 100
    assert risk.target(Side.BUY, 0.4, "ES", 100.0, 1e6, 0.0) == 40.0
    assert risk.target(Side.SELL, 1.0, "ES", 100.0, 1e6, 0.0) == -50.0  # capped
    assert risk.target(Side.FLAT, 1.0, "ES", 100.0, 1e6, 7.0) == 7.0


def test_volatility_targeted_size_shrinks_when_volatility_rises() -> None:
    def size_after(step_bps: float) -> float:
        risk = engine(sizing="vol_target", vol_target=1000.0, max_position=1e9)
        price = 100.0
        for i in range(1, 200):
            price *= math.exp((step_bps if i % 2 else -step_bps) * 1e-4)
            risk.on_tick(tick(price, T0_NS + i * 10**9))
        return risk.target(Side.BUY, 1.0, "ES", 100.0, 1e6, 0.0)

    calm, wild = size_after(1.0), size_after(4.0)
    assert calm > 0 and wild > 0
    assert calm / wild == pytest.approx(4.0, rel=0.05)  # size ~ 1 / sigma
    fresh = RiskEngine(RiskConfig(sizing="vol_target"))
    assert fresh.target(Side.BUY, 1.0, "ES", 100.0, 1e6, 0.0) == 0.0  # no estimate: no trade


def _cmd(cid: str, command: str, scope: str, model_id: str | None = None) -> ControlCommand:
    return ControlCommand(
        command_id=cid,
        command=command,  # type: ignore[arg-type]
        scope=scope,
        reason="test",
        operator="tester",
        ts_event_ns=0,
        model_id=model_id,
    )
