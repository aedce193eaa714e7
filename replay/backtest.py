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
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from replay.controls import load_controls
from schemas.base import Contract
from schemas.decisions import ControlCommand, Decision, Signal
from schemas.quarantine import QuarantineRecord
from schemas.ticks import CleanTick, SourceRef
from schemas.topics import ALERTS, AUDIT, DECISIONS, FILLS, SIGNALS, TICKS_QUARANTINE
from streams.config import TickwiseConfig, load_config
from streams.pipeline import Output, Pipeline
from streams.sources import RawRecord, SourceError, add_source_arguments, open_sources

# Topic -> file: each line exactly as the message is on that topic.
FILES = {
    DECISIONS.name: "decisions.jsonl",
    AUDIT.name: "audit.jsonl",
    SIGNALS.name: "signals.jsonl",
    TICKS_QUARANTINE.name: "quarantine.jsonl",
    FILLS.name: "fills.jsonl",
    ALERTS.name: "alerts.jsonl",
}


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

    def count(self, message: Contract) -> None:
        """Tally one output of the pipeline."""
        if isinstance(message, CleanTick):
            self.clean += 1
        elif isinstance(message, QuarantineRecord):
            self.quarantined[message.reason.value] += 1
        elif isinstance(message, Signal):
            self.signals += 1
        elif isinstance(message, Decision):
            self.decisions += 1
            self.approved += message.approved

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
) -> BacktestResult:
    """Run every record through the shared pipeline and write the topic-shaped outputs.

    ``controls`` are operator commands (kill switch, demotion); give them an
    ``effective_ts_event_ns`` (or load a live audit trail with ``replay.controls``) to replay
    them where live applied them.
    """
    out.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline(config)
    for command in controls:
        pipeline.on_control(command)
    result = BacktestResult()
    started = time.perf_counter()
    with ExitStack() as stack:
        files = {
            topic: stack.enter_context(open(out / name, "wb")) for topic, name in FILES.items()
        }

        def write(output: Output) -> None:
            result.count(output.message)
            fh = files.get(output.topic.name)
            if fh is not None:
                fh.write(output.message.to_bytes() + b"\n")

        for rec in records:
            result.ticks += 1
            source = SourceRef(topic=f"file:{rec.origin}", partition=0, offset=rec.index)
            for output in pipeline.process(rec.payload, source):
                write(output)
        for output in pipeline.finish():
            write(output)
    result.seconds = time.perf_counter() - started
    (out / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    return result


def _run(args: argparse.Namespace) -> int:
    if not args.synthetic and not args.data:
        print("tickwise backtest: give --data PATH [PATH ...] or --synthetic", file=sys.stderr)
        return 2
    config = load_config(args.config)
    controls = load_controls(args.controls) if args.controls else []
    try:
        records = open_sources(args, args.data or [])
        result = run_backtest(records, config, Path(args.out), controls)
    except (SourceError, FileNotFoundError) as exc:
        print(f"tickwise backtest: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.summary(), indent=2))
    print(f"wrote {', '.join(FILES.values())} and summary.json to {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``backtest`` sub-command."""
    parser = subparsers.add_parser("backtest", help="run the pipeline in-process over files")
    parser.add_argument("--data", nargs="+", default=None, help="CSV, JSON Lines or Parquet files")
    parser.add_argument("--config", default=None, help="TOML config (shared with the worker)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--controls", default=None, help="JSONL of control commands, or a live audit.jsonl"
    )
    add_source_arguments(parser)
    parser.set_defaults(func=_run)
