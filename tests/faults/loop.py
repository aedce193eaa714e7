"""Run the SIGKILL-then-broker-restart scenario many times; outside ``make test``.

    python tests/faults/loop.py            # 10 runs
    python tests/faults/loop.py --runs 3 --keep /tmp/faults

Why a loop: the faults this guards against were intermittent (about 2 runs in 7), so one
passing run proves nothing. Exits non-zero if any run broke a promise.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for its stubs module
from fault_scenario import sigkill_then_broker_restart


def main(argv: list[str] | None = None) -> int:
    """Run the scenario ``--runs`` times; print one line per run and a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--down-s", type=float, default=5.0, help="seconds the broker is down")
    parser.add_argument("--keep", default=None, help="keep each run's directory under this one")
    args = parser.parse_args(argv)
    root = Path(args.keep or tempfile.mkdtemp(prefix="tickwise-faults-"))
    failed = 0
    for n in range(1, args.runs + 1):
        workdir = root / f"run{n}"
        outcome = sigkill_then_broker_restart(
            workdir,
            seed=40 + n,
            down_s=args.down_s,
            note=lambda s, n=n: print(f"  run {n}: {s}", flush=True),
        )
        verdict = "ok" if not outcome.problems else "FAILED: " + "; ".join(outcome.problems)
        print(
            f"run {n}: {outcome.decisions}/{outcome.expected} decisions in "
            f"{outcome.seconds:.0f} s: {verdict}",
            flush=True,
        )
        failed += bool(outcome.problems)
        if not outcome.problems and args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{args.runs - failed} of {args.runs} runs kept every promise (logs: {root})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
