"""``tickwise backtest``: the options, the input as batches, and the engine's run over them
(``replay.engine``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np

from tickwise.replay.backtest import FILES, REPORT_FILES, BacktestResult
from tickwise.replay.controls import load_controls
from tickwise.replay.engine import record_batches, run_engine_backtest
from tickwise.replay.merge import merge_in_time
from tickwise.replay.metrics import period_ns
from tickwise.replay.report import ReportSettings
from tickwise.schemas.decisions import ControlCommand
from tickwise.streams.config import TickwiseConfig, load_config
from tickwise.streams.engine.batch import SymbolTable, TickBatch
from tickwise.streams.engine.heap import keep_batch_memory
from tickwise.streams.progress import wants_progress
from tickwise.streams.sources import RawRecord, SourceError, open_sources
from tickwise.streams.sources.batches import read_batches
from tickwise.streams.sources.options import column_map


def _records(args: argparse.Namespace) -> Iterator[RawRecord]:
    """The input records; several files are merged in event time (see ``replay.merge``)."""
    if args.synthetic or len(args.data or []) <= 1:
        return open_sources(args, args.data or [])
    merged = merge_in_time([open_sources(args, [path]) for path in args.data])
    return islice(merged, args.count) if args.count is not None else merged


def batch_source(
    args: argparse.Namespace, config: TickwiseConfig
) -> Callable[[SymbolTable], Iterator[TickBatch]]:
    """The input as batches against a symbol table: one file by blocks of columns, anything
    else (the synthetic feed, files merged in time, sorted or cut) by the bulk decoder."""
    max_bytes = config.validation.max_message_bytes
    one_file = not args.synthetic and len(args.data or []) == 1
    if one_file and not getattr(args, "sort", False):
        path, columns = args.data[0], column_map(args)
        return lambda symbols: first_rows(
            read_batches(path, columns, symbols, max_bytes), args.count
        )
    return lambda symbols: record_batches(_records(args), symbols, max_bytes)


def first_rows(batches: Iterable[TickBatch], count: int | None) -> Iterator[TickBatch]:
    """The first ``count`` rows of ``batches`` (all: None), as the same batches cut short.

    Why not ``--count`` by rows: a backtest of the first N rows should run the reader the
    whole file runs, so it measures and profiles what a full run does."""
    left = count
    for batch in batches:
        if left is not None and len(batch) >= left:
            if left:
                yield batch.take(np.arange(left)) if len(batch) > left else batch
            return
        if left is not None:
            left -= len(batch)
        yield batch


def backtest(
    args: argparse.Namespace,
    config: TickwiseConfig,
    controls: Iterable[ControlCommand],
    settings: ReportSettings,
) -> BacktestResult:
    """Run the backtest ``args`` asks for on the engine."""
    warmup_ns = period_ns(args.warmup) if args.warmup else 0
    return run_engine_backtest(
        batch_source(args, config),
        config,
        Path(args.out),
        list(controls),
        settings,
        wants_progress(args),
        warmup_ns,
    )


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise backtest`` and return the exit code."""
    if not args.synthetic and not args.data:
        print("tickwise backtest: give --data PATH [PATH ...] or --synthetic", file=sys.stderr)
        return 2
    config = load_config(args.config)
    controls = load_controls(args.controls) if args.controls else []
    keep_batch_memory()
    try:
        settings = ReportSettings(
            returns_period=args.returns_period,
            periods_per_year=args.periods_per_year,
            calendar=args.calendar,
            walk_forward=args.walk_forward or None,
            seed=args.baseline_seed,
        )
        settings.ppy()  # refuse a bad returns period before reading any data
        result = backtest(args, config, controls, settings)
    except (SourceError, FileNotFoundError, ValueError) as exc:
        print(f"tickwise backtest: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.summary(), indent=2))
    headline = ("total_return", "sharpe", "max_drawdown", "n_trades", "hit_rate", "exposure")
    print(json.dumps({k: result.report.get(k) for k in headline}))
    print(f"wrote {', '.join((*FILES.values(), *REPORT_FILES))} to {args.out}")
    return 0
