"""The import contracts in pyproject.toml hold on the tree, and each one can fail.

``lint-imports`` reads ``[tool.importlinter]``; the tests below run it on the repository, then on
a copy of the packages with one forbidden import added, and expect that contract to break.
"""

from __future__ import annotations

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
PURE_ALLOWED = frozenset({"streams.config", "streams.operators", "streams.engine"})


def contracts() -> dict[str, dict]:
    """The contracts of pyproject.toml by id."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def lint_imports(root: Path, *contract_ids: str) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` on the packages under ``root`` with the repository's contracts."""
    limit = [arg for cid in contract_ids for arg in ("--contract", cid)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *limit, str(REPO_ROOT / "pyproject.toml")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the three packages, as they are in the repository."""
    root = tmp_path_factory.mktemp("packages")
    for package in PACKAGES:
        shutil.copytree(
            REPO_ROOT / package,
            root / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "static"),
        )
    return root


def test_the_repository_keeps_every_contract() -> None:
    result = lint_imports(REPO_ROOT)
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
        ("pure", "streams/operators/risk.py", "import streams.live.worker", "streams.live"),
        ("pure", "streams/engine/batch.py", "import confluent_kafka", "confluent_kafka"),
        ("pure", "streams/operators/labels.py", "import replay.report", "replay"),
        ("pure", "streams/engine/features.py", "import streams.sources", "streams.sources"),
        ("schemas", "schemas/ticks.py", "import streams.config", "streams"),
        # the reverse of the engine's one allowed direction
        ("layers", "streams/operators/labels.py", "import streams.engine.batch", "streams.engine"),
        # an import inside a function counts too: lazy imports made the cycles this file prevents
        ("layers", "streams/live/tap.py", "def _late():\n    import replay.report", "replay"),
        ("sources", "streams/sources/generator.py", "import confluent_kafka", "confluent_kafka"),
        ("audit-store", "streams/audit/store.py", "from streams.audit import sink", "sink"),
        # the three cycles these packages were made to break, put back
        ("acyclic", "streams/live/security.py", "from streams.live import broker", "broker"),
        ("acyclic", "streams/sources/records.py", "import streams.sources.files", "files"),
        ("acyclic", "streams/audit/store.py", "import streams.audit.cli", "cli"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    pristine: Path, tmp_path: Path, contract: str, module: str, added: str, reported: str
) -> None:
    root = tmp_path / "packages"
    shutil.copytree(pristine, root)
    path = root / module
    path.write_text(f"{path.read_text()}\n\n{added}\n")
    result = lint_imports(root, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout
    assert reported in result.stdout.split("Broken contracts", 1)[1]


def test_the_pure_contract_names_every_other_module_of_streams() -> None:
    """A new module of streams is forbidden to operators and the engine until listed as allowed."""
    streams = REPO_ROOT / "streams"
    children = {
        f"streams.{p.stem}"
        for p in streams.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    pure = contracts()["pure"]
    forbidden = {m for m in pure["forbidden_modules"] if m.startswith("streams.")}
    assert set(pure["source_modules"]) < PURE_ALLOWED
    assert forbidden == children - PURE_ALLOWED
    assert {"replay", "faust", "confluent_kafka", "aiohttp"} <= set(pure["forbidden_modules"])
