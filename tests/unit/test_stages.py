"""Shadow, canary, promotion and rollback in what the engine publishes (the per-tick oracle's
beside it), and their replay in a backtest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stubs import IMPLS, Stream, decide, threshold_rule

from tickwise.replay.engine import run_backtest
from tickwise.schemas.decisions import Alert, ControlCommand, Decision, Signal
from tickwise.schemas.topics import ALERTS, DECISIONS, SIGNALS
from tickwise.streams.config import (
    AuditConfig,
    LabelConfig,
    ModelConfig,
    SignalsConfig,
    TickwiseConfig,
)
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


RECORDS = list(synthetic(seed=4, count=1800, instruments=["ES", "NQ"]))
MID = RECORDS[600].ts_event_ns
# every decision and every signal published: what each version did, tick by tick
SEEN = CONFIG.model_copy(
    update={"audit": AuditConfig(holds="each"), "signals": SignalsConfig(every="decision")}
)


def decisions(stream: Stream) -> list[Decision]:
    return stream.messages(DECISIONS.name)


def applied(stream: Stream) -> list[Alert]:
    """The trail's entries of commands applied, one per instrument."""
    return [a for a in stream.messages(ALERTS.name) if a.code == "CONTROL_APPLIED"]


@pytest.mark.parametrize("impl", IMPLS)
def test_shadow_signals_are_published_but_never_reach_risk(impl: str) -> None:
    stream = decide(impl, RECORDS, SEEN, {0: [deploy("shadow", MID)]})
    shadow = [s for s in stream.messages(SIGNALS.name) if s.model_id == "tree"]
    assert shadow and all(s.stage == "shadow" for s in shadow)
    assert all(d.model_id == "logreg" for d in decisions(stream))
    # production decides exactly as it would without the shadow
    assert decisions(stream) == decisions(decide(impl, RECORDS, SEEN))


@pytest.mark.parametrize("impl", IMPLS)
def test_canary_trades_only_its_instruments_with_its_capital_fraction(impl: str) -> None:
    canary_on_nq = deploy("canary", MID, instruments=["NQ"], capital_fraction=0.25)
    decided = decisions(decide(impl, RECORDS, SEEN, {0: [canary_on_nq]}))
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


@pytest.mark.parametrize("impl", IMPLS)
def test_promote_then_rollback_hands_decisions_back_to_the_previous_version(impl: str) -> None:
    late = RECORDS[1300].ts_event_ns
    commands = [
        deploy("shadow", MID),
        deploy("production", MID + 5 * 10**9),
        command("rb", "rollback", effective_ts_event_ns=late),
    ]
    stream = decide(impl, RECORDS, SEEN, {0: commands})
    models = [(d.ts_event_ns, d.model_id) for d in decisions(stream)]
    promoted = [m for ts, m in models if MID + 6 * 10**9 < ts < late]
    assert promoted and set(promoted) == {"tree"}
    assert {m for ts, m in models if ts >= late} == {"logreg"}
    assert {(a.alert_id, a.instrument) for a in applied(stream)} == {
        (f"ctl-{c}-{i}", i)
        for c in ("deploy-shadow-" + str(MID), f"deploy-production-{MID + 5 * 10**9}", "rb")
        for i in ("ES", "NQ")
    }
    # rolled back: the first version scores in production again, the second (retired) not
    after = [s for s in stream.messages(SIGNALS.name) if s.ts_event_ns >= late]
    assert after and {(s.model_id, s.stage) for s in after} == {("logreg", "production")}


@pytest.mark.parametrize("impl", IMPLS)
def test_a_backtest_replays_live_control_at_the_ticks_live_applied_it(
    impl: str, tmp_path: Path
) -> None:
    """Live applies a command at each instrument's next tick; the trail says which tick."""
    # as a worker would: no effective time, taken between batches, applied at the next tick
    live = decide(impl, RECORDS, CONFIG, {900: [deploy("production")]}, finish=False)
    trail = applied(live)
    assert len(trail) == 2
    # the trail, turned into per-instrument commands with the event time they took effect
    replay_control = [
        deploy("production", a.ts_event_ns).model_copy(
            update={"command_id": f"{cid}-{a.instrument}", "scope": a.instrument}
        )
        for a in trail
        for cid in [a.alert_id.removeprefix("ctl-").removesuffix(f"-{a.instrument}")]
    ]
    run_backtest(RECORDS, CONFIG, tmp_path, replay_control)
    replayed = (tmp_path / "decisions.jsonl").read_bytes().splitlines()
    # what is published: every decision with a record of its own (HOLDs are summarised)
    assert replayed == live.wire(DECISIONS.name)
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
