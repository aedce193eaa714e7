"""Shadow, canary, promotion and rollback in the pipeline, and their replay in a backtest."""

from __future__ import annotations

import json
from pathlib import Path

from stubs import threshold_rule

from tests.oracle.pipeline import Decided, Pipeline
from tickwise.replay.engine import run_backtest
from tickwise.schemas.decisions import Alert, ControlCommand, Decision, Signal
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import SourceRef
from tickwise.streams.config import LabelConfig, ModelConfig, TickwiseConfig
from tickwise.streams.sources import synthetic

# the threshold rule: stage changes are seen in what each version trades, so these short
# streams must trade on every side a model takes, whatever it costs
CONFIG = threshold_rule(
    TickwiseConfig(model=ModelConfig(warmup_labels=10), label=LabelConfig(horizon_s=0.3))
)
V2 = ModelConfig(model_id="tree", model_version=2, kind="hoeffding_tree", warmup_labels=10)


def command(cid: str, kind: str = "promote", **fields: object) -> ControlCommand:
    return ControlCommand(
        command_id=cid,
        command=kind,
        scope="global",
        reason="test",
        operator="alice",
        ts_event_ns=1,
        **fields,  # type: ignore[arg-type]
    )


def deploy(stage: str, at: int | None = None, **fields: object) -> ControlCommand:
    return command(
        f"deploy-{stage}-{at}",
        model_id="tree",
        model_version=2,
        stage=stage,
        model_spec=V2.model_dump(),
        effective_ts_event_ns=at,
        **fields,
    )


def drive(pipeline: Pipeline, records: list) -> list[Decided]:
    out = []
    for rec in records:
        verdict = pipeline.validate(
            rec.payload, SourceRef(topic="t", partition=0, offset=rec.index)
        )
        if not isinstance(verdict, QuarantineRecord):
            out.append(pipeline.decide(verdict))
    return out


RECORDS = list(synthetic(seed=4, count=1800, instruments=["ES", "NQ"]))
MID = RECORDS[600].ts_event_ns


def test_shadow_signals_are_published_but_never_reach_risk() -> None:
    pipeline = Pipeline(CONFIG)
    pipeline.on_control(deploy("shadow", MID))
    decided = drive(pipeline, RECORDS)
    shadow = [s for d in decided for s in d.signals if s.model_id == "tree"]
    assert shadow and all(s.stage == "shadow" for s in shadow)
    assert all(d.decision.model_id == "logreg" for d in decided if d.decision is not None)
    # production decides exactly as it would without the shadow
    alone = [d.decision for d in drive(Pipeline(CONFIG), RECORDS) if d.decision is not None]
    assert [d.decision for d in decided if d.decision is not None] == alone


def test_canary_trades_only_its_instruments_with_its_capital_fraction() -> None:
    pipeline = Pipeline(CONFIG)
    pipeline.on_control(deploy("canary", MID, instruments=["NQ"], capital_fraction=0.25))
    decided = [d.decision for d in drive(pipeline, RECORDS) if d.decision is not None]
    canary = [d for d in decided if d.model_id == "tree"]
    assert canary and {d.instrument for d in canary} == {"NQ"}
    acting = [d for d in canary if d.side != "FLAT" and d.approved]
    assert acting and all(abs(d.position_after) == 0.25 * CONFIG.risk.target_size for d in acting)
    assert any(d.model_id == "logreg" for d in decided if d.instrument == "ES")
    assert all(
        d.model_id == "tree"
        for d in decided
        if d.instrument == "NQ" and d.ts_event_ns > MID + 10**9
    )


def test_promote_then_rollback_hands_decisions_back_to_the_previous_version() -> None:
    pipeline = Pipeline(CONFIG)
    late = RECORDS[1300].ts_event_ns
    pipeline.on_control(deploy("shadow", MID))
    pipeline.on_control(deploy("production", MID + 5 * 10**9))
    pipeline.on_control(command("rb", "rollback", effective_ts_event_ns=late))
    decided = drive(pipeline, RECORDS)
    models = [(d.decision.ts_event_ns, d.decision.model_id) for d in decided if d.decision]
    promoted = [m for ts, m in models if MID + 6 * 10**9 < ts < late]
    assert promoted and set(promoted) == {"tree"}
    assert {m for ts, m in models if ts >= late} == {"logreg"}
    applied = [a for d in decided for a in d.applied]
    assert {(a.command_id, a.instrument) for a in applied} == {
        (c, i)
        for c in ("deploy-shadow-" + str(MID), f"deploy-production-{MID + 5 * 10**9}", "rb")
        for i in ("ES", "NQ")
    }
    assert pipeline.model.stages("ES") == {"logreg:v1": "production", "tree:v2": "retired"}


def test_a_backtest_replays_live_control_at_the_ticks_live_applied_it(tmp_path: Path) -> None:
    """Live applies a command at each instrument's next tick; the trail says which tick."""
    live = Pipeline(CONFIG)
    decided = drive(live, RECORDS[:900])
    live.on_control(deploy("production"))  # as a worker would: no effective time, next tick
    decided += drive(live, RECORDS[900:])
    applied = [a for d in decided for a in d.applied]
    assert len(applied) == 2
    # the trail, turned into per-instrument commands with the event time they took effect
    replay_control = [
        deploy("production", a.ts_event_ns).model_copy(
            update={"command_id": f"{a.command_id}-{a.instrument}", "scope": a.instrument}
        )
        for a in applied
    ]
    run_backtest(RECORDS, CONFIG, tmp_path, replay_control)
    replayed = (tmp_path / "decisions.jsonl").read_bytes().splitlines()
    # what is published: every decision with a record of its own (HOLDs are summarised)
    assert replayed == [d.decision.to_bytes() for d in decided if d.audit is not None]
    alerts = [
        Alert.model_validate_json(x) for x in (tmp_path / "alerts.jsonl").read_bytes().splitlines()
    ]
    assert [a.code for a in alerts if a.code == "CONTROL_APPLIED"] == ["CONTROL_APPLIED"] * 2
    signals = [
        Signal.model_validate_json(x)
        for x in (tmp_path / "signals.jsonl").read_bytes().splitlines()
    ]
    assert {s.model_id for s in signals} == {"logreg", "tree"}
    assert json.loads((tmp_path / "summary.json").read_text())["decisions"] == len(replayed)
    assert all(Decision.model_validate_json(x) for x in replayed[:3])
