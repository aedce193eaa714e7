"""Backtest throughput and memory on a long synthetic stream: RSS must stay flat as ticks grow.

    python benchmarks/backtest_memory.py --ticks 10000000 --out /tmp/bt-mem

Prints the resident set size every ``--every`` ticks and at the end the peak RSS
(``resource.getrusage``) and ticks per second. Input is generated lazily and every output is
streamed to disk, so a flat RSS column means memory is bounded whatever the history length.
Outputs take about 3 KB of disk per decision (the audit trail dominates).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from replay.backtest import run_backtest
from streams.config import load_config
from streams.sources import RawRecord, synthetic

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Current resident set size in MiB (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 2**20


def sampled(records: Iterator[RawRecord], every: int) -> Iterator[RawRecord]:
    start = time.perf_counter()
    for i, rec in enumerate(records, 1):
        if i % every == 0:
            rate = i / (time.perf_counter() - start)
            print(f"{i:>12,} ticks  RSS {rss_mb():8.1f} MiB  {rate:8,.0f} ticks/s", flush=True)
        yield rec


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="/tmp/tickwise-bench-backtest")
    args = parser.parse_args()
    started = time.perf_counter()
    result = run_backtest(
        sampled(synthetic(args.seed, args.ticks), args.every), load_config(), Path(args.out)
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"ticks {result.ticks:,}  decisions {result.decisions:,}  {seconds:.0f} s  "
        f"{result.ticks / seconds:,.0f} ticks/s  peak RSS {peak:.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
