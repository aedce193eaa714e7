"""The monitor: drift alarms on real change and not on a stationary model; streaks, data quality,
P&L and the policies that turn alerts into control commands."""

from __future__ import annotations

import random

import pytest
from stubs import MS, T0_NS, signal

from tickwise.schemas.decisions import Action, Fill, Side
from tickwise.streams.config import LabelConfig, MonitorConfig
from tickwise.streams.operators.monitor import Monitor

GAP_NS = 20 * MS
HORIZON_S = 5.0
AHEAD = 250  # ticks in one horizon: the outcome of tick i is the price at i + 250


def run_model(
    accuracy: list[float] | None, seed: int, config: MonitorConfig | None = None, n: int = 60_000
) -> list:
    """Feed a random walk and a model's signals; return the monitor's alerts.

    With ``accuracy`` the model is right at tick ``i`` with probability ``accuracy[i]``
    (independent errors). Without, it bets on 10 s momentum: no skill on a random walk, and
    its errors come in long runs, as a real model's do when consecutive horizons overlap.
    """
    rng = random.Random(seed)
    prices = [100.0]
    for _ in range(n + AHEAD):
        prices.append(prices[-1] + rng.choice((-0.25, 0.25)))
    mon = Monitor(config or MonitorConfig(), LabelConfig(horizon_s=HORIZON_S))
    alerts = []
    for i in range(n):
        ts = T0_NS + i * GAP_NS
        alerts += mon.on_tick("ES", ts, prices[i])
        if accuracy is None:
            up_bet = prices[i] >= prices[max(i - 2 * AHEAD, 0)]
        else:
            up = prices[i + AHEAD] > prices[i]
            up_bet = up if rng.random() < accuracy[i] else not up
        score = 0.6 if up_bet else 0.4
        side = Side.BUY if score > 0.5 else Side.SELL
        mon.on_signal(signal(side=side, tick_id=str(i), ts_ns=ts, score=score), prices[i])
    return alerts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_stationary_model_raises_no_drift_alarm(seed: int) -> None:
    alerts = run_model(None, seed)  # 20 minutes of event time
    assert [a for a in alerts if a.code == "MODEL_DRIFT"] == []


@pytest.mark.parametrize("seed", [1, 2])
def test_a_model_that_goes_wrong_is_flagged_soon_after(seed: int) -> None:
    change = 40_000
    accuracy = [0.6] * change + [0.2] * 20_000
    drifts = [a for a in run_model(accuracy, seed) if a.code == "MODEL_DRIFT"]
    assert drifts, "the drop in accuracy went unnoticed"
    first = drifts[0]
    assert first.ts_event_ns >= T0_NS + change * GAP_NS
    assert first.ts_event_ns <= T0_NS + change * GAP_NS + 240 * 10**9  # within 4 minutes
    assert first.model_id == "logreg" and first.instrument == "ES"


def test_policies_turn_alerts_into_commands_effective_at_the_alert() -> None:
    cfg = MonitorConfig(
        policies={
            "MODEL_DRIFT": "demote",
            "PNL_LOSS": "halt_instrument",
            "DATA_QUALITY": "global_kill",
        }
    )
    mon = Monitor(cfg, LabelConfig())
    drift = next(
        a for a in run_model([0.6] * 40_000 + [0.2] * 20_000, 1) if a.code == "MODEL_DRIFT"
    )
    demote = mon.act(drift)
    assert demote is not None and demote.command == "demote" and demote.scope == "ES"
    assert demote.model_id == "logreg" and demote.effective_ts_event_ns == drift.ts_event_ns
    bad = [mon.on_validated("ES", clean=i % 5 != 0, ts_event_ns=T0_NS + i) for i in range(200)]
    (quality,) = [a for batch in bad for a in batch]
    assert quality.code == "DATA_QUALITY" and quality.ts_event_ns <= T0_NS + 200
    kill = mon.act(quality)
    assert kill is not None and (kill.command, kill.scope) == ("kill_switch_on", "global")
    assert Monitor(MonitorConfig(), LabelConfig()).act(quality) is None  # default: alert only


def fill(i: int, realized_after: float) -> Fill:
    return Fill(
        fill_id=f"f{i}",
        order_id=f"o{i}",
        decision_id=f"d{i}",
        instrument="ES",
        tick_id=str(i),
        ts_event_ns=T0_NS + i,
        order_ts_event_ns=T0_NS + i - 1,
        side=Action.BUY,
        quantity=1.0,
        price=100.0,
        reference_price=100.0,
        fee=0.0,
        position_after=0.0,
        cash_after=0.0,
        realized_pnl_after=realized_after,
        model_id="logreg",
        model_version=1,
    )


def test_losing_streaks_alert_once_and_rearm_after_a_win() -> None:
    mon = Monitor(MonitorConfig(max_losing_streak=3), LabelConfig())
    realized = [-1.0, -1.0, -2.0, -3.0, -4.0, -5.0, -4.0, -5.0, -6.0, -7.0]
    alerts = [a for i, r in enumerate(realized) for a in mon.on_fill(fill(i, r))]
    # 0 opens (-1 from 0 is a loss too), streaks: 1,1(open? no change),2,3,4,5,0,1,2,3
    assert [a.code for a in alerts] == ["LOSING_STREAK", "LOSING_STREAK"]
    stats = mon.stats("ES")["models"]["logreg"]
    assert stats["trades"] == len(realized) and stats["worst_losing_streak"] == 5
