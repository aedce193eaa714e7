"""A rollout replays from the audit trail it wrote: the trail given as ``--controls`` deploys
every version where and when live deployed it, so the replay decides as live did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickwise.replay.controls import load_controls
from tickwise.replay.engine import record_batches, run_engine_backtest
from tickwise.schemas.decisions import (
    AppliedControl,
    AuditRecord,
    ControlCommand,
    Stage,
)
from tickwise.streams.config import DecisionConfig, ModelConfig, SignalsConfig, TickwiseConfig
from tickwise.streams.operators.control import replay_commands
from tickwise.streams.sources import RawRecord, synthetic

CONFIG = TickwiseConfig().model_copy(
    update={"decision": DecisionConfig(rule="threshold"), "signals": SignalsConfig(every="5 s")}
)
TREE = ModelConfig(model_id="tree", model_version=2, kind="hoeffding_tree", warmup_labels=10)
V3 = ModelConfig(model_version=3, learning_rate=0.05, warmup_labels=10)
SAME = ("decisions.jsonl", "signals.jsonl", "fills.jsonl")


def promote(cid: str, m: ModelConfig, stage: str, at: RawRecord, **extra: object) -> ControlCommand:
    return ControlCommand(
        command_id=cid, command="promote", scope="global", reason="rollout", operator="q",
        ts_event_ns=1, model_id=m.model_id, model_version=m.model_version, stage=stage,
        model_spec=m.model_dump(), effective_ts_event_ns=at.ts_event_ns, **extra,
    )  # fmt: skip


def backtest(records: list[RawRecord], out: Path, controls: list[ControlCommand]) -> None:
    run_engine_backtest(
        lambda symbols: record_batches(iter(records), symbols, 16_384, size=700),
        CONFIG,
        out,
        controls,
    )


def test_a_rollout_replays_from_its_audit_trail(tmp_path: Path) -> None:
    """A river tree in shadow from the start, a second logistic version as a canary on NQ
    from mid-stream, then a rollback on ES: the trail, with its summaries of HOLDs, given
    back as controls gives the same decisions, signals (the shadow's among them) and fills."""
    records = list(synthetic(6, 6_000, instruments=["ES", "NQ"], bad_rate=0.02))
    rollback = ControlCommand(
        command_id="back", command="rollback", scope="ES", reason="enough", operator="q",
        ts_event_ns=1, model_id="logreg", effective_ts_event_ns=records[4_500].ts_event_ns,
    )  # fmt: skip
    controls = [
        promote("shadow", TREE, "shadow", records[0]),
        promote("canary", V3, "canary", records[3_000], instruments=["NQ"], capital_fraction=0.5),
        rollback,
    ]
    backtest(records, tmp_path / "live", controls)
    trail = tmp_path / "live" / "audit.jsonl"
    kinds = {json.loads(line).get("kind", "record") for line in trail.read_text().splitlines()}
    assert kinds == {"record", "hold_summary"}  # summaries are read past, not choked on
    again = load_controls(trail)
    assert {(c.command_id.split("@")[0], c.stage) for c in again} >= {
        ("shadow", Stage.SHADOW),
        ("canary", Stage.CANARY),
    }
    canary = next(c for c in again if c.command_id == "canary@NQ")
    assert (canary.model_version, canary.capital_fraction, canary.instruments) == (3, 0.5, ["NQ"])
    assert canary.model_spec == V3.model_dump()
    backtest(records, tmp_path / "replay", again)
    signals = (tmp_path / "live" / "signals.jsonl").read_text()
    assert '"model_id":"tree"' in signals and '"model_version":3' in signals
    for name in SAME:
        assert (tmp_path / "replay" / name).read_bytes() == (
            tmp_path / "live" / name
        ).read_bytes(), name

    # Without the model stage's entries the replay decides otherwise: they carry the rollout.
    kills_only = [c for c in again if c.command not in ("promote", "rollback")]
    backtest(records, tmp_path / "bare", kills_only)
    assert (tmp_path / "bare" / "signals.jsonl").read_bytes() != signals.encode()


def test_a_promote_audited_without_its_version_is_refused_not_replayed_wrong() -> None:
    """A trail written before entries carried the command cannot replay a rollout: it says
    so, rather than promoting nothing in particular."""
    old = AppliedControl(
        command_id="canary", command="promote", scope="global", reason="rollout",
        applied_ts_event_ns=5, model_id="logreg", detail="logreg:v3 -> canary",
    )  # fmt: skip
    record = AuditRecord.model_construct(
        audit_id="aud-NQ-4", instrument="NQ", controls_applied=[old]
    )
    with pytest.raises(ValueError, match="without its model version"):
        replay_commands([record])
    kill = AppliedControl(
        command_id="k", command="kill_switch_on", scope="global", reason="halt",
        applied_ts_event_ns=7,
    )  # fmt: skip
    record = AuditRecord.model_construct(
        audit_id="aud-NQ-5", instrument="NQ", controls_applied=[kill]
    )
    (command,) = replay_commands([record])
    assert (command.command, command.scope, command.effective_ts_event_ns) == (
        "kill_switch_on",
        "NQ",
        7,
    )
