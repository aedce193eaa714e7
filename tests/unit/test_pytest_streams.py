"""`make test` runs the Kafka tests in two pytest processes over paths its script names: the
tests on the session broker, and the fault tests on private brokers once the CPU-bound tests
are done."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (ROOT / ".ci" / "pytest-streams").read_text()


def array(name: str) -> list[str]:
    """The words of the script's bash array ``name``."""
    found = re.search(rf"^{name}=\(([^)]*)\)$", SCRIPT, re.MULTILINE)
    assert found is not None, f"no {name}=(...) in .ci/pytest-streams"
    return found.group(1).split()


def runs(paths: list[str], test_file: str) -> bool:
    """Whether pytest given ``paths`` (and its ``--ignore=`` options) collects ``test_file``."""
    ignored = [p.removeprefix("--ignore=") for p in paths if p.startswith("--ignore=")]
    named = [p for p in paths if not p.startswith("-")]
    inside = lambda f, p: f == p or f.startswith(p.rstrip("/") + "/")  # noqa: E731
    return any(inside(test_file, p) for p in named) and not any(
        inside(test_file, p) for p in ignored
    )


def test_every_test_file_is_in_exactly_one_kafka_run() -> None:
    # a file left out of both would have its Kafka tests run by neither process, silently; a
    # file in both would run twice
    shared, private = array("shared"), array("private")
    files = sorted(str(f.relative_to(ROOT)) for f in (ROOT / "tests").rglob("test_*.py"))
    assert files
    twice = [f for f in files if runs(shared, f) and runs(private, f)]
    never = [f for f in files if not runs(shared, f) and not runs(private, f)]
    assert twice == [] and never == [], (twice, never)
    assert runs(private, "tests/faults/test_leader_change.py")
    assert runs(shared, "tests/faults/test_silent_consumer.py"), "it uses the session broker"


def test_the_fault_tests_run_alone_after_the_others() -> None:
    # their timing is the most sensitive to a busy machine: they start once the tests without
    # Kafka and the shared-broker Kafka tests have both finished
    lines = [line.strip() for line in SCRIPT.splitlines()]
    pytest_lines = [i for i, line in enumerate(lines) if '"$bin/pytest"' in line]
    assert len(pytest_lines) == 3
    no_kafka, shared, faults = (lines[i] for i in pytest_lines)
    assert '-m "not kafka"' in no_kafka and no_kafka.endswith("&"), "the CPU-bound half beside"
    assert '"${shared[@]}"' in shared and not shared.endswith("&")
    assert '"${private[@]}"' in faults and not faults.endswith("&")
    assert pytest_lines[1] < lines.index('wait "$others"') < pytest_lines[2]
