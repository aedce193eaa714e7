"""Command-line options shared by ``tickwise feed``, ``backtest`` and ``model compare``."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from itertools import islice

from tickwise.streams.sources.files import read_file, sorted_by_event_time
from tickwise.streams.sources.generator import synthetic
from tickwise.streams.sources.records import ColumnMap, RawRecord


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the column-mapping and synthetic options; feed and backtest read files the same way."""
    add = parser.add_argument
    for name in ("time", "price", "size", "bid", "ask", "bid-size", "ask-size", "symbol"):
        add(f"--{name}-col", default=None, help=f"column holding the {name.replace('-', ' ')}")
    add("--symbol", default=None, help="fixed instrument for files without a symbol column")
    add(
        "--time-format",
        default="auto",
        help="auto (ISO 8601), epoch_s|epoch_ms|epoch_us|epoch_ns, or a strptime pattern",
    )
    add("--tz", default=None, help="zone of naive timestamps, e.g. UTC or America/Chicago")
    add("--sort", action="store_true", help="sort the files' records by event time first")
    add("--synthetic", action="store_true", help="generate a synthetic stream instead of a file")
    add("--seed", type=int, default=1, help="seed of the synthetic stream")
    add("--count", type=int, default=None, help="stop after this many records")
    add("--regime", default="calm", help="synthetic regime: calm, trending, volatile or gaps")
    add(
        "--bad-kinds",
        default=None,
        help="comma-separated reason codes to inject (default: the five every config catches)",
    )
    add(
        "--bad-rate",
        type=float,
        default=0.0,
        help="share of synthetic records replaced by bad ticks (to watch quarantine work)",
    )


def open_sources(args: argparse.Namespace, paths: Iterable[str]) -> Iterator[RawRecord]:
    """The records the options describe: the synthetic stream or the files, in order."""
    if args.synthetic:
        count = args.count if args.count is not None else 20_000
        kinds = args.bad_kinds.split(",") if args.bad_kinds else None
        return synthetic(
            args.seed, count, bad_rate=args.bad_rate, regime=args.regime, bad_kinds=kinds
        )
    columns = column_map(args)
    records: Iterator[RawRecord] = (rec for path in paths for rec in read_file(path, columns))
    if getattr(args, "sort", False):
        records = iter(sorted_by_event_time(records))
    return islice(records, args.count) if args.count is not None else records


def column_map(args: argparse.Namespace) -> ColumnMap:
    """Which columns of a file hold what, as the options say."""
    return ColumnMap(
        time_col=args.time_col,
        price_col=args.price_col,
        size_col=args.size_col,
        bid_col=args.bid_col,
        ask_col=args.ask_col,
        bid_size_col=args.bid_size_col,
        ask_size_col=args.ask_size_col,
        symbol_col=args.symbol_col,
        symbol=args.symbol,
        time_format=args.time_format,
        tz=args.tz,
    )
