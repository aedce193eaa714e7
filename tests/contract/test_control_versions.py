"""ControlCommand version 2 names its time ``ts_event_ns``; version 1 (``ts_ns``) still reads.

The compacted ``control`` topic keeps old commands forever and operators keep files of them for
backtests, so a version 1 command must read as the version 2 command it means. Audit records
hold the control as applied (``AppliedControl``), not the command, so a trail recorded before
the rename verifies from its stored bytes as it did.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tickwise.replay.controls import load_controls
from tickwise.schemas.decisions import AuditRecord, ControlCommand
from tickwise.streams.operators.audit import check_link

DATA = Path(__file__).resolve().parents[1] / "data"
V1 = {
    "schema_version": 1,
    "command_id": "desk-1",
    "command": "kill_switch_on",
    "scope": "global",
    "reason": "desk limit",
    "operator": "alice",
    "ts_ns": 1_700_000_000_000_000_000,
}


def as_version_1(command: ControlCommand) -> bytes:
    """The bytes a version 1 producer wrote for ``command``."""
    doc = json.loads(command.to_bytes())
    doc["schema_version"], doc["ts_ns"] = 1, doc.pop("ts_event_ns")
    return json.dumps(doc).encode()


def test_a_version_1_command_reads_as_version_2() -> None:
    cmd = ControlCommand.model_validate_json(json.dumps(V1))
    assert cmd.schema_version == 2 and cmd.ts_event_ns == V1["ts_ns"]
    assert cmd.model_dump(exclude={"schema_version", "ts_event_ns"}) == {
        **{k: v for k, v in V1.items() if k not in ("schema_version", "ts_ns")},
        **{k: None for k in ("model_id", "model_version", "stage", "model_spec")},
        **{k: None for k in ("instruments", "capital_fraction", "effective_ts_event_ns")},
    }
    again = ControlCommand.model_validate_json(cmd.to_bytes())
    assert again == cmd and b'"ts_ns"' not in cmd.to_bytes()


@pytest.mark.parametrize(
    "doc",
    [
        {**V1, "schema_version": 2},  # version 2 has no ts_ns
        {k: v for k, v in V1.items() if k != "ts_ns"},  # no time at all
        {**V1, "ts_event_ns": 1},  # version 1 never had ts_event_ns
        {k: v for k, v in V1.items() if k != "schema_version"},  # unversioned: version 2
    ],
)
def test_mixed_or_missing_names_are_refused(doc: dict) -> None:
    with pytest.raises(ValidationError):
        ControlCommand.model_validate_json(json.dumps(doc))


@settings(max_examples=60, deadline=None)
@given(
    command=st.builds(
        ControlCommand,
        command_id=st.text(min_size=1, max_size=12),
        command=st.sampled_from(["kill_switch_on", "kill_switch_off", "demote"]),
        scope=st.text(max_size=8),
        reason=st.text(min_size=1, max_size=20),
        operator=st.text(min_size=1, max_size=20),
        ts_event_ns=st.integers(min_value=0, max_value=2**62),
        effective_ts_event_ns=st.none() | st.integers(min_value=0, max_value=2**62),
        capital_fraction=st.none() | st.floats(min_value=0.01, max_value=1.0),
    )
)
def test_any_command_written_as_version_1_reads_back_equal(command: ControlCommand) -> None:
    assert ControlCommand.model_validate_json(as_version_1(command)) == command


def test_a_file_of_version_1_commands_loads_for_a_backtest(tmp_path: Path) -> None:
    path = tmp_path / "controls.jsonl"
    path.write_text(json.dumps(V1) + "\n" + json.dumps({**V1, "command": "kill_switch_off"}))
    loaded = load_controls(path)
    assert [c.command for c in loaded] == ["kill_switch_on", "kill_switch_off"]
    assert {c.ts_event_ns for c in loaded} == {V1["ts_ns"]}


def test_an_audit_trail_recorded_before_the_rename_still_verifies() -> None:
    # A tail of a trail written by the code before the rename, around a version 1 kill switch
    # (``tests/data/audit_v1_kill_switch.jsonl``); each chain is checked from the record
    # before its first one, which the heads stand for.
    lines = (DATA / "audit_v1_kill_switch.jsonl").read_bytes().splitlines()
    records = [AuditRecord.model_validate_json(line) for line in lines]
    heads: dict[str, tuple[int, str]] = {}
    for r in records:
        heads.setdefault(r.instrument, (r.seq - 1, r.prev_hash))
    assert any(r.controls_applied for r in records)
    for record, stored in zip(records, lines, strict=True):
        assert check_link(record, heads, stored) == []
    # and the stored bytes are what is checked: one changed letter of the reason fails
    applied = next(i for i, r in enumerate(records) if r.controls_applied)
    tampered = lines[applied].replace(b'"desk limit"', b'"desk limif"')
    record = AuditRecord.model_validate_json(tampered)
    head = (record.seq - 1, record.prev_hash)
    assert tampered != lines[applied]
    assert check_link(record, {record.instrument: head}, tampered) != []
    assert check_link(records[applied], {record.instrument: head}, lines[applied]) == []
