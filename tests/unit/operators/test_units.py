"""Basis points have one name per direction: ``streams.operators.units``, used everywhere.

A module that defined its own ``BPS`` (1e4 in some, 1e-4 in others) or multiplied by a bare
``1e4`` / ``1e-4`` would make a reader guess which way the conversion goes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tickwise.streams.operators.units import BPS_PER_UNIT, UNIT_PER_BPS

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("streams", "replay", "schemas")
UNITS = ROOT / "streams" / "operators" / "units.py"
CONVERSIONS = (1e4, 1e-4)


def offences(source: str) -> list[str]:
    """Bps conversions a module spells itself: a ``BPS`` name, or ``*`` / ``/`` by 1e4 or 1e-4."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and node.id == "BPS":
            found.append(f"line {node.lineno}: the name BPS")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in CONVERSIONS:
                    found.append(f"line {node.lineno}: a bare {side.value!r}")
    return found


def test_the_two_conversions_are_inverse_and_exact() -> None:
    assert BPS_PER_UNIT == 10_000.0 and UNIT_PER_BPS == 0.0001
    assert UNIT_PER_BPS == 1.0 / BPS_PER_UNIT  # the same double, whichever way it is written


@pytest.mark.parametrize(
    "source",
    ["BPS = 1e4\n", "BPS = 1e-4\nx = 2.0 * BPS\n", "y = 0.5 * 1e4\n", "z = 3.0 / 1e-4\n"],
)
def test_a_module_spelling_its_own_conversion_is_caught(source: str) -> None:
    assert offences(source)


def test_no_module_spells_its_own_bps_conversion() -> None:
    bad = {
        str(path.relative_to(ROOT)): found
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != UNITS and (found := offences(path.read_text()))
    }
    assert bad == {}, (
        f"import BPS_PER_UNIT / UNIT_PER_BPS from tickwise.streams.operators.units: {bad}"
    )
