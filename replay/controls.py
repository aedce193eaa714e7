"""Operator commands for a backtest, from a file of commands or from a live audit trail."""

from __future__ import annotations

import json
from pathlib import Path

from tickwise.schemas.decisions import AUDIT_ADAPTER, AuditRecord, ControlCommand
from tickwise.streams.operators.control import replay_commands


def load_controls(path: str | Path) -> list[ControlCommand]:
    """Read JSON lines of ``ControlCommand`` (give them ``effective_ts_event_ns``) or of
    ``AuditRecord`` (live's audit trail: each control is replayed where live applied it)."""
    commands: list[ControlCommand] = []
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        doc = json.loads(line)
        if "audit_id" in doc:  # a decision's record, or a summary of HOLDs (no control)
            entry = AUDIT_ADAPTER.validate_python(doc)
            if isinstance(entry, AuditRecord):
                commands += replay_commands([entry])
        elif "command_id" in doc:
            commands.append(ControlCommand.model_validate(doc))
        else:
            raise ValueError(f"{path}:{n}: neither a control command nor an audit record")
    return commands
