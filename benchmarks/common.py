"""What every benchmark shares: the machine, memory figures, child processes, tables and JSON.

Run the benchmarks from the repository root as modules (``python -m benchmarks.replay``) so they
can import this one. Memory is measured one way everywhere: the peak resident set size
(``ru_maxrss``) of the process that did the work, read with ``os.wait4`` when that process is a
child, so the benchmark's own imports and bookkeeping never count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tickwise.streams.engine.heap import native_defaults

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data"
ES_TRADES = DATA / "es_trades_2013-09-01T17_to_09-03T09.csv.gz"
RESULTS = REPO / "benchmarks" / "results"
CADENCE = REPO / "benchmarks" / "cadence-1s.toml"  # decisions once per event-time second
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _head() -> str | None:
    proc = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or None


# The commit the measured code came from: read when the benchmark starts, not when it writes
# its results (a long run outlives commits made meanwhile).
STARTED_AT = _head()


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare figures: cores, CPU, RAM, Python, load, commit."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kib = int(fh.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "commit": STARTED_AT,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@dataclass
class ChildRun:
    """A finished child process: its exit code, output, peak RSS and wall time."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    wall_s: float

    def last_json(self) -> dict[str, Any]:
        """The last line of stdout, which every benchmark child prints as its JSON result."""
        lines = [line for line in self.stdout.splitlines() if line.startswith("{")]
        if self.returncode != 0 or not lines:
            raise RuntimeError(
                f"child failed (exit {self.returncode}): {self.stderr.strip()[-2000:]}"
            )
        return json.loads(lines[-1])


def run_child(args: list[str], timeout: float) -> ChildRun:
    """Run ``python -m <args>`` from the repo root; its own peak RSS comes from ``wait4``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        env = dict(os.environ)
        native_defaults(env)  # what the ``tickwise`` command sets for itself
        command = [sys.executable, "-m", *args]
        proc = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err, env=env)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
        out.seek(0)
        err.seek(0)
        return ChildRun(
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_maxrss / 1024,
            wall,
        )


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain-text table of ``rows`` (numbers with thousands separators)."""

    def cell(value: Any) -> str:
        if isinstance(value, bool) or value is None:
            return str(value)
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, float):
            return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
        return str(value)

    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def write_results(out: str | Path, command: str, results: dict[str, Any]) -> Path:
    """Write ``{"meta": machine + command, "results": ...}`` as JSON and return the path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**machine(), "command": command}
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def command_line() -> str:
    """How this benchmark was invoked, as one would type it from the repo root."""
    module = Path(sys.argv[0]).stem
    return " ".join(["python -m", f"benchmarks.{module}", *sys.argv[1:]])


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config``: the TOML the backtest or worker runs under, as for ``tickwise``."""
    parser.add_argument(
        "--config",
        default=None,
        help=f"TOML config (default: built-in, a decision on every tick; {CADENCE.name}: "
        "one per second of event time)",
    )
