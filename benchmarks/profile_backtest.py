"""Where a backtest spends its time: py-spy samples of ``tickwise backtest``, summed by function.

    python -m benchmarks.profile_backtest           # 20,000 real ES trades
    python -m benchmarks.profile_backtest --ticks 5000 --speedscope /tmp/bt.speedscope.json

Runs ``tickwise backtest`` on the ES trades under ``py-spy record`` (a sampling profiler that
attaches from outside, so the code runs unmodified) and prints the functions with the most
*self* time (samples whose innermost frame is that function) and the most *total* time
(samples with the function anywhere on the stack), and self time per source file. Only samples
inside ``run_engine_backtest`` count, so interpreter start-up and imports stay out. ``--speedscope``
also records a profile to browse at https://www.speedscope.app (a second, separate run).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ES_TRADES,
    REPO,
    RESULTS,
    add_config_argument,
    command_line,
    table,
    write_results,
)

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
ROOT = "run_engine_backtest"  # what ``tickwise backtest`` runs (replay.engine)


def _where(path: str) -> str:
    """A short, machine-independent name for a source file."""
    for marker in ("site-packages/", "lib/python3."):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "lib/python3." else tail
    return path.replace(str(REPO) + "/", "")


def summarise(raw: str, root: str = ROOT) -> dict[str, Any]:
    """Self and total samples per function, and self per file, from py-spy's raw format.

    Examples
    --------
    >>> raw = "main (a.py:1);run_engine_backtest (b.py:2);f (c.py:3) 3\\nmain (a.py:1) 5\\n"
    >>> s = summarise(raw)
    >>> s["samples"], s["self"][0], sorted(name for name, _ in s["total"])
    (3, ('f (c.py)', 3), ['f (c.py)', 'run_engine_backtest (b.py)'])
    """
    self_time: Counter[str] = Counter()
    total: Counter[str] = Counter()
    files: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        parsed = [FRAME.match(f) for f in stack.split(";")]
        names = [m["func"] if m else "" for m in parsed]
        if root not in names:
            continue
        parsed = parsed[names.index(root) :]  # the callers above the root are the same always
        count = int(count_text)
        samples += count
        labels = [f"{m['func']} ({_where(m['file'])})" for m in parsed if m is not None]
        if not labels:
            continue
        self_time[labels[-1]] += count
        last = parsed[-1]
        if last is not None:
            files[_where(last["file"])] += count
        for label in set(labels):
            total[label] += count
    return {
        "samples": samples,
        "self": self_time.most_common(),
        "total": total.most_common(),
        "files": files.most_common(),
    }


def backtest_command(data: Path, ticks: int, out: str, config: str | None = None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tickwise.streams.cli",
        "backtest",
        "--data",
        str(data),
        "--symbol",
        "ES",
        "--tz",
        "America/Chicago",
        "--count",
        str(ticks),
        "--out",
        out,
        "--no-progress",
        *(["--config", config] if config else []),
    ]


def record(py_spy: str, fmt: str, rate: int, path: Path, command: list[str]) -> None:
    cmd = [py_spy, "record", "--format", fmt, "--rate", str(rate), "-o", str(path), "--"]
    proc = subprocess.run([*cmd, *command], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"py-spy failed: {proc.stderr.strip()[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--data", type=Path, default=ES_TRADES)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--speedscope", default=None, help="also write a speedscope profile")
    parser.add_argument("--out", default=str(RESULTS / "profile_backtest.json"))
    add_config_argument(parser)
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tickwise-bench-profile-") as tmp:
        raw_path = Path(tmp) / "backtest.raw"
        command = backtest_command(args.data, args.ticks, tmp, args.config)
        record(py_spy, "raw", args.rate, raw_path, command)
        summary = summarise(raw_path.read_text())
        if args.speedscope:
            command = backtest_command(args.data, args.ticks, tmp, args.config)
            record(py_spy, "speedscope", args.rate, Path(args.speedscope), command)
    n = max(summary["samples"], 1)

    def rows(key: str) -> list[dict[str, Any]]:
        return [
            {"where": name, "samples": c, "percent": round(100 * c / n, 1)}
            for name, c in summary[key][: args.top]
        ]

    for key, title in (("self", "self time"), ("total", "total time"), ("files", "self by file")):
        print(f"\n{title} ({summary['samples']} samples inside {ROOT})")
        print(table(rows(key), ["percent", "samples", "where"]))
    results = {"samples": summary["samples"], **{k: rows(k) for k in ("self", "total", "files")}}
    write_results(args.out, command_line(), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
