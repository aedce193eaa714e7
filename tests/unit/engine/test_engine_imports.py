"""A backtest on the engine loads neither river nor scipy's statistics: river's zoo and metrics
belong to the per-tick pipeline, and importing them (``river.metrics`` and ``river.drift`` load
``scipy.stats``) would cost every backtest most of a second before its first tick. The engine's
prequential figures and ADWIN are held equal to river's by their own oracle tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from tickwise.streams.cli import main

code = main(["backtest", "--synthetic", "--count", sys.argv[1], "--out", sys.argv[2]])
loaded = sorted(n for n in sys.modules if n in ("river", "scipy.stats"))
print(json.dumps({"code": code, "loaded": loaded}))
"""


def test_an_engine_backtest_imports_neither_river_nor_scipy_stats(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "3000", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report == {"code": 0, "loaded": []}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ticks"] == 3000
    report_json = json.loads((tmp_path / "report.json").read_text())
    assert report_json["prequential"]["model"], "the model's figures were computed"
