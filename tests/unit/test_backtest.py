"""Backtest runner: topic-shaped outputs, byte-identical reruns, prefix determinism, counts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import stubs

from tickwise.replay.backtest import FILES, REPORT_FILES, BacktestResult
from tickwise.replay.engine import run_backtest
from tickwise.schemas.decisions import Action, AuditRecord, Decision, HoldSummary, Signal
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.operators.audit import verify_chain
from tickwise.streams.sources import synthetic

COUNT = 2500
SEED = 7
BAD_RATE = 0.05
CONFIG = TickwiseConfig()


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BacktestResult]:
    out = tmp_path_factory.mktemp("full")
    result = run_backtest(synthetic(SEED, COUNT, bad_rate=BAD_RATE), CONFIG, out)
    return out, result


def test_writes_every_output_file(full_run) -> None:
    out, _ = full_run
    assert {p.name for p in out.iterdir()} == {*FILES.values(), *REPORT_FILES}


def test_decision_lines_parse_as_decisions(full_run) -> None:
    out, result = full_run
    decisions = [Decision.model_validate_json(line) for line in lines(out / "decisions.jsonl")]
    assert len(decisions) == result.decisions > 0
    assert sum(d.approved for d in decisions) == result.approved
    assert len({d.decision_id for d in decisions}) == len(decisions)
    assert [d.to_bytes() for d in decisions] == lines(out / "decisions.jsonl")  # topic bytes
    for d in decisions:
        if not d.approved:
            assert d.position_after == d.position_before and d.reject_reasons


def test_signals_and_audit_match_decisions(full_run) -> None:
    out, result = full_run
    signals = [Signal.model_validate_json(line) for line in lines(out / "signals.jsonl")]
    audit = stubs.audit_entries(lines(out / "audit.jsonl"))
    decisions = [Decision.model_validate_json(line) for line in lines(out / "decisions.jsonl")]
    records = [a for a in audit if isinstance(a, AuditRecord)]
    assert len(signals) == result.signals and len(decisions) == len(records) == result.decisions
    assert [a.decision for a in records] == decisions
    # a HOLD is in a summary, not published; every order intent is, with its signal
    intents = {d.signal_id for d in decisions if d.action is not Action.HOLD}
    assert intents and intents <= {s.signal_id for s in signals}
    assert any(isinstance(a, HoldSummary) for a in audit)
    assert verify_chain(audit) == []


def test_quarantine_counts_equal_the_injected_bad_ticks(full_run) -> None:
    out, result = full_run
    injected = Counter(r.injected for r in synthetic(SEED, COUNT, bad_rate=BAD_RATE) if r.injected)
    assert sum(injected.values()) > 0
    assert dict(result.quarantined) == dict(injected)
    written = Counter(
        QuarantineRecord.model_validate_json(line).reason.value
        for line in lines(out / "quarantine.jsonl")
    )
    assert written == injected
    assert result.ticks == COUNT and result.clean == COUNT - sum(injected.values())


def test_summary_json_reports_the_result(full_run) -> None:
    out, result = full_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ticks"] == result.ticks == COUNT
    assert summary["decisions"] == result.decisions
    assert summary["quarantined"] == sum(result.quarantined.values())
    assert summary["quarantined_by_reason"] == dict(sorted(result.quarantined.items()))


def test_two_runs_are_byte_identical(full_run, tmp_path: Path) -> None:
    out, _ = full_run
    run_backtest(synthetic(SEED, COUNT, bad_rate=BAD_RATE), CONFIG, tmp_path)
    for name in FILES.values():
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


@pytest.mark.parametrize("prefix", [1100, 1900])
def test_a_prefix_of_the_input_gives_a_prefix_of_the_decisions(
    full_run, tmp_path: Path, prefix: int
) -> None:
    out, _ = full_run
    records = list(synthetic(SEED, COUNT, bad_rate=BAD_RATE))[:prefix]
    run_backtest(records, CONFIG, tmp_path)
    for name in FILES.values():
        part, whole = lines(tmp_path / name), lines(out / name)
        if name == "audit.jsonl":  # the runs the prefix's end closed are still open in the whole
            part = stubs.open_at_end(part)
        assert part == whole[: len(part)], name
    decided = lines(tmp_path / "decisions.jsonl")
    assert decided, "the prefix is too short to reach a decision"
    last_ts = max(r.ts_event_ns for r in records)
    remaining = [
        line
        for line in lines(out / "decisions.jsonl")[len(decided) :]
        if Decision.model_validate_json(line).ts_event_ns < last_ts
    ]
    assert remaining == []  # the prefix run made every decision the full run made before it


def test_output_directory_is_created_and_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    run_backtest(synthetic(1, 300), CONFIG, out)
    first = (out / "decisions.jsonl").read_bytes()
    (out / "decisions.jsonl").write_bytes(b"stale\n")
    run_backtest(synthetic(1, 300), CONFIG, out)
    assert (out / "decisions.jsonl").read_bytes() == first


def test_empty_input_writes_empty_outputs(tmp_path: Path) -> None:
    result = run_backtest([], CONFIG, tmp_path)
    assert (result.ticks, result.decisions) == (0, 0)
    assert all((tmp_path / name).read_bytes() == b"" for name in FILES.values())
    assert json.loads((tmp_path / "summary.json").read_text())["ticks_per_second"] in (None, 0)
