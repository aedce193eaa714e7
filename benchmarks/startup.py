"""Start-up: how long ``tickwise --help``, a sub-command's help and a one-tick backtest take.

    python -m benchmarks.startup                  # ten runs of each, about a minute here
    python -m benchmarks.startup --runs 3 --no-backtest

Each row is the median wall time of fresh processes (the interpreter, imports, parsing, the work,
exit), run one after the other from the repository root. The target is ``tickwise --help`` and
``tickwise <command> --help`` under 0.5 s. Two floors stand beside them: an empty interpreter,
and importing the backtest's engine (``tickwise.replay.engine``: numpy, the kernels, pydantic),
which every command that decides pays before its first tick and the parser must not pay at
all. Then the slowest imports of building the parser (``python -X importtime``) say where its
time goes, and the heavy libraries it loaded say whether it regressed (the list should be
empty).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, RESULTS, add_config_argument, command_line, table, write_results
from tickwise.streams.cli import HEAVY_LIBRARIES

TARGET_S = 0.5
HEAVY = HEAVY_LIBRARIES  # what the parser must not load
BUILD_PARSER = "import tickwise.streams.cli as c; c.build_parser()"


def _env() -> dict[str, str]:
    """The children import the installed tickwise (this checkout, with ``make install``)."""
    return dict(os.environ)


def tickwise() -> list[str]:
    """The ``tickwise`` command as users run it: the installed script, else its equivalent."""
    script = Path(sys.executable).parent / "tickwise"
    if script.exists():
        return [str(script)]
    return [
        sys.executable,
        "-c",
        "import sys; from tickwise.streams.cli import main; sys.exit(main())",
    ]


def median_wall_s(cmd: list[str], runs: int) -> dict[str, float]:
    """Run ``cmd`` ``runs`` times and return the median, lowest and highest wall time."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def slowest_imports(code: str, top: int) -> list[dict[str, Any]]:
    """The ``top`` imports with the largest cumulative time (µs) while running ``code``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[dict[str, Any]] = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.removeprefix("import time:").split("|")
            rows.append({"module": name.strip(), "cumulative_us": int(cumulative)})
    return sorted(rows, key=lambda r: -r["cumulative_us"])[:top]


def heavy_loaded(code: str) -> list[str]:
    """The heavy libraries imported by running ``code`` in a fresh interpreter."""
    report = "import json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\n{report}"
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(set(json.loads(proc.stdout)) & set(HEAVY))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="processes per row (median)")
    parser.add_argument("--no-backtest", action="store_true", help="skip the one-tick backtest")
    parser.add_argument("--top", type=int, default=10, help="slowest imports to list")
    parser.add_argument("--out", default=str(RESULTS / "startup.json"), help="result JSON")
    add_config_argument(parser)
    args = parser.parse_args(argv)

    python = [sys.executable, "-c"]
    commands: dict[str, list[str]] = {
        "python -c pass (floor)": [*python, "pass"],
        "import tickwise.replay.engine (floor)": [*python, "import tickwise.replay.engine"],
        "import tickwise.streams.cli": [*python, "import tickwise.streams.cli"],
        "tickwise --help": [*tickwise(), "--help"],
        "tickwise backtest --help": [*tickwise(), "backtest", "--help"],
        "tickwise model compare --help": [*tickwise(), "model", "compare", "--help"],
    }
    targeted = {"tickwise --help", "tickwise backtest --help", "tickwise model compare --help"}
    with tempfile.TemporaryDirectory(prefix="tickwise-bench-startup-") as out_dir:
        if not args.no_backtest:
            config = ["--config", args.config] if args.config else []
            one_tick = ["backtest", "--synthetic", "--count", "1", "--out", out_dir, *config]
            commands["tickwise backtest (one tick)"] = [*tickwise(), *one_tick]
        rows = []
        for name, cmd in commands.items():
            timing = median_wall_s(cmd, args.runs)
            row: dict[str, object] = {"command": name, "runs": args.runs, **timing}
            if name in targeted:
                row["under_0_5_s"] = timing["median_s"] < TARGET_S
            rows.append(row)
            print(f"{name:<40} median {timing['median_s']:.3f} s", flush=True)

    imports = slowest_imports(BUILD_PARSER, args.top)
    heavy = heavy_loaded(BUILD_PARSER)
    print()
    print(table(rows, ["command", "runs", "median_s", "min_s", "max_s", "under_0_5_s"]))
    print(f"\nslowest imports while building the parser (of {len(imports)} listed):")
    print(table(imports, ["module", "cumulative_us"]))
    print(f"heavy libraries loaded by building the parser: {heavy or 'none'}")
    results = {
        "rows": rows,
        "target_s": TARGET_S,
        "tickwise": tickwise()[0],
        "build_parser_slowest_imports": imports,
        "build_parser_heavy_loaded": heavy,
        "config": args.config,
    }
    write_results(args.out, command_line(), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
