"""The import contracts in pyproject.toml hold on the tree, and each one can fail.

``lint-imports`` reads ``[tool.importlinter]``; the tests below run it on the repository, then on
a copy of the packages with one forbidden import added, and expect that contract to break.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("streams", "schemas", "replay")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# The modules of streams the pure contract allows operators and the engine to import.
PURE_ALLOWED = frozenset(
    {"tickwise.streams.config", "tickwise.streams.operators", "tickwise.streams.engine"}
)


def contracts() -> dict[str, dict]:
    """The contracts of pyproject.toml by id."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def lint_imports(root: Path | None, *contract_ids: str) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` with the repository's contracts on the ``tickwise`` namespace under
    ``root``, or on the installed one when ``root`` is None."""
    limit = [arg for cid in contract_ids for arg in ("--contract", cid)]
    env = {**os.environ, "COLUMNS": "200"}
    if root is not None:
        env["PYTHONPATH"] = str(root)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *limit, str(REPO_ROOT / "pyproject.toml")],
        cwd=root or REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the three packages, as they are in the repository, under the namespace."""
    root = tmp_path_factory.mktemp("packages")
    for package in PACKAGES:
        shutil.copytree(
            REPO_ROOT / package,
            root / "tickwise" / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "static"),
        )
    return root


def test_the_repository_keeps_every_contract() -> None:
    result = lint_imports(None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts())} kept, 0 broken." in result.stdout


def test_the_copy_keeps_every_contract(pristine: Path) -> None:
    """The copy the breaking tests edit passes unedited, so their failures are the edit's."""
    result = lint_imports(pristine)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("contract", "module", "added", "reported"),
    [
        # operators reach the live edge (the rule test_operators.py checks by AST as well)
        (
            "pure",
            "streams/operators/risk.py",
            "import tickwise.streams.live.worker",
            "tickwise.streams.live",
        ),
        ("pure", "streams/engine/batch.py", "import confluent_kafka", "confluent_kafka"),
        ("pure", "streams/operators/labels.py", "import tickwise.replay.report", "replay"),
        (
            "pure",
            "streams/engine/features.py",
            "import tickwise.streams.sources",
            "tickwise.streams.sources",
        ),
        ("schemas", "schemas/ticks.py", "import tickwise.streams.config", "streams"),
        # the reverse of the engine's one allowed direction
        (
            "layers",
            "streams/operators/labels.py",
            "import tickwise.streams.engine.batch",
            "tickwise.streams.engine",
        ),
        # an import inside a function counts too: lazy imports made the cycles this file prevents
        (
            "layers",
            "streams/live/tap.py",
            "def _late():\n    import tickwise.replay.report",
            "replay",
        ),
        ("sources", "streams/sources/generator.py", "import confluent_kafka", "confluent_kafka"),
        (
            "audit-store",
            "streams/audit/store.py",
            "from tickwise.streams.audit import sink",
            "sink",
        ),
        # the per-tick oracle the tests hold the engine to, run by the product
        (
            "oracle",
            "replay/engine.py",
            "def _oracle():\n    from tests.oracle.pipeline import Pipeline",
            "tests",
        ),
        ("oracle", "streams/live/state.py", "import tests.stubs", "tests"),
        # the three cycles these packages were made to break, put back
        (
            "acyclic",
            "streams/live/security.py",
            "from tickwise.streams.live import broker",
            "broker",
        ),
        ("acyclic", "streams/sources/records.py", "import tickwise.streams.sources.files", "files"),
        ("acyclic", "streams/audit/store.py", "import tickwise.streams.audit.cli", "cli"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    pristine: Path, tmp_path: Path, contract: str, module: str, added: str, reported: str
) -> None:
    root = tmp_path / "packages"
    shutil.copytree(pristine, root)
    path = root / "tickwise" / module
    path.write_text(f"{path.read_text()}\n\n{added}\n")
    result = lint_imports(root, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout
    assert reported in result.stdout.split("Broken contracts", 1)[1]


def test_the_pure_contract_names_every_other_module_of_streams() -> None:
    """A new module of streams is forbidden to operators and the engine until listed as allowed."""
    streams = REPO_ROOT / "streams"
    children = {
        f"tickwise.streams.{p.stem}"
        for p in streams.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    pure = contracts()["pure"]
    forbidden = {m for m in pure["forbidden_modules"] if m.startswith("tickwise.streams.")}
    assert set(pure["source_modules"]) < PURE_ALLOWED
    assert forbidden == children - PURE_ALLOWED
    assert {"tickwise.replay", "faust", "confluent_kafka", "aiohttp"} <= set(
        pure["forbidden_modules"]
    )


def top_level_imports(source: str) -> set[str]:
    """The top-level package of every module ``source`` imports, inside functions included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_the_benchmarks_never_import_the_tests() -> None:
    """benchmarks/ is outside the packages lint-imports reads: a figure measured on the tests'
    per-tick oracle would be of a path the product no longer has."""
    test_modules = {"tests", "stubs", "oracle", "reference", "conftest"}
    assert "tests" in top_level_imports("def f():\n    from tests.oracle.pipeline import P\n")
    for path in sorted((REPO_ROOT / "benchmarks").glob("*.py")):
        assert not top_level_imports(path.read_text()) & test_modules, path.name
