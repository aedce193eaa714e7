"""Checks every operator passes: pure (no Kafka, faust, wall clock, randomness) and exported.

The checkers are functions of a source tree, so the tests at the bottom run them on small modules
that break each rule and prove they can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tickwise.streams.operators as operators

OPERATOR_DIR = Path(operators.__file__).parent
REPO_ROOT = OPERATOR_DIR.parents[1]
# Every module under streams/operators, families that grew into packages included.
OPERATOR_FILES = sorted(OPERATOR_DIR.rglob("*.py"))
# Dotted module names; a name is forbidden with everything under it (``faust`` covers
# ``faust.agents``, ``tickwise.streams.live`` covers
# ``tickwise.streams.live.worker``).
FORBIDDEN_MODULES = frozenset(
    {"confluent_kafka", "faust", "aiokafka", "time", "random", "asyncio", "tickwise.streams.live"}
)
FORBIDDEN_CALLS = frozenset(
    {"now", "utcnow", "today", "time", "time_ns", "perf_counter", "monotonic"}
)
MUTABLE_CONSTRUCTORS = frozenset(
    {"dict", "list", "set", "bytearray", "defaultdict", "deque", "Counter", "OrderedDict"}
)


def module_name(path: Path, root: Path) -> str:
    """Dotted name, as installed under the ``tickwise`` namespace, of the module at ``path`` in a
    checkout at ``root``; a package's ``__init__`` is named as the package."""
    parts = ("tickwise", *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Full dotted names of what ``module`` imports, relative imports resolved against it.

    ``from pkg import name`` yields ``pkg`` and ``pkg.name``, since ``name`` may be a submodule.
    """
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                if node.level > len(parts):
                    raise ValueError(f"{module}: relative import beyond the top-level package")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names if alias.name != "*"}
    return out


def _is_under(name: str, root: str) -> bool:
    return name == root or name.startswith(root + ".")


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


def _random_imported_plainly(tree: ast.AST) -> bool:
    """``random`` comes in only as ``import random``, so every use of it is spelled ``random.``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name == "random" and a.asname not in (None, "random") for a in node.names
        ):
            return False
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "random":
            return False
    return True


def forbidden_imports(path: Path, root: Path) -> set[str]:
    """The modules ``path`` imports that an operator must not: broker, faust, clock, live edge.

    ``import random`` is allowed when it only builds seeded ``random.Random(seed)`` generators,
    which are as deterministic as their seed.
    """
    tree = ast.parse(path.read_text())
    imported = imported_modules(tree, module_name(path, root), path.name == "__init__.py")
    if _random_imported_plainly(tree) and _only_seeded_generators(tree):
        imported.discard("random")
    return {m for m in imported if any(_is_under(m, f) for f in FORBIDDEN_MODULES)}


def wall_clock_calls(tree: ast.AST) -> set[str]:
    """Names of the clock-reading methods called (``datetime.now()``, ``time.monotonic()``...)."""
    return {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    } & FORBIDDEN_CALLS


def mutable_globals(tree: ast.Module) -> list[int]:
    """Line numbers of module-level assignments of mutable containers (the export list aside)."""
    lines = []
    for node in tree.body:
        if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue  # the export list is read, never mutated
        value = node.value
        literal = isinstance(
            value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp
        )
        func = value.func if isinstance(value, ast.Call) else None
        called = (isinstance(func, ast.Name) and func.id in MUTABLE_CONSTRUCTORS) or (
            isinstance(func, ast.Attribute) and func.attr in MUTABLE_CONSTRUCTORS
        )
        if literal or called:
            lines.append(node.lineno)
    return lines


# --- the operators ------------------------------------------------------------------------


def test_operator_files_are_found() -> None:
    names = {p.relative_to(OPERATOR_DIR).parts[0].removesuffix(".py") for p in OPERATOR_FILES}
    assert {"validation", "features", "models", "risk", "audit", "execution"} <= names


@pytest.mark.parametrize("path", OPERATOR_FILES, ids=lambda p: p.name)
def test_operators_import_no_broker_clock_randomness_or_live_edge(path: Path) -> None:
    found = forbidden_imports(path, REPO_ROOT)
    assert not found, f"{path.name} imports {sorted(found)}"


@pytest.mark.parametrize("path", OPERATOR_FILES, ids=lambda p: p.name)
def test_operators_read_no_wall_clock(path: Path) -> None:
    calls = wall_clock_calls(ast.parse(path.read_text()))
    assert not calls, f"{path.name} calls {sorted(calls)}"


@pytest.mark.parametrize("path", OPERATOR_FILES, ids=lambda p: p.name)
def test_operator_modules_hold_no_mutable_globals(path: Path) -> None:
    lines = mutable_globals(ast.parse(path.read_text()))
    assert not lines, f"{path.name}:{lines} module-level mutable state"


def test_every_operator_class_is_exported() -> None:
    for name in operators.__all__:
        assert hasattr(operators, name), name
    for cls in ("FeatureEngine", "ModelStage", "AuditChain", "PaperBroker", "Monitor"):
        assert cls in operators.__all__


# --- the checkers fail on modules that break the rules --------------------------------------


def _fixture(root: Path, relative: str, source: str) -> Path:
    """Write ``source`` as the module at ``root/relative``, with ``__init__.py`` above it."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    for package in path.relative_to(root).parents:
        if package != Path("."):
            (root / package / "__init__.py").touch()
    path.write_text(source)
    return path


@pytest.mark.parametrize(
    ("source", "reported"),
    [
        (
            "from tickwise.streams.live.worker import run\n",
            {"tickwise.streams.live.worker", "tickwise.streams.live.worker.run"},
        ),
        ("import tickwise.streams.live.worker\n", {"tickwise.streams.live.worker"}),
        (
            "from tickwise.streams.live import broker\n",
            {"tickwise.streams.live", "tickwise.streams.live.broker"},
        ),
        ("from ...live import worker\n", {"tickwise.streams.live", "tickwise.streams.live.worker"}),
        ("from ... import live\n", {"tickwise.streams.live"}),
        ("import faust.agents\n", {"faust.agents"}),
        ("from confluent_kafka import Consumer\n", {"confluent_kafka", "confluent_kafka.Consumer"}),
        ("from time import time_ns\n", {"time", "time.time_ns"}),
        ("import asyncio\n", {"asyncio"}),
        ("import random\nx = random.random()\n", {"random"}),
        ("import random as rnd\nrng = rnd.Random(7)\n", {"random"}),
        ("from random import Random\nrng = Random(7)\n", {"random", "random.Random"}),
    ],
    ids=lambda value: value.splitlines()[0] if isinstance(value, str) else None,
)
def test_forbidden_imports_are_reported(tmp_path: Path, source: str, reported: set[str]) -> None:
    path = _fixture(tmp_path, "streams/operators/family/module.py", source)
    assert forbidden_imports(path, tmp_path) == reported


def test_relative_imports_resolve_from_a_package_init(tmp_path: Path) -> None:
    path = _fixture(tmp_path, "streams/operators/family/__init__.py", "from ..live import tap\n")
    assert (
        forbidden_imports(path, tmp_path) == set()
    )  # tickwise.streams.operators.live: not the edge
    path.write_text("from ...live import tap\n")
    assert forbidden_imports(path, tmp_path) == {
        "tickwise.streams.live",
        "tickwise.streams.live.tap",
    }


def test_allowed_imports_are_not_reported(tmp_path: Path) -> None:
    source = (
        "import math\nimport timeit\nimport random\n"
        "from datetime import time\n"
        "from tickwise.schemas.ticks import TradeTick\n"
        "from tickwise.streams.operators.state import InstrumentStateMixin\n"
        "from tickwise.streams.livelihood import x\n"
        "from ..features import ewm\n"
        "rng = random.Random(7)\n"
    )
    path = _fixture(tmp_path, "streams/operators/family/module.py", source)
    assert forbidden_imports(path, tmp_path) == set()


def test_relative_import_above_the_top_level_is_an_error(tmp_path: Path) -> None:
    path = _fixture(tmp_path, "streams/module.py", "from ... import x\n")
    with pytest.raises(ValueError, match="beyond the top-level package"):
        forbidden_imports(path, tmp_path)


def test_wall_clock_calls_are_reported() -> None:
    source = (
        "from datetime import date, datetime\na = datetime.now()\nb = date.today()\nc = max(1)\n"
    )
    assert wall_clock_calls(ast.parse(source)) == {"now", "today"}


def test_mutable_globals_are_reported() -> None:
    source = (
        "from collections import defaultdict, deque\n"
        "import collections\n"
        "CACHE = {}\n"
        "SEEN: set[str] = set()\n"
        "QUEUE = deque()\n"
        "BY_KEY = collections.defaultdict(list)\n"
        "SQUARES = [i * i for i in range(3)]\n"
        "__all__ = ['x']\n"
        "LIMIT = 3\n"
        "NAMES = ('a', 'b')\n"
        "KINDS = frozenset({'a'})\n"
        "DECLARED: int\n"
    )
    assert mutable_globals(ast.parse(source)) == [3, 4, 5, 6, 7]
