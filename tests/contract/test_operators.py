"""Checks every operator passes: pure (no Kafka, faust, wall clock, randomness) and exported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import streams.operators as operators

OPERATOR_DIR = Path(operators.__file__).parent
# Every module under streams/operators, families that grew into packages included.
OPERATOR_FILES = sorted(OPERATOR_DIR.rglob("*.py"))
FORBIDDEN_MODULES = {"confluent_kafka", "faust", "aiokafka", "time", "random", "asyncio"}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "time_ns", "perf_counter", "monotonic"}


def _imports(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _only_seeded_generators(tree: ast.AST) -> bool:
    """Every use of the ``random`` module is ``random.Random(<seed>)``, never its global state."""
    uses = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "random"
    ]
    seeded = {
        id(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args
    }
    return all(u.attr == "Random" and id(u) in seeded for u in uses)


def test_operator_files_are_found() -> None:
    names = {p.relative_to(OPERATOR_DIR).parts[0].removesuffix(".py") for p in OPERATOR_FILES}
    assert {"validation", "features", "models", "risk", "audit", "execution"} <= names


@pytest.mark.parametrize("path", OPERATOR_FILES, ids=lambda p: p.name)
def test_operators_import_no_broker_clock_or_randomness(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = _imports(tree)
    if "random" in imported and _only_seeded_generators(tree):
        imported.discard("random")  # random.Random(seed) is as deterministic as its seed
    assert not imported & FORBIDDEN_MODULES, f"{path.name} imports {imported & FORBIDDEN_MODULES}"
    assert not {m for m in imported if m.startswith("streams") and "live" in m}


@pytest.mark.parametrize("path", OPERATOR_FILES, ids=lambda p: p.name)
def test_operators_read_no_wall_clock(path: Path) -> None:
    calls = {
        node.func.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & FORBIDDEN_CALLS, f"{path.name} calls {calls & FORBIDDEN_CALLS}"


@pytest.mark.parametrize("path", OPERATOR_FILES, ids=lambda p: p.name)
def test_operator_modules_hold_no_mutable_globals(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                continue  # the export list is read, never mutated
            value = node.value
            assert not isinstance(value, ast.Dict | ast.List | ast.Set), (
                f"{path.name}:{node.lineno} module-level mutable state"
            )


def test_every_operator_class_is_exported() -> None:
    for name in operators.__all__:
        assert hasattr(operators, name), name
    for cls in ("Validator", "FeatureEngine", "ModelStage", "RiskEngine", "AuditChain"):
        assert cls in operators.__all__
