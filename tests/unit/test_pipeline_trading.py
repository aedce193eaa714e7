"""The trading path: orders, fills and accounts appear in the audit trail exactly once, in what
the engine (and the per-tick oracle beside it) publishes."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from stubs import IMPLS, Stream, decide, threshold_rule

from tickwise.schemas.decisions import Action, AuditRecord, Fill
from tickwise.schemas.topics import ALERTS, AUDIT, CONTROL, DECISIONS, FILLS, TICKS_QUARANTINE
from tickwise.streams.config import load_config
from tickwise.streams.operators.audit import verify_chain
from tickwise.streams.sources import synthetic


def run(impl: str, config, count: int = 6000, seed: int = 7) -> Stream:
    """A clean stream decided live: no end of input, so fills after an instrument's last
    record stay unaudited, as a worker's do."""
    stream = decide(impl, synthetic(seed=seed, count=count), config, finish=False)
    assert not stream.out[TICKS_QUARANTINE.name]
    return stream


@pytest.fixture(
    scope="module",
    params=[(i, ms) for i in IMPLS for ms in (0.0, 200.0)],
    ids=[f"{i}-{w}" for i in IMPLS for w in ("every-tick", "sampled-200ms")],
)
def decided(request: pytest.FixtureRequest) -> tuple[Stream, float]:
    """Per-tick decisions, and decisions on an event-time cadence (``features.sample_ms``),
    where most fills land on ticks that decide nothing."""
    impl, sample_ms = request.param
    config = load_config(execution={"latency_ms": 40.0}, features={"sample_ms": sample_ms})
    # the threshold rule: fills and audit need a stream that trades
    return run(impl, threshold_rule(config), count=12000 if sample_ms else 6000), config


def records_of(stream: Stream) -> list[AuditRecord]:
    return [e for e in stream.messages(AUDIT.name) if isinstance(e, AuditRecord)]


def test_every_fill_is_in_exactly_one_audit_record_after_its_order(decided) -> None:
    stream, _ = decided
    fills = stream.messages(FILLS.name)
    records = records_of(stream)
    audited = [f for r in records for f in r.fills]
    assert len(fills) > 20, "the stream must trade"
    assert max(Counter(f.fill_id for f in audited).values()) == 1
    assert sorted(f.fill_id for f in audited) == sorted(
        f.fill_id for f in fills if f.fill_id in {a.fill_id for a in audited}
    )
    # fills held back on ticks without a decision reach the next record of their instrument:
    # those no record has yet came after their instrument's last one
    last = {r.instrument: r.ts_event_ns for r in records}
    unaudited = [f for f in fills if f.fill_id not in {a.fill_id for a in audited}]
    assert len(unaudited) < len(fills) / 10
    assert all(f.ts_event_ns >= last[f.instrument] for f in unaudited)
    orders = {r.order.order_id: r for r in records if r.order is not None}
    for record in records:
        for fill in record.fills:
            placed = orders[fill.order_id]
            assert placed.seq < record.seq and placed.instrument == record.instrument
            assert fill.ts_event_ns >= placed.order.due_ts_event_ns
            assert fill.tick_id != placed.decision.tick_id
    assert {f.order_id for f in fills} <= set(orders)


def test_orders_come_only_from_approved_trading_decisions(decided) -> None:
    stream, _ = decided
    records = records_of(stream)
    # every order intent, approved or refused, is published with its record
    intents = [d for d in stream.messages(DECISIONS.name) if d.action is not Action.HOLD]
    assert intents and [r.decision for r in records if r.decision.action is not Action.HOLD] == (
        intents
    )
    assert any(d.approved for d in intents)
    for record in records:
        d = record.decision
        assert (record.order is not None) == (d.approved and d.action is not Action.HOLD)


def test_account_positions_are_the_sum_of_fills_and_the_chain_verifies(decided) -> None:
    stream, config = decided
    signed: dict[str, float] = defaultdict(float)
    for f in stream.messages(FILLS.name):
        signed[f.instrument] += f.quantity if f.side is Action.BUY else -f.quantity
        assert f.position_after == signed[f.instrument]
        assert abs(f.position_after) <= config.risk.max_position
    assert len(signed) > 1
    entries = stream.messages(AUDIT.name)
    assert any(isinstance(e, AuditRecord) for e in entries)
    assert verify_chain(entries) == []


def test_fill_contract_round_trips_through_json(decided) -> None:
    stream, _ = decided
    fill = stream.messages(FILLS.name)[0]
    assert Fill.model_validate_json(fill.to_bytes()) == fill


@pytest.mark.parametrize("impl", IMPLS)
def test_a_monitor_policy_halts_the_instrument_from_the_alert_on_and_audits_it(impl: str) -> None:
    config = load_config(monitor={"max_loss": 1.0, "policies": {"PNL_LOSS": "halt_instrument"}})
    stream = run(impl, config, count=4000)
    alerts = [a for a in stream.messages(ALERTS.name) if a.code == "PNL_LOSS"]
    commands = stream.messages(CONTROL.name)
    assert alerts and len(commands) == len(alerts)
    assert [c.command_id for c in commands] == [f"mon-{a.alert_id}" for a in alerts]
    records = records_of(stream)
    for alert in alerts:
        halted = [
            r
            for r in records
            if r.instrument == alert.instrument and r.decision.ts_event_ns > alert.ts_event_ns
        ]
        assert halted and not any(r.order is not None for r in halted)
        first = halted[0]
        assert [c.command_id for c in first.controls_applied] == [f"mon-{alert.alert_id}"]
        assert first.trading_state.value == "HALTED"
