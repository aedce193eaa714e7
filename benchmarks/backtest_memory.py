"""Backtest memory on a long synthetic stream: peak RSS must stay flat as ticks grow.

    python -m benchmarks.backtest_memory                 # ten million ticks (hours here)
    python -m benchmarks.backtest_memory --quick         # 200,000 ticks (~2 min)
    python -m benchmarks.backtest_memory --ticks 1000000 --every 100000

Prints the resident set size every ``--every`` ticks, then the peak RSS (``ru_maxrss`` of this
process, which is the backtest) and ticks per second, and writes them as JSON. Input is
generated lazily and every output is streamed to disk, so a flat RSS column means memory is
bounded whatever the history length. Outputs take about 3.4 KB of disk per decision (the audit
trail dominates; ten million ticks need about 34 GB): they go to a temporary directory that is
removed afterwards unless ``--keep-out DIR`` is given.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.common import (
    RESULTS,
    add_config_argument,
    command_line,
    peak_rss_mb,
    rss_mb,
    table,
    write_results,
)
from tickwise.replay.engine import run_backtest
from tickwise.streams.config import load_config
from tickwise.streams.engine.heap import keep_batch_memory
from tickwise.streams.sources import RawRecord, synthetic

TARGET_MB = 1024.0
QUICK_TICKS = 200_000


def sampled(
    records: Iterator[RawRecord], every: int, samples: list[dict[str, float]]
) -> Iterator[RawRecord]:
    """Pass records through, noting the RSS and the rate so far every ``every`` ticks."""
    start = time.perf_counter()
    for i, rec in enumerate(records, 1):
        if i % every == 0:
            rate = i / (time.perf_counter() - start)
            samples.append({"ticks": i, "rss_mb": round(rss_mb(), 1), "ticks_per_s": round(rate)})
            print(f"{i:>12,} ticks  RSS {rss_mb():8.1f} MiB  {rate:8,.0f} ticks/s", flush=True)
        yield rec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TICKS:,} ticks")
    parser.add_argument("--every", type=int, default=None, help="sample RSS every N ticks")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-out", default=None, help="keep the backtest outputs in this dir")
    parser.add_argument("--out", default=str(RESULTS / "memory.json"), help="result JSON")
    add_config_argument(parser)
    args = parser.parse_args(argv)
    ticks = QUICK_TICKS if args.quick else args.ticks
    every = args.every or max(1, ticks // 10)
    out_dir = Path(args.keep_out or tempfile.mkdtemp(prefix="tickwise-bench-memory-"))
    samples: list[dict[str, float]] = []
    config = load_config(args.config)
    keep_batch_memory()  # as tickwise backtest does before it reads (replay.command)
    baseline = rss_mb()  # after imports, before the first tick
    try:
        started, cpu = time.perf_counter(), time.process_time()
        records = sampled(synthetic(args.seed, ticks), every, samples)
        # what tickwise backtest runs: the engine, the records through the bulk decoder
        result = run_backtest(records, config, out_dir)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        if args.keep_out is None:
            shutil.rmtree(out_dir, ignore_errors=True)
    peak = peak_rss_mb()
    row = {
        "ticks": result.ticks,
        "decisions": result.decisions,
        "sample_ms": config.features.sample_ms,
        "seconds": round(seconds, 1),
        "ticks_per_s": round(result.ticks / seconds),
        "ticks_per_cpu_s": round(result.ticks / cpu),
        "rss_after_imports_mb": round(baseline, 1),
        "peak_rss_mb": round(peak, 1),
        "under_1_gib": peak < TARGET_MB,
    }
    print(table([row], list(row)))
    write_results(args.out, command_line(), {**row, "samples": samples})
    return 0


if __name__ == "__main__":
    sys.exit(main())
