"""Operator commands (kill switch, model demotion) as state the decision path can read.

Commands arrive on the compacted ``control`` topic, which every worker reads from the start, so
the set of commands is the same everywhere. When a command takes effect is the subtle part:

* live, a command without ``effective_ts_event_ns`` applies from the next decision each worker
  takes after it arrived (processing time, within a second);
* a command with ``effective_ts_event_ns`` applies to decisions at or after that event time,
  which is how a backtest replays it exactly.

Either way, the first decision of an instrument that sees a command records it in its audit
record (``controls_applied`` with the decision's event time). That record is what turns a
processing-time event into an event-time fact a replay can reproduce (``replay_commands``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tickwise.schemas.decisions import AppliedControl, AuditRecord, ControlCommand
from tickwise.streams.operators.state import InstrumentStateMixin

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


@dataclass(frozen=True, slots=True)
class ControlView:
    """What the commands say for one instrument and model at one event time."""

    halted_by: ControlCommand | None = None
    demoted_by: ControlCommand | None = None
    newly_applied: tuple[AppliedControl, ...] = ()


@dataclass
class _Applied:
    command_ids: dict[str, str] = field(default_factory=dict)


class ControlBook(InstrumentStateMixin):
    """The commands every worker knows, and which of them each instrument has applied.

    The command history is shared by all instruments (rebuilt from the topic); the per-instrument
    state is only the marker of what that instrument last applied, which travels with it.

    Examples
    --------
    >>> book = ControlBook()
    >>> book.on_command(ControlCommand(command_id="k1", command="kill_switch_on", scope="global",
    ...                                reason="test", operator="me", ts_event_ns=0))
    True
    >>> view = book.view("ES", "logreg", ts_event_ns=5)
    >>> view.halted_by.command_id, [a.applied_ts_event_ns for a in view.newly_applied]
    ('k1', [5])
    >>> book.view("ES", "logreg", ts_event_ns=6).newly_applied   # recorded only once
    ()
    """

    def __init__(self) -> None:
        self._history: dict[str, list[ControlCommand]] = {}
        self._seen: set[str] = set()
        self._state: dict[str, _Applied] = {}

    def on_command(self, cmd: ControlCommand) -> bool:
        """Add a command; False if its ``command_id`` was seen before (redelivery)."""
        if cmd.command_id in self._seen:
            return False
        if cmd.command not in KILL_COMMANDS + STAGE_COMMANDS:
            return False  # promote/rollback of versions belong to the model registry
        self._seen.add(cmd.command_id)
        self._history.setdefault(control_key(cmd), []).append(cmd)
        return True

    def commands(self) -> list[ControlCommand]:
        """Every command kept, by key then arrival."""
        return [c for key in sorted(self._history) for c in self._history[key]]

    def _effective(self, key: str, ts_event_ns: int) -> ControlCommand | None:
        for cmd in reversed(self._history.get(key, ())):
            if cmd.effective_ts_event_ns is None or cmd.effective_ts_event_ns <= ts_event_ns:
                return cmd
        return None

    def view(self, instrument: str, model_id: str, ts_event_ns: int) -> ControlView:
        """The commands in force for a decision; newly seen ones are marked as applied."""
        keys = (
            f"kill_switch:{GLOBAL}",
            f"kill_switch:{instrument}",
            f"stage:{GLOBAL}:{model_id}",
            f"stage:{instrument}:{model_id}",
            f"stage:{GLOBAL}:*",
            f"stage:{instrument}:*",
        )
        applied = self._state.get(instrument)
        halted_by = demoted_by = None
        newly: list[AppliedControl] = []
        for key in keys:
            cmd = self._effective(key, ts_event_ns)
            if cmd is None:
                continue
            if cmd.command == "kill_switch_on" and halted_by is None:
                halted_by = cmd
            if cmd.command == "demote" and demoted_by is None:
                demoted_by = cmd
            marker = applied.command_ids.get(key) if applied else None
            if marker != cmd.command_id:
                if applied is None:
                    applied = self._state[instrument] = _Applied()
                applied.command_ids[key] = cmd.command_id
                newly.append(
                    AppliedControl(
                        command_id=cmd.command_id,
                        command=cmd.command,
                        scope=cmd.scope,
                        reason=cmd.reason,
                        applied_ts_event_ns=ts_event_ns,
                        model_id=cmd.model_id,
                        operator=cmd.operator,
                    )
                )
        return ControlView(halted_by, demoted_by, tuple(newly))


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
