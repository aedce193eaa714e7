"""Start-up: the ``tickwise`` parser, and every help it prints, load none of the heavy libraries.

The implementations import river, numpy, pydantic and the Kafka clients, which takes seconds;
the parser names each command's handler and imports it only when the command runs. These tests
hold that property without timing anything; ``benchmarks/startup.py`` measures the time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tickwise.streams.cli import HEAVY_LIBRARIES, LazyHandler, build_parser

HEAVY = HEAVY_LIBRARIES

# Runs in a fresh interpreter: builds the parser, then asks every command for its help, and
# reports after each step which heavy top-level packages have been imported so far.
PROBE = """
import argparse, contextlib, io, json, sys
import tickwise.streams.cli as cli

HEAVY = set(sys.argv[1].split(","))

def heavy():
    return sorted({name.split(".")[0] for name in sys.modules} & HEAVY)

def commands(parser, path):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield [*path, name]
                yield from commands(sub, [*path, name])

report = {"import": {"heavy": heavy(), "usage": ""}}
cli.build_parser()
report["build_parser"] = {"heavy": heavy(), "usage": ""}
for argv in [[], *commands(cli.build_parser(), [])]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        cli.main([*argv, "--help"])
    report[" ".join(argv)] = {"heavy": heavy(), "usage": out.getvalue().splitlines()[0]}
print(json.dumps(report))
"""


def _run_python(code: str, *argv: str) -> str:
    """Run ``code`` in a fresh interpreter (the installed tickwise) and return what it printed."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _probe() -> dict[str, dict[str, object]]:
    return json.loads(_run_python(PROBE, ",".join(HEAVY)))  # type: ignore[no-any-return]


def _commands(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, object]]:
    """Yield every leaf command's name and its handler (``func``), nested ones included."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser.get_default("func")
    for action in subs:
        for name, sub in action.choices.items():
            yield from _commands(sub, f"{path} {name}".strip())


def test_building_the_parser_and_every_help_imports_no_heavy_library() -> None:
    report = _probe()
    assert {step: seen["heavy"] for step, seen in report.items() if seen["heavy"]} == {}
    # The probe did reach every command, nested ones included, and each printed its own usage.
    assert {"", "backtest", "worker", "console", "model", "model compare"} <= set(report)
    for argv, seen in report.items():
        if argv not in ("import", "build_parser"):
            assert str(seen["usage"]).startswith(" ".join(["usage: tickwise", argv]).strip() + " ")


def test_every_command_names_a_handler_that_exists() -> None:
    commands = dict(_commands(build_parser()))
    assert len(commands) >= 20, sorted(commands)
    for name, func in commands.items():
        handler = func.resolve() if isinstance(func, LazyHandler) else func
        assert callable(handler), f"tickwise {name}: {func!r} is not a function"


def test_a_lazy_handler_imports_its_module_only_when_called() -> None:
    missing = LazyHandler("tickwise.streams.no_such_module:run_cli")  # naming it imports nothing
    with pytest.raises(ModuleNotFoundError):
        missing(argparse.Namespace())
    handler = LazyHandler("tickwise.schemas.generate:run_cli")
    assert repr(handler) == "LazyHandler('tickwise.schemas.generate:run_cli')"
    assert handler(argparse.Namespace(action="check")) == 0


def test_one_operator_module_loads_without_the_others() -> None:
    """``streams.operators`` re-exports lazily: a control command needs no model library."""
    code = (
        "import sys, tickwise.streams.operators.control, tickwise.streams.operators.validation\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1].split(','))))"
    )
    assert _run_python(code, ",".join(HEAVY)).strip() == "['pydantic']"
    import tickwise.streams.operators as operators

    assert set(dir(operators)) >= set(operators.__all__)
    assert operators.FeatureEngine.__module__.startswith("tickwise.streams.operators.features")
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = operators.Nope
