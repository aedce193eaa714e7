"""The anomaly detectors: the robust z-score's invariances, no alarm on a steady history, an
alarm on a spike, and an order-rate burst in the engine's audit trail answered once by
the halt policy at the window's event time, the same on every run."""

from __future__ import annotations

import math
import tomllib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.stubs import decide, squeezed_feed
from tickwise.schemas.decisions import AuditRecord, HoldSummary
from tickwise.schemas.topics import AUDIT
from tickwise.streams.config import AnomalyConfig, TickwiseConfig
from tickwise.streams.operators.validation.rules import MAD_TO_STD
from tickwise.streams.watch.anomaly import Anomalies, judge, robust_z
from tickwise.streams.watch.windows import empty_counts

# whole numbers as floats: the invariances are the arithmetic's, not float rounding's
values = st.integers(min_value=-(10**6), max_value=10**6).map(float)
histories = st.lists(values, min_size=1, max_size=50)


@given(value=values, history=histories, c=st.floats(min_value=1e-3, max_value=1e3))
def test_the_robust_z_score_does_not_depend_on_units_or_origin(
    value: float, history: list[float], c: float
) -> None:
    z = robust_z(value, history)
    scaled = robust_z(value * c, [h * c for h in history])
    shifted = robust_z(value + 1000.0, [h + 1000.0 for h in history])
    if z is None:
        assert scaled is None and shifted is None
        return
    assert scaled is not None and math.isclose(scaled, z, rel_tol=1e-9, abs_tol=1e-9)
    assert shifted is not None and math.isclose(shifted, z, rel_tol=1e-9, abs_tol=1e-9)


@given(level=values, n=st.integers(min_value=1, max_value=40))
def test_a_constant_history_has_no_alarm_and_no_yardstick_for_a_departure(
    level: float, n: int
) -> None:
    assert robust_z(level, [level] * n) == 0.0
    assert robust_z(level + 1.0, [level] * n) is None
    assert robust_z(level + 1.0, [level] * n, min_scale=0.5) == pytest.approx(2.0)


@given(
    history=st.lists(st.integers(min_value=0, max_value=1000), min_size=5, max_size=40),
    k=st.floats(min_value=0.0, max_value=100.0),
)
def test_a_spike_of_k_deviations_scores_k(history: list[int], k: float) -> None:
    mid = sorted(history)[len(history) // 2] if len(history) % 2 else None
    assume(mid is not None)
    mad = sorted(abs(h - mid) for h in history)[len(history) // 2]
    assume(mad > 0)
    z = robust_z(mid + k * MAD_TO_STD * mad, [float(h) for h in history])
    assert z == pytest.approx(k, abs=1e-9)


def window(intents: int, ticks: int = 500, pnl: float = 0.0) -> dict[str, object]:
    w = empty_counts(0, 1)
    w.update(intents=intents, decided_ticks=ticks, marked_pnl=pnl)
    return w


CONFIG = AnomalyConfig(min_history=5, history=30, burst_z=6.0, burst_min_orders=20)


@given(level=st.integers(min_value=0, max_value=10_000), n=st.integers(min_value=5, max_value=30))
def test_a_steady_trading_history_raises_nothing(level: int, n: int) -> None:
    past = [window(level, pnl=-3.0) for _ in range(n)]
    assert not any(f.firing for f in judge(window(level, pnl=-3.0), past, CONFIG))


@given(
    level=st.integers(min_value=0, max_value=2000),
    k=st.floats(min_value=0.0, max_value=40.0),
)
def test_a_burst_alarms_exactly_when_it_is_burst_z_deviations_out(level: int, k: float) -> None:
    past = [window(level + d) for d in (-2, -1, 0, 1, 2) * 4]  # median level, MAD 1
    scale = max(MAD_TO_STD, math.sqrt(max(level, 1)))
    now = level + math.ceil(k * scale)
    burst = {f.code: f.firing for f in judge(window(now), past, CONFIG)}["ORDER_BURST"]
    assert burst == ((now - level) / scale >= 6.0 and now >= 20)
    assert judge(window(now), past[:4], CONFIG) == []  # too little history: not judged


def test_silence_and_a_pnl_drop_are_judged_against_the_keys_own_past() -> None:
    past = [window(30 + i % 5, pnl=float(i % 7 - 3)) for i in range(20)]
    found = {f.code: f.firing for f in judge(window(0, ticks=400, pnl=-200.0), past, CONFIG)}
    assert found == {"ORDER_BURST": False, "SILENT_MODEL": True, "PNL_DROP": True}
    quiet = {f.code: f.firing for f in judge(window(0, ticks=50), past, CONFIG)}
    assert not quiet["SILENT_MODEL"]  # hardly any ticks: a quiet market, not a silent model


BURST_CONFIG = """
[decision]
rule = "threshold"
[model]
warmup_labels = 5
[label]
horizon_s = 0.5
[audit]
hold_summary_s = 5.0
[watch.anomaly]
window_s = 5.0
hop_size_s = 10.0
hop_step_s = 5.0
min_history = 8
history = 30
"""


def findings(feed_args: tuple[int, int, int, int]) -> list[tuple[str, str, int]]:
    config = TickwiseConfig.model_validate(tomllib.loads(BURST_CONFIG))
    anomalies = Anomalies(config, {})
    out: list[tuple[str, str, int]] = []
    # the audit trail as a worker's engine publishes it (a live worker has no end of input)
    trail = decide("engine", squeezed_feed(3, *feed_args), config, finish=False)
    for entry in trail.messages(AUDIT.name):
        assert isinstance(entry, AuditRecord | HoldSummary)
        alerts, commands = anomalies.on_entry(entry)
        out += [(a.code, a.alert_id, a.ts_event_ns) for a in alerts]
        out += [(c.command, c.command_id, c.effective_ts_event_ns or -1) for c in commands]
        assert all(c.scope == "ES" and c.ts_event_ns == c.effective_ts_event_ns for c in commands)
    return out


@pytest.mark.slow
def test_an_order_rate_burst_halts_its_instrument_at_the_windows_end_on_every_run() -> None:
    found = findings((7000, 3000, 6000, 50))  # ticks 3000..6000 fifty times faster
    codes = [code for code, _, _ in found]
    assert codes[:2] == ["ORDER_BURST", "kill_switch_on"], found
    (_, alert_id, alert_ts), (_, command_id, effective) = found[:2]
    assert command_id == f"cmd-{alert_id}" and effective == alert_ts
    assert alert_ts % 5_000_000_000 == 0  # a window's end
    assert codes.count("kill_switch_on") == 1  # the burst's clearing issues nothing
    assert findings((7000, 3000, 6000, 50)) == found  # the same trail, the same findings
    # the same ticks at their own pace: no burst and no command (a silent window may come)
    calm = findings((7000, 3000, 6000, 1))
    assert not [f for f in calm if f[0] in ("ORDER_BURST", "kill_switch_on")], calm
