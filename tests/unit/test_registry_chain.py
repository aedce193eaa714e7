"""The registry's log is a hash chain: intact it verifies, and an entry altered, dropped,
swapped or forked is found, by ``tickwise model verify`` as by the watchtower's live check."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickwise.streams.cli import main
from tickwise.streams.config import ModelConfig
from tickwise.streams.operators.audit import GENESIS
from tickwise.streams.registry import Registry
from tickwise.streams.watch.chain import Where, check_registry


def _changed(root: Path, why: str = "slippage") -> Registry:
    """A registry that registered two versions, promoted both in turn and rolled back."""
    reg = Registry(root)
    v1 = reg.register(ModelConfig(), "ann", "baseline", now_ns=1)
    v2 = reg.register(ModelConfig(), "bob", "retrained", parent=v1.key, now_ns=2)
    reg.promote(v1.key, "production", "ann", "first", 3)
    reg.promote(v2.key, "production", "bob", "better", 4)
    reg.rollback("carol", why, 5)
    return reg


def _rewrite(reg: Registry, lines: list[bytes]) -> None:
    (reg.root / "audit.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


def _live(lines: list[bytes]) -> list[tuple[str, str]]:
    heads: dict[str, dict] = {}
    out = []
    for offset, raw in enumerate(lines):
        alerts, _ = check_registry(raw, Where("registry", 0, offset), heads, 1)
        out += [(a.code, a.detail) for a in alerts]
    return out


def test_every_change_is_a_link_of_one_chain(tmp_path: Path) -> None:
    reg = _changed(tmp_path)
    trail = reg.audit_trail()
    # two registrations, a promotion, a promotion that retires the first, a rollback (two moves)
    assert [(e.event, e.model, e.to_stage) for e in trail] == [
        ("register", "logreg:v1", "registered"),
        ("register", "logreg:v2", "registered"),
        ("stage", "logreg:v1", "production"),
        ("stage", "logreg:v1", "retired"),
        ("stage", "logreg:v2", "production"),
        ("stage", "logreg:v2", "retired"),
        ("stage", "logreg:v1", "production"),
    ]
    assert [e.seq for e in trail] == list(range(7))
    assert trail[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(trail))
    assert trail[3].command_id == trail[4].command_id  # the promotion that retired v1
    problems, head = reg.verify()
    assert problems == [] and head == (6, trail[-1].hash)
    assert _live(reg.log_lines()) == []


def test_an_altered_entry_is_caught_by_verify_and_by_the_live_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = _changed(tmp_path)
    lines = reg.log_lines()
    doc = json.loads(lines[4])
    doc["operator"] = "mallory"  # who promoted v2, rewritten; its hash left as it was
    lines[4] = json.dumps(doc, separators=(",", ":")).encode()
    _rewrite(reg, lines)
    problems, _ = reg.verify()
    assert problems == ["reg-4: hash does not match its content"]
    assert [code for code, _ in _live(lines)] == ["AUDIT_BROKEN"]
    assert "reg-4 (stage logreg:v2 to production) at registry[0]@4" in _live(lines)[0][1]
    args = ["model", "verify", "--registry", str(tmp_path)]
    assert main(args) == 1
    assert "FAIL reg-4: hash does not match" in capsys.readouterr().out


def test_a_dropped_a_swapped_and_a_forked_entry_are_caught(tmp_path: Path) -> None:
    reg = _changed(tmp_path)
    lines = reg.log_lines()
    dropped = lines[:3] + lines[4:]
    _rewrite(reg, dropped)
    assert reg.verify()[0] == [
        "reg-4: seq 4 follows 2",
        "reg-4: prev_hash does not match the previous record",
    ]
    assert [code for code, _ in _live(dropped)] == ["AUDIT_GAP"]
    swapped = [*lines[:3], lines[4], lines[3], *lines[5:]]
    assert [code for code, _ in _live(swapped)] == ["AUDIT_GAP", "AUDIT_REORDERED"]
    # a copy of the registry with the same history up to the rollback, rolled back otherwise:
    # its entry 5 is sealed and links to entry 4, a second entry 5 on this chain
    other = _changed(tmp_path / "copy", why="other")
    fork = other.log_lines()[5]
    assert other.log_lines()[:5] == lines[:5] and fork != lines[5]
    assert other.verify()[0] == []
    live = _live([*lines, fork])
    assert [code for code, _ in live] == ["AUDIT_FORK"]
    assert "a second record for seq 5, head reg-6 at registry[0]@6" in live[0][1]


def test_model_verify_passes_an_intact_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = _changed(tmp_path)
    assert main(["model", "verify", "--registry", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"head: seq 6 hash {reg.audit_trail()[-1].hash}" in out
    assert "OK: 7 registry entries, 0 problems" in out


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    index=st.integers(min_value=0, max_value=6),
    field=st.sampled_from(["operator", "reason", "to_stage", "model_id"]),
    text=st.text(min_size=1, max_size=12),
)
def test_any_field_rewritten_in_any_entry_fails_verification(
    tmp_path_factory: pytest.TempPathFactory, index: int, field: str, text: str
) -> None:
    reg = _changed(tmp_path_factory.mktemp("reg"))
    lines = reg.log_lines()
    doc = json.loads(lines[index])
    if doc[field] == text:
        text += "x"
    doc[field] = text
    lines[index] = json.dumps(doc, separators=(",", ":")).encode()
    _rewrite(reg, lines)
    assert f"reg-{index}: hash does not match its content" in reg.verify()[0]
    assert "AUDIT_BROKEN" in [code for code, _ in _live(lines)]
