"""``tickwise backtest``: the live pipeline in-process over recorded files, with no broker.

The runner only moves bytes: it feeds each raw record to ``Pipeline.validate`` and each clean
tick to ``Pipeline.decide``, exactly what the live agents do, and writes every output in the JSON
form it has on its topic. ``decisions.jsonl`` can therefore be compared line by line with the
``decisions`` topic.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from replay.collector import BacktestCollector
from replay.controls import load_controls
from replay.merge import merge_in_time
from replay.metrics import period_ns
from replay.progress import Progress
from replay.report import ReportSettings
from replay.warmup import warmup_commands
from schemas.decisions import ControlCommand
from schemas.quarantine import QuarantineRecord
from schemas.ticks import SourceRef
from streams.config import TickwiseConfig, load_config
from streams.pipeline import Pipeline
from streams.sources import RawRecord, SourceError, add_source_arguments, open_sources

OUTPUT_FILES = (
    "decisions.jsonl",
    "audit.jsonl",
    "signals.jsonl",
    "quarantine.jsonl",
    "fills.jsonl",
    "alerts.jsonl",
)


@dataclass
class BacktestResult:
    """Counts of what one run produced."""

    ticks: int = 0
    clean: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    signals: int = 0
    decisions: int = 0
    approved: int = 0
    seconds: float = 0.0
    report: dict[str, object] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        return {
            "ticks": self.ticks,
            "clean": self.clean,
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "signals": self.signals,
            "decisions": self.decisions,
            "approved": self.approved,
            "seconds": round(self.seconds, 3),
            "ticks_per_second": round(self.ticks / self.seconds) if self.seconds else None,
        }


def run_backtest(
    records: Iterable[RawRecord],
    config: TickwiseConfig,
    out: Path,
    controls: Iterable[ControlCommand] = (),
    settings: ReportSettings | None = None,
    progress: bool = False,
    warmup_ns: int = 0,
) -> BacktestResult:
    """Run every record through the shared pipeline and write the topic-shaped outputs.

    ``controls`` are operator commands (kill switch, demotion); give them an
    ``effective_ts_event_ns`` (or use ``replay_commands`` on a live audit trail) to replay them.
    Input is consumed as a stream; ``equity.csv``, ``report.json`` and ``report.html`` are
    measured as specified by ``settings`` (see ``replay.collector``); ``warmup_ns`` of event
    time from the first tick trade nothing (``replay.warmup``).
    """
    out.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline(config)
    for command in controls:
        pipeline.on_control(command)
    result = BacktestResult()
    started = time.perf_counter()
    with ExitStack() as stack:
        files = {name: stack.enter_context(open(out / name, "wb")) for name in OUTPUT_FILES}
        equity_csv = stack.enter_context(open(out / "equity.csv", "w", buffering=1 << 20))
        collector = BacktestCollector(pipeline, settings or ReportSettings(), equity_csv)
        bar = Progress(progress)
        decisions, audit = files["decisions.jsonl"], files["audit.jsonl"]
        signals, quarantine = files["signals.jsonl"], files["quarantine.jsonl"]

        def quarantined(record: QuarantineRecord) -> None:
            result.quarantined[record.reason.value] += 1
            quarantine.write(record.to_bytes() + b"\n")

        for rec in records:
            result.ticks += 1
            if result.ticks % 1024 == 0:
                bar.update(result.ticks, result.decisions, collector.last_ts_ns, collector.equity)
            verdict = pipeline.validate(
                rec.payload, SourceRef(topic=f"file:{rec.origin}", partition=0, offset=rec.index)
            )
            for alert in pipeline.observe_validation(verdict)[0]:
                files["alerts.jsonl"].write(alert.to_bytes() + b"\n")
            if isinstance(verdict, QuarantineRecord):
                quarantined(verdict)
                continue
            result.clean += 1
            if warmup_ns and collector.warmup_until_ns is None:
                collector.warmup_until_ns = verdict.tick.ts_event_ns + warmup_ns
                for command in warmup_commands(verdict.tick.ts_event_ns, warmup_ns):
                    pipeline.on_control(command)
            collector.before_decide(verdict.tick)
            decided = pipeline.decide(verdict)
            collector.after_decide(verdict.tick, decided)
            for fill in decided.fills:
                files["fills.jsonl"].write(fill.to_bytes() + b"\n")
            for alert in decided.alerts:
                files["alerts.jsonl"].write(alert.to_bytes() + b"\n")
            if decided.error is not None:
                quarantined(decided.error)
            if decided.signal is not None:
                result.signals += 1
                signals.write(decided.signal.to_bytes() + b"\n")
            if decided.decision is not None and decided.audit is not None:
                result.decisions += 1
                result.approved += decided.decision.approved
                decisions.write(decided.decision.to_bytes() + b"\n")
                audit.write(decided.audit.to_bytes() + b"\n")
        collector.finish()
        bar.close()
    result.seconds = time.perf_counter() - started
    (out / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    run = {k: v for k, v in result.summary().items() if k not in ("seconds", "ticks_per_second")}
    result.report = collector.write(out, run)
    return result


def _records(args: argparse.Namespace) -> Iterator[RawRecord]:
    """The input records; several files are merged in event time (see ``replay.merge``)."""
    if args.synthetic or len(args.data or []) <= 1:
        return open_sources(args, args.data or [])
    merged = merge_in_time([open_sources(args, [path]) for path in args.data])
    return islice(merged, args.count) if args.count is not None else merged


def _run(args: argparse.Namespace) -> int:
    if not args.synthetic and not args.data:
        print("tickwise backtest: give --data PATH [PATH ...] or --synthetic", file=sys.stderr)
        return 2
    config = load_config(args.config)
    controls = load_controls(args.controls) if args.controls else []
    try:
        settings = ReportSettings(
            returns_period=args.returns_period,
            periods_per_year=args.periods_per_year,
            walk_forward=args.walk_forward or None,
            seed=args.baseline_seed,
        )
        settings.ppy()  # refuse a bad returns period before reading any data
        progress = sys.stderr.isatty() if args.progress is None else args.progress
        result = run_backtest(
            _records(args),
            config,
            Path(args.out),
            controls,
            settings=settings,
            progress=progress,
            warmup_ns=period_ns(args.warmup) if args.warmup else 0,
        )
    except (SourceError, FileNotFoundError, ValueError) as exc:
        print(f"tickwise backtest: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.summary(), indent=2))
    headline = ("total_return", "sharpe", "max_drawdown", "n_trades", "hit_rate", "exposure")
    print(json.dumps({k: result.report.get(k) for k in headline}))
    print(
        f"wrote {', '.join(OUTPUT_FILES)}, equity.csv, report.json, report.html and "
        f"summary.json to {args.out}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``backtest`` sub-command."""
    parser = subparsers.add_parser("backtest", help="run the pipeline in-process over files")
    parser.add_argument("--data", nargs="+", default=None, help="CSV or CSV.gz files of ticks")
    parser.add_argument("--config", default=None, help="TOML config (shared with the worker)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--controls", default=None, help="JSONL of control commands, or a live audit.jsonl"
    )
    add_source_arguments(parser)
    report = parser.add_argument_group("report")
    report.add_argument(
        "--returns-period", default="1min", help="pandas offset alias for Sharpe/Sortino returns"
    )
    report.add_argument(
        "--periods-per-year",
        type=float,
        default=None,
        help="annualisation factor (default: periods in 365.25 days)",
    )
    report.add_argument(
        "--walk-forward", default="1D", help="segment length reported separately ('' for none)"
    )
    report.add_argument(
        "--warmup",
        default=None,
        help="event time from the first tick in which nothing trades, e.g. 2h (a kill switch)",
    )
    report.add_argument("--baseline-seed", type=int, default=0, help="seed of the random baseline")
    report.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    parser.set_defaults(func=_run)
