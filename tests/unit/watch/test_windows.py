"""The trading windows: event-time arithmetic, counts that add up to the audit trail's, and the
same windows again from the same entries, restarted or not."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tests.stubs import audit_bodies
from tickwise.schemas.decisions import AUDIT_ADAPTER, Action, AuditRecord, HoldSummary
from tickwise.streams.config import AnomalyConfig, LabelConfig
from tickwise.streams.watch.windows import HOPPING, TUMBLING, Windows, WindowSpec

CONFIG = AnomalyConfig(window_s=0.5, hop_size_s=1.5, hop_step_s=0.5, history=10, min_history=3)


@given(
    ts=st.integers(min_value=0, max_value=2**62),
    step=st.integers(min_value=1, max_value=10**12),
    hops=st.integers(min_value=1, max_value=6),
)
def test_an_event_counts_in_every_window_that_holds_it_and_no_other(
    ts: int, step: int, hops: int
) -> None:
    spec = WindowSpec("h", step * hops, step)
    starts = spec.starts(ts)
    assert starts == sorted(starts) and len(starts) == hops
    assert all(s <= ts < s + spec.size_ns and s % step == 0 for s in starts)
    assert spec.starts(ts)[-1] + step > ts  # the newest window is the one opened last
    assert len(WindowSpec("t", step, step).starts(ts)) == 1


def entries(holds: str = "summary") -> list[AuditRecord | HoldSummary]:
    bodies = audit_bodies(1500, hold_summary_s=0.25, holds=holds)
    return [AUDIT_ADAPTER.validate_json(b) for b in bodies]


def everything(windows: Windows, spec: str) -> list[dict[str, object]]:
    out = []
    for state in windows.states.values():
        out += state["closed"][spec] + list(state["open"][spec].values())
    return out


def test_tumbling_windows_add_up_to_the_trail_and_hopping_ones_count_each_event_thrice() -> None:
    trail = entries(holds="each")  # a record, and so a price, per decided tick
    label = LabelConfig(horizon_s=0.5)
    windows = Windows(CONFIG.model_copy(update={"history": 10_000}), label, {})
    for entry in trail:
        windows.on_entry(entry)
    records = [e for e in trail if isinstance(e, AuditRecord)]
    decided = len(records) + sum(e.holds for e in trail if isinstance(e, HoldSummary))
    intents = [r.decision for r in records if r.decision.action is not Action.HOLD]
    refused = sum(len(d.reject_reasons) for d in intents if not d.approved)
    fills = sum(len(r.fills) for r in records)
    tumbling = everything(windows, TUMBLING)
    assert sum(w["decided_ticks"] for w in tumbling) == decided
    assert sum(w["intents"] for w in tumbling) == len(intents) > 0
    assert sum(w["orders"] for w in tumbling) == sum(d.approved for d in intents)
    assert sum(sum(w["refusals"].values()) for w in tumbling) == refused
    assert sum(w["fills"] for w in tumbling) == fills > 0
    hopping = everything(windows, HOPPING)  # 1.5 s every 0.5 s: three windows hold each event
    assert sum(w["decided_ticks"] for w in hopping) == 3 * decided
    assert all(w["end_ns"] - w["start_ns"] == 1_500_000_000 for w in hopping)
    # realised P&L per window adds up to each instrument's last fill's account
    for instrument in {r.instrument for r in records}:
        last = [f for r in records if r.instrument == instrument for f in r.fills][-1]
        first = next(f for r in records if r.instrument == instrument for f in r.fills)
        mine = [
            w
            for key, state in windows.states.items()
            if key.startswith(f"{instrument}|")
            for w in state["closed"][TUMBLING] + list(state["open"][TUMBLING].values())
        ]
        realised = sum(w["realized_pnl"] for w in mine)
        assert abs(realised - (last.realized_pnl_after - first.realized_pnl_after)) < 1e-6
    assert any(w["outcomes"] for w in tumbling)
    assert all(0 <= w["hits"] <= w["outcomes"] for w in tumbling)


def test_the_same_entries_make_the_same_windows_across_a_restart() -> None:
    trail = entries()
    straight = Windows(CONFIG, LabelConfig(), {})
    closed_straight = [c for e in trail for c in straight.on_entry(e)]
    # a restart: the state goes through JSON (the table's changelog) every 100 entries
    states: dict[str, object] = {}
    restarted = Windows(CONFIG, LabelConfig(), states)
    closed_restarted = []
    for i, entry in enumerate(trail):
        if i % 100 == 0:
            restarted = Windows(CONFIG, LabelConfig(), json.loads(json.dumps(restarted.states)))
        closed_restarted += restarted.on_entry(entry)
    assert len(closed_straight) > 20
    assert [(c.key, c.window) for c in closed_straight] == [
        (c.key, c.window) for c in closed_restarted
    ]
    assert json.loads(json.dumps(straight.states)) == json.loads(json.dumps(restarted.states))
    # history is the trailing closed windows, oldest first, at most ``history`` of them
    for c in closed_straight:
        assert len(c.history) <= CONFIG.history
        assert all(h["end_ns"] <= c.window["start_ns"] for h in c.history)
