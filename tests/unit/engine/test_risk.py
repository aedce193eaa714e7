"""The engine's risk and decision-rule kernel against ``RiskEngine`` with its ``DecisionRule``
(the oracle): the same ticks, signals, accounts and controls give the same decisions, checks,
texts and trading states."""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracle.control import ControlView
from tests.oracle.risk import RiskEngine
from tests.oracle.validator import Validator
from tickwise.schemas.decisions import AppliedControl, ControlCommand, Side, Signal
from tickwise.schemas.ticks import CleanTick, SourceRef
from tickwise.streams.config import DecisionConfig, ExecutionConfig, RiskConfig, ValidationConfig
from tickwise.streams.engine.batch import KIND_TRADE, SymbolTable, decode
from tickwise.streams.engine.risk import (
    BUY,
    N_OUT,
    O_APPROVED,
    O_DELTA,
    O_STATE,
    SELL,
    SIDE_FLAT,
    RiskKernel,
    check_details,
    evaluate,
    on_tick,
    rule_reasons,
)
from tickwise.streams.engine.validate import BatchValidator
from tickwise.streams.operators.decision import DecisionRule, expected_edge_bps
from tickwise.streams.operators.execution import AccountView
from tickwise.streams.sources import synthetic

EXECUTION = ExecutionConfig(multiplier=50.0, fee_per_unit=0.5)
CONFIGS = {
    "defaults": (RiskConfig(), DecisionConfig()),
    "sized, stopped, throttled": (
        RiskConfig(
            sizing="vol_target",
            vol_target=400.0,
            lot_size=0.5,
            min_order_size=0.5,
            max_notional=900_000.0,
            max_drawdown=300.0,
            max_daily_loss=200.0,
            loss_action="HALTED",
            max_orders=3,
            throttle_window_s=2.0,
            collar_bps=2.0,
            instruments={"NQ": {"max_position": 2.0, "loss_action": "REDUCING"}},
            allowed_instruments=("ES", "NQ"),
        ),
        DecisionConfig(min_hold_s=1.5, entry_cost_multiple=0.5, exit_cost_multiple=-0.2),
    ),
    "fraction, threshold rule": (
        RiskConfig(sizing="fixed_fraction", fraction=0.3, max_position=4.0),
        DecisionConfig(rule="threshold"),
    ),
}
SIDES = {Side.BUY: BUY, Side.SELL: SELL, Side.FLAT: SIDE_FLAT}


def kill(n: int) -> ControlCommand:
    return ControlCommand(
        command_id=f"k{n}", command="kill_switch_on", scope="global", reason="test", operator="me",
        ts_event_ns=0,
    )  # fmt: skip


def cleared(n: int) -> AppliedControl:
    return AppliedControl(
        command_id=f"c{n}", command="kill_switch_off", scope="global", reason="r",
        applied_ts_event_ns=0,
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_decisions_equal_the_risk_engine(name: str) -> None:
    risk_config, decision = CONFIGS[name]
    horizon_s = 5.0
    oracle = RiskEngine(
        risk_config,
        multiplier=EXECUTION.multiplier,
        rule=DecisionRule(decision, EXECUTION, horizon_s),
    )
    symbols = SymbolTable()
    kernel = RiskKernel(risk_config, EXECUTION, decision, horizon_s, symbols)
    payloads = [r.payload for r in synthetic(6, 6_000, bad_rate=0.01, regime="volatile")]
    batch = decode(payloads, symbols, "t", 0, np.arange(len(payloads)), 16_384)
    _, verdict, _ = BatchValidator(ValidationConfig(), symbols).run(batch)
    kernel.sync()
    rng = np.random.default_rng(len(name))
    validator = Validator(ValidationConfig())
    position: dict[str, float] = {}
    compared = orders = 0
    refused: set[str] = set()
    s = kernel.state
    for i, raw in enumerate(payloads):
        (clean,) = validator.on_raw(raw, SourceRef(topic="t", partition=0, offset=i))
        assert isinstance(clean, CleanTick) == (verdict[i] == 0)
        if verdict[i] != 0:
            continue
        tick = clean.tick
        k = int(batch.instrument[i])
        oracle.on_tick(tick)
        trade = batch.kind[i] == KIND_TRADE
        ts, ref, bid, ask = int(batch.ts[i]), batch.price[i], batch.bid[i], batch.ask[i]
        on_tick(s.mkt, s.last_ts, kernel.lim, k, ts, trade, ref, bid, ask)
        if rng.random() > 0.3:
            continue
        # a signal, an account and controls drawn at random, given to both
        side = [Side.BUY, Side.SELL, Side.FLAT][int(rng.integers(0, 3))]
        score = float(rng.uniform(0.0, 1.0))
        move = float(rng.choice([np.nan, 0.5, 2.0, 6.0]))
        held = position.get(tick.instrument, 0.0)
        pending = float(rng.choice([0.0, 0.0, 1.0, -0.5]))
        account = AccountView(
            tick.instrument, tick.ts_event_ns, held, pending, 0.0, tick.reference_price,
            1e6, 0.0, 0.0, 0.0, float(rng.uniform(9.9e5, 1.01e6)), 1.01e6,
            float(rng.uniform(9.99e5, 1.001e6)), 0, int(rng.integers(0, 3)),
        ) if rng.random() > 0.05 else None  # fmt: skip
        halted = kill(i) if rng.random() < 0.05 else None
        demoted = kill(-i) if rng.random() < 0.05 else None
        clear = (cleared(i),) if rng.random() < 0.03 else ()
        control = ControlView(halted, demoted, clear)
        signal = Signal(
            signal_id=f"s{i}", instrument=tick.instrument, tick_id=tick.tick_id,
            ts_event_ns=tick.ts_event_ns, model_id="m", model_version=1, score=score,
            side=side, confidence=float(rng.uniform(0.0, 1.0)), n_trained=10,
            explanation=[], capital_fraction=float(rng.choice([1.0, 0.25])),
        )  # fmt: skip
        price = tick.reference_price * float(rng.choice([1.0, 1.0003]))
        want = oracle.evaluate(signal, price, account, control, move_bps=move)
        out = np.zeros(N_OUT)
        edge = expected_edge_bps(signal.task, score, move)
        has = account is not None
        assert evaluate(
            s.mkt, kernel.lim, s.drawdown_stop, s.daily_stop_day, s.held_since, s.orders,
            s.orders_head, s.orders_len, kernel.mult, kernel.rule_edge, kernel.cost_args,
            decision.entry_cost_multiple, decision.exit_cost_multiple, kernel.min_hold_ns,
            kernel.windows, k, SIDES[side], edge, signal.confidence,
            signal.capital_fraction, tick.ts_event_ns, price,
            account.position if has else 0.0, account.pending_quantity if has else 0.0,
            account.equity if has else 0.0, account.drawdown if has else 0.0,
            account.day_pnl if has else 0.0, account.trading_day if has else 0, has,
            halted is not None, demoted is not None,
            any(a.command == "kill_switch_off" for a in clear), out,
        )  # fmt: skip
        d = want.decision
        before = (account.position + account.pending_quantity) if has else 0.0
        assert out[O_DELTA] == d.position_after - before if d.approved else True
        assert (out[O_APPROVED] == 1.0) == d.approved, i
        assert abs(out[O_DELTA]) == d.quantity, i
        assert ["ACTIVE", "REDUCING", "HALTED"][int(out[O_STATE])] == want.trading_state.value
        assert rule_reasons(kernel, out, before) == d.reasons, i
        checks = check_details(
            kernel, tick.instrument, out, before,
            (account.drawdown, account.day_pnl) if has else None, "m", halted, demoted,
        )  # fmt: skip
        assert checks == [(c.check, c.passed, c.reason, c.detail) for c in want.checks], i
        compared += 1
        refused.update(d.reject_reasons)
        if d.approved and d.quantity:
            orders += 1
            position[tick.instrument] = held + (d.position_after - before)
    assert compared > 1_000 and orders > 20
    assert {"KILL_SWITCH", "MODEL_SHADOW"} <= refused  # the random controls did refuse
    if name == "sized, stopped, throttled":
        assert {"ORDER_RATE", "PRICE_COLLAR", "INSTRUMENT_NOT_ALLOWED"} <= refused, refused
