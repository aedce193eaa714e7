"""Risk: limits reject with reason codes, rejected orders leave the position alone, FLAT holds."""

from __future__ import annotations

import pytest
import stubs
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.decisions import Action, Side
from streams.config import RiskConfig
from streams.operators.risk import RiskEngine


def decide(risk: RiskEngine, side: Side, i: int = 0, price: float = 100.0):
    return risk.on_signal(stubs.signal(side, tick_id=f"t{i}"), price)


def test_buy_goes_to_target_and_is_approved() -> None:
    risk = RiskEngine(RiskConfig(target_size=2.0))
    decision, checks = decide(risk, Side.BUY, price=4700.25)
    assert decision.approved and decision.reject_reasons == []
    assert all(c.passed and c.reason is None for c in checks)
    assert (decision.action, decision.quantity) == (Action.BUY, 2.0)
    assert (decision.position_before, decision.position_after) == (0.0, 2.0)
    assert decision.price == 4700.25
    assert risk.position("ES") == 2.0


def test_sell_from_long_reverses_to_minus_target() -> None:
    risk = RiskEngine(RiskConfig(target_size=1.0))
    decide(risk, Side.BUY, 0)
    decision, _ = decide(risk, Side.SELL, 1)
    assert (decision.action, decision.quantity, decision.position_after) == (Action.SELL, 2.0, -1.0)


def test_max_position_rejection_carries_its_reason() -> None:
    risk = RiskEngine(RiskConfig(target_size=3.0, max_position=2.0))
    decision, checks = decide(risk, Side.BUY)
    assert not decision.approved
    assert decision.reject_reasons == ["MAX_POSITION"]
    by_name = {c.check: c for c in checks}
    assert not by_name["max_position"].passed and by_name["max_position"].reason == "MAX_POSITION"
    assert by_name["max_order_size"].passed
    assert "target 3" in by_name["max_position"].detail


def test_max_order_size_rejection_carries_its_reason() -> None:
    risk = RiskEngine(RiskConfig(target_size=3.0, max_position=5.0, max_order_size=4.0))
    assert decide(risk, Side.BUY, 0)[0].approved  # 0 -> 3: an order of 3
    decision, checks = decide(risk, Side.SELL, 1)  # 3 -> -3: an order of 6
    assert not decision.approved
    assert decision.reject_reasons == ["MAX_ORDER_SIZE"]
    assert [c.reason for c in checks] == [None, "MAX_ORDER_SIZE"]


def test_both_limits_can_reject_at_once() -> None:
    risk = RiskEngine(RiskConfig(target_size=8.0, max_position=5.0, max_order_size=4.0))
    decision, _ = decide(risk, Side.SELL)
    assert sorted(decision.reject_reasons) == ["MAX_ORDER_SIZE", "MAX_POSITION"]


def test_rejected_orders_do_not_move_the_position() -> None:
    risk = RiskEngine(RiskConfig(target_size=3.0, max_position=5.0, max_order_size=4.0))
    decide(risk, Side.BUY, 0)
    decision, _ = decide(risk, Side.SELL, 1)
    assert not decision.approved
    assert decision.position_before == decision.position_after == 3.0
    assert risk.position("ES") == 3.0
    assert decision.quantity == 6.0 and decision.action is Action.SELL  # what was asked


def test_flat_holds_the_position() -> None:
    risk = RiskEngine(RiskConfig(target_size=1.0))
    decide(risk, Side.BUY, 0)
    decision, checks = decide(risk, Side.FLAT, 1)
    assert decision.action is Action.HOLD and decision.quantity == 0.0
    assert decision.position_before == decision.position_after == 1.0
    assert decision.approved and all(c.passed for c in checks)
    flat_start, _ = decide(RiskEngine(RiskConfig()), Side.FLAT)
    assert (flat_start.action, flat_start.position_after) == (Action.HOLD, 0.0)


def test_repeated_buys_do_not_pyramid() -> None:
    risk = RiskEngine(RiskConfig(target_size=1.0))
    decisions = [decide(risk, Side.BUY, i)[0] for i in range(4)]
    assert [d.position_after for d in decisions] == [1.0] * 4
    assert [d.action for d in decisions] == [Action.BUY] + [Action.HOLD] * 3


def test_positions_are_per_instrument() -> None:
    risk = RiskEngine(RiskConfig(target_size=1.0))
    risk.on_signal(stubs.signal(Side.BUY, instrument="ES"), 1.0)
    risk.on_signal(stubs.signal(Side.SELL, instrument="NQ"), 1.0)
    assert (risk.position("ES"), risk.position("NQ"), risk.position("CL")) == (1.0, -1.0, 0.0)


def test_decision_links_back_to_its_signal() -> None:
    signal = stubs.signal(Side.SELL, tick_id="t-42", score=0.1)
    decision, _ = RiskEngine(RiskConfig()).on_signal(signal, 99.5)
    assert (decision.signal_id, decision.tick_id, decision.ts_event_ns) == (
        signal.signal_id,
        signal.tick_id,
        signal.ts_event_ns,
    )
    assert (decision.score, decision.side, decision.model_id) == (0.1, Side.SELL, "logreg")


@pytest.mark.parametrize("side", list(Side))
def test_check_reports_every_limit(side: Side) -> None:
    _, checks = RiskEngine(RiskConfig()).check("ES", side)
    assert [c.check for c in checks] == ["max_position", "max_order_size"]


@settings(max_examples=60, deadline=None)
@given(
    sides=st.lists(st.sampled_from(list(Side)), max_size=30),
    target=st.floats(min_value=0.5, max_value=10.0),
    max_position=st.floats(min_value=0.5, max_value=10.0),
    max_order=st.floats(min_value=0.5, max_value=20.0),
)
def test_position_never_breaks_the_limits(
    sides: list[Side], target: float, max_position: float, max_order: float
) -> None:
    cfg = RiskConfig(target_size=target, max_position=max_position, max_order_size=max_order)
    risk = RiskEngine(cfg)
    for i, side in enumerate(sides):
        before = risk.position("ES")
        decision, _ = decide(risk, side, i)
        assert decision.position_before == before
        assert abs(decision.position_after) <= max_position
        if decision.approved:
            assert abs(decision.position_after - before) <= max_order
        else:
            assert decision.position_after == before and decision.reject_reasons
        assert risk.position("ES") == decision.position_after
