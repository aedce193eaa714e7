"""The examples in the docstrings of streams/, schemas/ and replay/ run, as installed.

pytest's ``--doctest-modules`` would import those folders under their checkout names
(``streams.cli``), a second copy beside the installed ``tickwise.streams.cli``; so each module
is imported here by its installed name and its examples are run by the standard library's
doctest.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def modules_with_examples() -> list[str]:
    """Installed names of the modules whose source holds an example (``>>>``)."""
    names = []
    for folder in ("streams", "schemas", "replay"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            if ">>> " not in path.read_text():
                continue
            parts = ("tickwise", *path.relative_to(REPO_ROOT).with_suffix("").parts)
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = modules_with_examples()


def test_examples_are_found() -> None:
    assert {"tickwise.replay.report", "tickwise.streams.operators.labels"} <= set(MODULES)
    assert len(MODULES) > 20


@pytest.mark.parametrize("name", MODULES)
def test_module_examples_pass(name: str) -> None:
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    assert tests, f"{name} holds '>>> ' but doctest found no example in it"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
