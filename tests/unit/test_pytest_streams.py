"""`make test` runs the Kafka tests in a second pytest process over directories it names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_kafka_stream_names_every_test_directory() -> None:
    # a directory of tests left out of the list would have its Kafka tests run by neither
    # process, silently
    script = (ROOT / ".ci" / "pytest-streams").read_text()
    named = re.search(r"-m kafka ((?:tests/\w+ ?)+)", script)
    assert named is not None
    listed = set(named.group(1).split())
    holding_tests = {
        f"tests/{d.name}"
        for d in (ROOT / "tests").iterdir()
        if d.is_dir() and any(d.rglob("test_*.py"))
    }
    assert holding_tests and holding_tests <= listed, holding_tests - listed
    assert named.group(1).split()[-1] == "tests/faults", "the fault tests go last"
