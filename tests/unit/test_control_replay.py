"""A kill switch applied at processing time live is replayed exactly from the audit trail."""

from __future__ import annotations

import json
from pathlib import Path

from tests.oracle.pipeline import Pipeline
from tickwise.replay.controls import load_controls
from tickwise.schemas.decisions import ControlCommand
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import SourceRef
from tickwise.streams.config import load_config
from tickwise.streams.operators.control import replay_commands
from tickwise.streams.sources import synthetic


def run(pipeline: Pipeline, records: list, switch_at: dict[int, ControlCommand]) -> list:
    out = []
    for rec in records:
        if rec.index in switch_at:  # like the control follower: between two ticks, no event time
            pipeline.on_control(switch_at[rec.index])
        verdict = pipeline.validate(
            rec.payload, SourceRef(topic="t", partition=0, offset=rec.index)
        )
        if not isinstance(verdict, QuarantineRecord):
            decided = pipeline.decide(verdict)
            if decided.audit is not None:
                out.append(decided.audit)
    return out


def cmd(cid: str, command: str) -> ControlCommand:
    return ControlCommand(
        command_id=cid,
        command=command,
        scope="global",
        reason="r",
        operator="op",
        ts_event_ns=1,  # type: ignore[arg-type]
    )


def test_replaying_the_audit_trail_reproduces_decisions_under_a_kill_switch(tmp_path: Path) -> None:
    records = list(synthetic(seed=9, count=5000))
    switches = {2500: cmd("on", "kill_switch_on"), 3800: cmd("off", "kill_switch_off")}
    live = run(Pipeline(load_config()), records, switches)
    assert any("KILL_SWITCH" in r.decision.reject_reasons for r in live)
    assert any(r.order is not None for r in live[-800:]), "trading resumed after the switch"

    path = tmp_path / "audit.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in live))
    controls = load_controls(path)
    assert controls == replay_commands(live) and len(controls) == 6  # on/off x 3 instruments
    replay = Pipeline(load_config())
    for c in controls:
        replay.on_control(c)
    replayed = run(replay, records, {})
    decisions = lambda rs: [r.decision for r in rs]  # noqa: E731
    assert decisions(replayed) == decisions(live)
    # without the controls the same stream decides differently (the control for the test)
    assert decisions(run(Pipeline(load_config()), records, {})) != decisions(live)


def test_load_controls_reads_command_files(tmp_path: Path) -> None:
    path = tmp_path / "controls.jsonl"
    c = cmd("x", "kill_switch_on").model_copy(update={"effective_ts_event_ns": 5})
    path.write_text(json.dumps(c.model_dump()) + "\n\n")
    assert load_controls(path) == [c]
