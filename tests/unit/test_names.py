"""One name for one thing: model stages and risk reasons are enums, spelled once."""

from __future__ import annotations

import ast
import json
import re
from enum import StrEnum
from pathlib import Path

import stubs

from tests.oracle.risk import RiskEngine
from tickwise.schemas.decisions import Decision, Side, Stage
from tickwise.streams.cli import build_parser
from tickwise.streams.config import RiskConfig
from tickwise.streams.model_cli import STAGE_CHOICES
from tickwise.streams.operators.risk import Reason

ROOT = Path(__file__).resolve().parents[2]
# where a stage's string may be written: the enum, and the parser that must not import pydantic
SPELLED = {ROOT / "schemas" / "decisions.py", ROOT / "streams" / "model_cli.py"}


def stage_literals(source: str) -> list[int]:
    """Lines of a module that write a stage name as a string."""
    values = {str(s) for s in Stage}
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and node.value in values
    ]


def test_a_stage_written_as_a_string_is_caught() -> None:
    assert stage_literals('if dep.stage == "canary":\n    pass\n') == [1]
    assert stage_literals("if dep.stage == Stage.CANARY:\n    pass\n") == []


def test_stage_names_are_spelled_only_by_the_enum() -> None:
    bad = {
        str(path.relative_to(ROOT)): lines
        for package in ("streams", "replay", "schemas")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path not in SPELLED and (lines := stage_literals(path.read_text()))
    }
    assert bad == {}, f"use schemas.decisions.Stage: {bad}"


def test_the_promote_command_offers_exactly_the_stages() -> None:
    assert tuple(Stage) == STAGE_CHOICES
    model = build_parser()._subparsers._group_actions[0].choices["model"]  # type: ignore[union-attr]
    promote = model._subparsers._group_actions[0].choices["promote"]  # type: ignore[union-attr]
    (stage,) = [a for a in promote._actions if a.dest == "stage"]
    assert tuple(stage.choices) == tuple(Stage)


def test_risk_reasons_are_an_enum_whose_values_are_their_names() -> None:
    assert issubclass(Reason, StrEnum)
    assert all(r.value == r.name for r in Reason)


def test_a_rejection_reason_is_the_same_string_on_the_wire() -> None:
    sig = stubs.signal(Side.BUY, instrument="ES")
    verdict = RiskEngine(RiskConfig(allowed_instruments=("NQ",))).evaluate(sig, 100.0)
    assert verdict.decision.reject_reasons == [Reason.INSTRUMENT_NOT_ALLOWED]
    wire = json.loads(verdict.decision.to_bytes())
    assert wire["reject_reasons"] == ["INSTRUMENT_NOT_ALLOWED"]
    assert Decision.model_validate(wire) == verdict.decision


HISTORY = re.compile(r"\bskeleton\b|\bissues? #?\d+", re.IGNORECASE)


def test_the_code_carries_no_history_comments() -> None:
    # the history lives in commit messages; code says what is true now
    files = [ROOT / "Dockerfile", ROOT / "Makefile"] + [
        path
        for package in ("streams", "replay", "schemas", "benchmarks")
        for path in sorted((ROOT / package).rglob("*"))
        if path.suffix in {".py", ".js", ".html", ".toml"}
    ]
    bad = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in files
        if path.exists()
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if HISTORY.search(line)
    ]
    assert HISTORY.search("# limits added with paper execution (issue 5)")
    assert bad == []
