"""The trading path: orders, fills and accounts appear in the audit trail exactly once."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from stubs import threshold_rule

from tests.oracle.pipeline import Decided, Pipeline
from tickwise.schemas.decisions import Action, AuditRecord, Fill
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import SourceRef
from tickwise.streams.config import load_config
from tickwise.streams.operators.audit import verify_chain
from tickwise.streams.sources import synthetic


def run(pipeline: Pipeline, count: int = 6000, seed: int = 7) -> list[Decided]:
    out = []
    for rec in synthetic(seed=seed, count=count):
        verdict = pipeline.validate(
            rec.payload, SourceRef(topic="t", partition=0, offset=rec.index)
        )
        assert not isinstance(verdict, QuarantineRecord)
        out.append(pipeline.decide(verdict))
    return out


@pytest.fixture(scope="module", params=[0.0, 200.0], ids=["every-tick", "sampled-200ms"])
def decided(request: pytest.FixtureRequest) -> tuple[Pipeline, list[Decided]]:
    """Per-tick decisions, and decisions on an event-time cadence (``features.sample_ms``),
    where most fills land on ticks that decide nothing."""
    config = load_config(execution={"latency_ms": 40.0}, features={"sample_ms": request.param})
    pipeline = Pipeline(threshold_rule(config))  # fills and audit need a stream that trades
    return pipeline, run(pipeline, count=12000 if request.param else 6000)


def test_every_fill_is_in_exactly_one_audit_record_after_its_order(decided) -> None:
    pipeline, outs = decided
    fills = [f for d in outs for f in d.fills]
    records = [d.audit for d in outs if d.audit is not None]
    audited = [f for r in records for f in r.fills]
    assert len(fills) > 20, "the stream must trade"
    # fills held back on ticks without a decision reach the next record of their instrument
    pending = {
        i: pipeline.audit.export_state(i).unaudited_fills for i in pipeline.execution.instruments()
    }
    assert sorted(f.fill_id for f in audited + [f for p in pending.values() for f in p]) == sorted(
        f.fill_id for f in fills
    )
    assert max(Counter(f.fill_id for f in audited).values()) == 1
    orders = {r.order.order_id: r for r in records if r.order is not None}
    for record in records:
        for fill in record.fills:
            placed = orders[fill.order_id]
            assert placed.seq < record.seq and placed.instrument == record.instrument
            assert fill.ts_event_ns >= placed.order.due_ts_event_ns
            assert fill.tick_id != placed.decision.tick_id


def test_orders_come_only_from_approved_trading_decisions(decided) -> None:
    _, outs = decided
    for d in outs:
        if d.decision is None:
            continue
        trades = d.decision.approved and d.decision.action is not Action.HOLD
        assert (d.order is not None) == trades
        if d.decision.action is not Action.HOLD:  # an order intent is always a record
            assert d.audit is not None
        if d.audit is not None:
            assert (d.audit.order is not None) == trades


def test_account_positions_are_the_sum_of_fills_and_the_chain_verifies(decided) -> None:
    pipeline, outs = decided
    signed: dict[str, float] = defaultdict(float)
    for d in outs:
        for f in d.fills:
            signed[f.instrument] += f.quantity if f.side is Action.BUY else -f.quantity
    for instrument in pipeline.execution.instruments():
        acct = pipeline.execution.account(instrument)
        assert acct.position == signed[instrument]
        assert abs(acct.position) <= pipeline.config.risk.max_position
    entries = [entry for d in outs for entry, _ in d.audit_entries]
    assert any(isinstance(e, AuditRecord) for e in entries)
    assert verify_chain(entries) == []


def test_fill_contract_round_trips_through_json(decided) -> None:
    _, outs = decided
    fill = next(f for d in outs for f in d.fills)
    assert Fill.model_validate_json(fill.to_bytes()) == fill


def test_a_monitor_policy_halts_the_instrument_from_the_alert_on_and_audits_it() -> None:
    config = load_config(monitor={"max_loss": 1.0, "policies": {"PNL_LOSS": "halt_instrument"}})
    pipeline = Pipeline(config)
    outs = run(pipeline, count=4000)
    alerts = [a for d in outs for a in d.alerts if a.code == "PNL_LOSS"]
    commands = [c for d in outs for c in d.commands]
    assert alerts and len(commands) == len(alerts)
    for alert in alerts:
        halted = [
            d
            for d in outs
            if d.decision is not None
            and d.decision.instrument == alert.instrument
            and d.decision.ts_event_ns > alert.ts_event_ns
        ]
        assert halted and not any(d.order is not None for d in halted)
        first = halted[0].audit
        assert [c.command_id for c in first.controls_applied] == [f"mon-{alert.alert_id}"]
        assert first.trading_state.value == "HALTED"
