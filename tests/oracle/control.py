"""The per-tick ``ControlBook``: operator commands as state the decision path reads, one
decision at a time; the engine's decide kernel (``streams.engine.decide``) is held to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tickwise.schemas.decisions import AppliedControl, ControlCommand
from tickwise.streams.operators.control import GLOBAL, KILL_COMMANDS, STAGE_COMMANDS, control_key
from tickwise.streams.operators.state import InstrumentStateMixin


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
