"""What a decided tick publishes: order intents and state changes as decisions with records,
HOLDs as summaries in the audit chain (or one by one), signals at the configured rate."""

from __future__ import annotations

import itertools

import pytest
from stubs import audit_entries

from tests.oracle.pipeline import Decided, Pipeline
from tickwise.schemas.decisions import Action, AuditRecord, Decision, HoldSummary, Signal
from tickwise.schemas.ticks import QuoteTick, SourceRef, TradeTick
from tickwise.schemas.topics import AUDIT, DECISIONS, FEATURES, SIGNALS
from tickwise.streams.config import load_config
from tickwise.streams.operators.audit import verify_chain
from tickwise.streams.sources import synthetic

COUNT = 4000


class Tally:
    """Every decision the pipeline took, published or not."""

    def __init__(self) -> None:
        self.decisions: list[Decision] = []
        self.signals: list[Signal] = []

    def before_decide(self, tick: TradeTick | QuoteTick) -> None:
        pass

    def after_decide(self, tick: TradeTick | QuoteTick, decided: Decided) -> None:
        if decided.decision is not None:
            self.decisions.append(decided.decision)
        self.signals += decided.signals


def run(**overrides: object) -> tuple[Tally, dict[str, list]]:
    pipeline = Pipeline(load_config(**overrides))
    pipeline.observer = tally = Tally()
    published: dict[str, list] = {AUDIT.name: [], DECISIONS.name: [], SIGNALS.name: []}
    published[FEATURES.name] = []
    outputs = []
    for rec in synthetic(seed=3, count=COUNT, bad_rate=0.01):
        outputs += pipeline.process(
            rec.payload, SourceRef(topic="t", partition=0, offset=rec.index)
        )
    outputs += pipeline.finish()
    for out in outputs:
        if out.topic.name in published:
            published[out.topic.name].append(out.encoded())
    return tally, published


@pytest.fixture(scope="module")
def default() -> tuple[Tally, dict[str, list]]:
    return run(audit={"hold_summary_s": 5.0})


def test_decided_ticks_are_the_decisions_plus_the_holds_summarised(default) -> None:
    tally, published = default
    entries = audit_entries(published[AUDIT.name])
    records = [e for e in entries if isinstance(e, AuditRecord)]
    summaries = [e for e in entries if isinstance(e, HoldSummary)]
    decisions = [Decision.model_validate_json(x) for x in published[DECISIONS.name]]
    assert summaries and records
    assert len(tally.decisions) == len(decisions) + sum(s.holds for s in summaries)
    assert [r.decision for r in records] == decisions
    # every order intent, approved or refused, is published; a HOLD only with a state change
    intents = [d for d in tally.decisions if d.action is not Action.HOLD]
    assert intents and [d for d in decisions if d.action is not Action.HOLD] == intents
    holds_by_reason: dict[str, int] = {}
    for s in summaries:
        for reason, n in s.reasons.items():
            holds_by_reason[reason] = holds_by_reason.get(reason, 0) + n
    assert sum(holds_by_reason.values()) == sum(s.holds for s in summaries)
    assert verify_chain(entries) == []
    # the summaries of an instrument cover its holds in order, without overlap
    for instrument in {s.instrument for s in summaries}:
        mine = [s for s in summaries if s.instrument == instrument]
        assert all(a.to_ts_event_ns <= b.from_ts_event_ns for a, b in itertools.pairwise(mine))


def test_each_mode_publishes_every_decision_and_the_holds_match_the_summaries(default) -> None:
    tally, published = run(audit={"holds": "each"}, signals={"every": "decision"})
    summarised, _ = default
    decisions = [Decision.model_validate_json(x) for x in published[DECISIONS.name]]
    assert decisions == tally.decisions == summarised.decisions  # the same decisions either way
    assert all(isinstance(e, AuditRecord) for e in audit_entries(published[AUDIT.name]))
    assert len(published[SIGNALS.name]) == len(tally.signals)


@pytest.mark.parametrize("every", ["order", "5 s", "decision"])
def test_signals_are_published_at_the_configured_rate(every: str) -> None:
    tally, published = run(signals={"every": every})
    signals = [Signal.model_validate_json(x) for x in published[SIGNALS.name]]
    intents = {d.signal_id for d in tally.decisions if d.action is not Action.HOLD}
    ids = [s.signal_id for s in signals]
    assert intents and intents <= set(ids)  # an order's signal is always published
    if every == "decision":
        assert signals == tally.signals
    elif every == "order":
        assert set(ids) == intents
    else:  # the orders', plus the first of each model in every 5 s of event time
        sampled = [s for s in signals if s.signal_id not in intents]
        buckets = [(s.instrument, s.model_id, s.ts_event_ns // 5_000_000_000) for s in sampled]
        assert sampled and len(set(buckets)) == len(buckets)
        assert len(signals) < len(tally.signals) / 5
    # a feature vector is published with the signals scored on it
    assert len(published[FEATURES.name]) >= len({s.tick_id for s in signals})


def test_signals_every_is_validated() -> None:
    for bad in ("sometimes", "0 s", "-1 s", "inf s", "5"):
        with pytest.raises(ValueError, match=r"signals\.every"):
            load_config(signals={"every": bad})


def test_the_backtest_summary_counts_every_decided_tick(tmp_path) -> None:
    """A backtest that publishes no HOLD one by one still says how many ticks it decided: the
    decisions plus the holds its summaries stand for, as many as the every-tick mode decides."""
    from tickwise.replay.engine import run_backtest

    records = list(synthetic(seed=3, count=COUNT, bad_rate=0.01))
    summary = run_backtest(records, load_config(), tmp_path / "summary").summary()
    each = run_backtest(records, load_config(audit={"holds": "each"}), tmp_path / "each").summary()
    assert summary["holds_summarised"] > 0 and each["holds_summarised"] == 0
    assert summary["decided_ticks"] == summary["decisions"] + summary["holds_summarised"]
    assert summary["decided_ticks"] == each["decisions"] == each["decided_ticks"]
