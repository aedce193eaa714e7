"""Operator commands (kill switch, model demotion): their keys, kinds and replay.

Commands arrive on the compacted ``control`` topic, which every worker reads from the start, so
the set of commands is the same everywhere. When a command takes effect is the subtle part:

* live, a command without ``effective_ts_event_ns`` applies from the next decision each worker
  takes after it arrived (processing time, within a second);
* a command with ``effective_ts_event_ns`` applies to decisions at or after that event time,
  which is how a backtest replays it exactly.

Either way, the first decision of an instrument that sees a command records it in its audit
record (``controls_applied`` with the decision's event time). That record is what turns a
processing-time event into an event-time fact a replay can reproduce (``replay_commands``).
The engine's decide kernel keeps the commands in its state (``streams.engine.decide``).
"""

from __future__ import annotations

from collections.abc import Iterable

from tickwise.schemas.decisions import AuditRecord, ControlCommand

GLOBAL = "global"
KILL_COMMANDS = ("kill_switch_on", "kill_switch_off")
STAGE_COMMANDS = ("demote", "promote")
MODEL_COMMANDS = ("promote", "rollback")  # what the model stage carries out


def control_key(cmd: ControlCommand) -> str:
    """The compaction key: later commands with the same key replace earlier ones.

    Examples
    --------
    >>> from tickwise.schemas.decisions import ControlCommand
    >>> control_key(ControlCommand(command_id="c1", command="kill_switch_on", scope="ES",
    ...                            reason="test", operator="me", ts_event_ns=0))
    'kill_switch:ES'
    """
    if cmd.command in KILL_COMMANDS:
        return f"kill_switch:{cmd.scope}"
    return f"stage:{cmd.scope}:{cmd.model_id or '*'}"


def replay_commands(records: Iterable[AuditRecord]) -> list[ControlCommand]:
    """Commands that make a backtest apply each control where live applied it.

    Every application recorded in the audit trail becomes an instrument-scoped command effective
    at the recorded event time, so a global kill switch that reached instruments at different
    event times live reaches them at the same ones in replay.
    """
    out: list[ControlCommand] = []
    for record in records:
        for a in record.controls_applied:
            rollout = a.command in MODEL_COMMANDS
            if rollout and a.detail is None:
                continue  # the control view's sighting: the model stage's entry replays it
            if a.detail is not None and not rollout:
                continue  # the model stage's account of another change: its own entry replays
            if a.command == "promote" and a.model_version is None:
                raise ValueError(
                    f"{record.audit_id}: promote {a.command_id} is audited without its model "
                    "version (a trail written before entries carried it), so the rollout "
                    "cannot replay from it: give the commands themselves"
                )
            out.append(
                ControlCommand(
                    command_id=f"{a.command_id}@{record.instrument}",
                    command=a.command,  # type: ignore[arg-type]
                    scope=record.instrument,
                    reason=a.reason,
                    operator=a.operator or "replay",
                    ts_event_ns=a.applied_ts_event_ns,
                    model_id=a.model_id,
                    model_version=a.model_version,
                    stage=a.stage,
                    model_spec=a.model_spec,
                    instruments=a.instruments,
                    capital_fraction=a.capital_fraction,
                    effective_ts_event_ns=a.applied_ts_event_ns,
                )
            )
    return out
