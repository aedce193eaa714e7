"""Hold summaries: runs of HOLDs become links of the audit chain that account for every tick."""

from __future__ import annotations

import pytest
import stubs
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.schemas.decisions import (
    AUDIT_ADAPTER,
    Action,
    AppliedControl,
    AuditRecord,
    Decision,
    HoldSummary,
    Side,
    TradingState,
)
from tickwise.streams.config import AuditConfig
from tickwise.streams.operators.audit import AuditChain, Entry, reason_key, seal, verify_chain

S = stubs.S
STAY = "edge +0.80 bps, |edge| < cost 3.20 bps: stay flat"


def decision(i: int, ts_ns: int, action: Action = Action.HOLD, reasons: tuple = (STAY,)):
    """A decision (and its signal and features) at ``ts_ns``; a HOLD unless ``action`` says."""
    sig = stubs.signal(Side.FLAT, tick_id=f"t{i}", ts_ns=ts_ns)
    fv = stubs.feature_vector(sig.tick_id, ts_ns, 100.0, x=float(i))
    d = Decision(
        decision_id=f"dec-{i}",
        signal_id=sig.signal_id,
        instrument="ES",
        tick_id=sig.tick_id,
        ts_event_ns=ts_ns,
        model_id="logreg",
        model_version=1,
        score=0.5,
        side=Side.FLAT,
        action=action,
        quantity=0.0 if action is Action.HOLD else 1.0,
        price=100.0,
        approved=True,
        reject_reasons=[],
        position_before=0.0,
        position_after=0.0,
        reasons=list(reasons),
    )
    return fv, sig, d


def feed(chain: AuditChain, steps: list[tuple[int, Action]], **kw) -> list[Entry]:
    """Entries for decisions at (seconds, action) steps, then the open runs closed."""
    out: list[Entry] = []
    for i, (sec, action) in enumerate(steps):
        fv, sig, d = decision(i, stubs.T0_NS + sec * S, action)
        out += [e for e, _ in chain.on_decision(fv, sig, [], d, **kw)]
    return out + [e for e, _ in chain.close_runs()]


def test_a_run_of_holds_is_one_summary_per_period_and_accounts_for_every_tick() -> None:
    chain = AuditChain(AuditConfig(hold_summary_s=60.0))
    # T0 is a whole minute: seconds 0..59 are one period, 60.. the next
    entries = feed(chain, [(s, Action.HOLD) for s in (0, 10, 59, 60, 61, 130)])
    assert all(isinstance(e, HoldSummary) for e in entries)
    summaries: list[HoldSummary] = entries  # type: ignore[assignment]
    assert [s.holds for s in summaries] == [3, 2, 1]
    assert [s.decided_ticks for s in summaries] == [3, 5, 6]
    assert (summaries[0].first_tick_id, summaries[0].last_tick_id) == ("t0", "t2")
    assert summaries[0].from_ts_event_ns == stubs.T0_NS
    assert summaries[0].to_ts_event_ns == summaries[0].ts_event_ns == stubs.T0_NS + 59 * S
    assert summaries[0].reasons == {"edge # bps, |edge| < cost # bps: stay flat": 3}
    assert verify_chain(entries) == []


def test_an_order_intent_interrupts_the_run_and_is_recorded_after_its_summary() -> None:
    entries = feed(
        AuditChain(), [(0, Action.HOLD), (1, Action.HOLD), (2, Action.BUY), (3, Action.HOLD)]
    )
    kinds = [type(e).__name__ for e in entries]
    assert kinds == ["HoldSummary", "AuditRecord", "HoldSummary"]
    assert [e.seq for e in entries] == [0, 1, 2]
    assert entries[1].decision.action is Action.BUY  # type: ignore[union-attr]
    assert entries[2].decided_ticks == 4  # type: ignore[union-attr]
    assert verify_chain(entries) == []


def test_a_hold_that_changes_state_control_or_fills_is_a_record_of_its_own() -> None:
    control = AppliedControl(
        command_id="k1", command="kill_switch_on", scope="ES", reason="r", applied_ts_event_ns=1
    )
    for kw in (
        {"trading_state": TradingState.HALTED},  # ACTIVE -> HALTED on a HOLD
        {"controls": [control]},
    ):
        chain = AuditChain()
        feed(chain, [(0, Action.HOLD)])  # a run, closed
        fv, sig, d = decision(9, stubs.T0_NS + 2 * S)
        (entry,) = [e for e, _ in chain.on_decision(fv, sig, [], d, **kw)]
        assert isinstance(entry, AuditRecord) and entry.decision.action is Action.HOLD
    chain = AuditChain()
    fv, sig, d = decision(0, stubs.T0_NS)
    chain.hold_controls("ES", [control.model_copy(update={"detail": "logreg:v2 -> canary"})])
    (entry,) = [e for e, _ in chain.on_decision(fv, sig, [], d)]
    assert isinstance(entry, AuditRecord) and entry.controls_applied[0].detail


def test_each_mode_records_every_hold() -> None:
    entries = feed(AuditChain(AuditConfig(holds="each")), [(s, Action.HOLD) for s in range(5)])
    assert [type(e) for e in entries] == [AuditRecord] * 5


def test_dropped_holds_show_although_every_link_is_intact() -> None:
    chain = AuditChain()
    entries = feed(chain, [(0, Action.HOLD), (1, Action.BUY), (70, Action.HOLD)])
    last = entries[-1]
    assert isinstance(last, HoldSummary)
    # a producer that lost a hold but chained and hashed what it had: links verify, counts not
    forged = last.model_copy(update={"decided_ticks": last.decided_ticks + 1})
    resealed, _ = seal(forged.model_copy(update={"hash": ""}))
    problems = verify_chain([*entries[:-1], resealed])
    assert len(problems) == 1 and "accounts for" in problems[0]


def test_summaries_survive_the_wire_and_parse_as_their_kind() -> None:
    chain = AuditChain()
    for i, sec in enumerate([0, 1, 2, 65]):
        fv, sig, d = decision(i, stubs.T0_NS + sec * S)
        for entry, wire in chain.on_decision(fv, sig, [], d):
            assert wire == entry.to_bytes()
            assert AUDIT_ADAPTER.validate_json(wire) == entry


def test_reason_key_leaves_numbers_out() -> None:
    assert reason_key(["held 1.25 s < min hold 5 s: keep long"]) == (
        "held # s < min hold # s: keep long"
    )
    assert reason_key(["a 1", "b -2.5"]) == "a #; b #"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.sampled_from([Action.HOLD] * 4 + [Action.BUY])),
        max_size=40,
    ),
    st.floats(min_value=0.5, max_value=30.0),
)
def test_every_decided_tick_is_a_record_or_counted_in_one_summary(steps, period_s) -> None:
    steps = sorted(steps, key=lambda x: x[0])
    entries = feed(AuditChain(AuditConfig(hold_summary_s=period_s)), steps)
    records = sum(isinstance(e, AuditRecord) for e in entries)
    holds = sum(e.holds for e in entries if isinstance(e, HoldSummary))
    assert records + holds == len(steps)
    assert records == sum(a is Action.BUY for _, a in steps)
    assert [e.seq for e in entries] == list(range(len(entries)))
    assert verify_chain(entries) == []


REASONS = ["edge 1.5 bps: stay flat", "held 2 s < min hold 5 s: keep long", "no edge"]


@st.composite
def _holds_in_stretches(draw: st.DrawFn) -> tuple[list[tuple], list[list[list[int]]]]:
    """Plain HOLDs of one instrument (seconds apart, position, model version, reason) in time
    order, cut into stretches (one period, position and version each, and cut anywhere
    else too), the stretches cut into calls."""
    holds, sec = [], 0
    for _ in range(draw(st.integers(1, 40))):
        sec += draw(st.integers(0, 40))
        position = draw(st.sampled_from([0.0, 0.0, 1.0, -2.5]))
        holds.append((sec, position, draw(st.integers(1, 2)), draw(st.sampled_from(REASONS))))
    stretches: list[list[int]] = [[0]]
    for i in range(1, len(holds)):
        same = (holds[i][0] // 30, *holds[i][1:3]) == (holds[i - 1][0] // 30, *holds[i - 1][1:3])
        if same and not draw(st.booleans()):
            stretches[-1].append(i)
        else:
            stretches.append([i])
    calls: list[list[list[int]]] = [[]]
    for s in stretches:
        if calls[-1] and draw(st.booleans()):
            calls.append([])
        calls[-1].append(s)
    return holds, calls


@settings(max_examples=150, deadline=None)
@given(_holds_in_stretches(), st.booleans())
def test_stretches_counted_at_once_equal_each_hold_counted_alone(case, opened) -> None:
    """What the engine counts in bulk is what the oracle's HOLDs one by one make: the same
    summaries, bytes and hash chain included, and the same chain afterwards."""
    holds, calls = case
    config = AuditConfig(hold_summary_s=30.0)
    one_by_one, bulk = AuditChain(config), AuditChain(config)
    expected: list[bytes] = []
    got: list[bytes] = []
    if opened:  # a run left open by an earlier batch, which the first stretch may go on with
        for chain, out in ((one_by_one, expected), (bulk, got)):
            fv, sig, d = decision(99, stubs.T0_NS)
            out += [w for _, w in chain.on_decision(fv, sig, [], d)]
    for i, (sec, position, version, reason) in enumerate(holds):
        fv, sig, d = decision(i, stubs.T0_NS + sec * S, reasons=(reason,))
        d = d.model_copy(update={"position_before": position, "model_version": version})
        expected += [w for _, w in one_by_one.on_decision(fv, sig, [], d)]
    for call in calls:
        firsts, lasts = [holds[s[0]] for s in call], [holds[s[-1]] for s in call]
        counts = []
        for s in call:
            keys = [reason_key([holds[i][3]]) for i in s]
            counts.append({k: keys.count(k) for k in keys})
        given_counts = [dict(c) for c in counts]
        got += [
            w
            for _, w in bulk.count_stretches(
                "ES", TradingState.ACTIVE, ["logreg"] * len(call), [h[2] for h in firsts],
                [stubs.T0_NS + h[0] * S for h in firsts], [f"t{s[0]}" for s in call],
                [stubs.T0_NS + h[0] * S for h in lasts], [f"t{s[-1]}" for s in call],
                [h[1] for h in firsts], counts,
            )
        ]  # fmt: skip
        assert counts == given_counts  # the caller's mappings are left as they were
    assert got == expected
    assert bulk.export_state("ES") == one_by_one.export_state("ES")
    closed = [w for _, w in bulk.close_runs()]
    assert closed == [w for _, w in one_by_one.close_runs()]
    entries = [AUDIT_ADAPTER.validate_json(w) for w in got + closed]
    assert verify_chain(entries) == []
    assert sum(e.holds for e in entries if isinstance(e, HoldSummary)) == len(holds) + opened


def test_stretches_that_span_periods_or_follow_something_to_record_are_refused() -> None:
    chain = AuditChain(AuditConfig(hold_summary_s=30.0))
    one = {"no edge": 1}
    t0 = stubs.T0_NS
    with pytest.raises(ValueError, match="span periods"):
        chain.count_stretches(
            "ES", TradingState.ACTIVE, ["m"], [1], [t0], ["a"], [t0 + 30 * S], ["b"], [0.0], [one]
        )
    control = AppliedControl(
        command_id="k1", command="kill_switch_on", scope="ES", reason="r", applied_ts_event_ns=1
    )
    chain.hold_controls("ES", [control])
    with pytest.raises(ValueError, match="something to record"):
        chain.count_stretches(
            "ES", TradingState.ACTIVE, ["m"], [1], [t0], ["a"], [t0], ["a"], [0.0], [one]
        )
    assert chain.count_stretches("ES", TradingState.ACTIVE, [], [], [], [], [], [], [], []) == []
