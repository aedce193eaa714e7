"""A kill switch applied at processing time live is replayed exactly from the audit trail."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np

from tickwise.replay.controls import load_controls
from tickwise.schemas.decisions import AuditRecord, ControlCommand
from tickwise.streams.config import load_config
from tickwise.streams.live.state import EngineState
from tickwise.streams.operators.control import replay_commands
from tickwise.streams.sources import RawRecord, synthetic


def run(
    records: list[RawRecord],
    switch_at: dict[int, ControlCommand],
    controls: list[ControlCommand] = (),  # type: ignore[assignment]
) -> list[AuditRecord]:
    """The audit records a worker's engine publishes for ``records``, taking each command of
    ``switch_at`` between two batches, as the control follower hands it over (no event time)."""
    state = EngineState(load_config())
    for command in controls:
        state.on_control(command)
    out = []
    for a, b in pairwise(sorted({0, *switch_at, len(records)})):
        if a in switch_at:
            state.on_control(switch_at[a])
        part = records[a:b]
        offsets = np.array([r.index for r in part], np.int64)
        outputs = state.process(
            [r.payload for r in part], "t", 0, offsets, np.zeros(len(part), bool)
        )
        out += [o.message for o in outputs if isinstance(o.message, AuditRecord)]
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
    live = run(records, switches)
    assert any("KILL_SWITCH" in r.decision.reject_reasons for r in live)
    assert any(r.order is not None for r in live[-800:]), "trading resumed after the switch"

    path = tmp_path / "audit.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in live))
    controls = load_controls(path)
    assert controls == replay_commands(live) and len(controls) == 6  # on/off x 3 instruments
    replayed = run(records, {}, controls)
    decisions = lambda rs: [r.decision for r in rs]  # noqa: E731
    assert decisions(replayed) == decisions(live)
    # without the controls the same stream decides differently (the control for the test)
    assert decisions(run(records, {})) != decisions(live)


def test_load_controls_reads_command_files(tmp_path: Path) -> None:
    path = tmp_path / "controls.jsonl"
    c = cmd("x", "kill_switch_on").model_copy(update={"effective_ts_event_ns": 5})
    path.write_text(json.dumps(c.model_dump()) + "\n\n")
    assert load_controls(path) == [c]
