"""``tickwise backtest``: the live pipeline in-process over recorded files, with no broker.

The runner only moves bytes: it hands each raw record to ``Pipeline.process`` -- the call the
live worker makes -- and writes every output in the JSON form it has on its topic, so
``decisions.jsonl`` can be compared line by line with the ``decisions`` topic. The report
(``equity.csv``, ``report.json``, ``report.html``) is built by an observer that watches the
pipeline and never changes what it decides.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tickwise.replay.collector import BacktestCollector
from tickwise.replay.report import ReportSettings
from tickwise.replay.warmup import warmup_commands
from tickwise.schemas.base import Contract
from tickwise.schemas.decisions import ControlCommand, Decision, HoldSummary, Signal
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import CleanTick, QuoteTick, SourceRef, TradeTick
from tickwise.schemas.topics import ALERTS, AUDIT, DECISIONS, FILLS, SIGNALS, TICKS_QUARANTINE
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.progress import PROGRESS_EVERY, Progress, utc_second
from tickwise.streams.sources import RawRecord

if TYPE_CHECKING:
    from tickwise.streams.pipeline import Decided, Output, Pipeline

# Topic -> file: each line exactly as the message is on that topic.
FILES = {
    DECISIONS.name: "decisions.jsonl",
    AUDIT.name: "audit.jsonl",
    SIGNALS.name: "signals.jsonl",
    TICKS_QUARANTINE.name: "quarantine.jsonl",
    FILLS.name: "fills.jsonl",
    ALERTS.name: "alerts.jsonl",
}
REPORT_FILES = ("summary.json", "equity.csv", "report.json", "report.html")


@dataclass
class BacktestResult:
    """Counts of what one run produced."""

    ticks: int = 0
    clean: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    signals: int = 0
    decisions: int = 0
    approved: int = 0
    holds_summarised: int = 0  # HOLDs published only inside the audit chain's hold summaries
    seconds: float = 0.0
    report: dict[str, object] = field(default_factory=dict)

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
        elif isinstance(message, HoldSummary):
            self.holds_summarised += message.holds

    def summary(self) -> dict[str, object]:
        return {
            "ticks": self.ticks,
            "clean": self.clean,
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "signals": self.signals,
            "decisions": self.decisions,
            "approved": self.approved,
            "holds_summarised": self.holds_summarised,
            "decided_ticks": self.decisions + self.holds_summarised,
            "seconds": round(self.seconds, 3),
            "ticks_per_second": round(self.ticks / self.seconds) if self.seconds else None,
        }


class RunView(Protocol):
    """What the progress bar reads of a report collector, per tick or columnar."""

    @property
    def last_ts_ns(self) -> int | None: ...

    @property
    def equity(self) -> float: ...


def progress_fields(result: BacktestResult, collector: RunView) -> dict[str, object]:
    """The progress bar's figures of a backtest, whichever runner."""
    return {
        "decisions": result.decisions,
        "event_time": utc_second(collector.last_ts_ns),
        "equity": f"{collector.equity:,.2f}",
    }


def write_summary(out: Path, result: BacktestResult) -> dict[str, object]:
    """Write ``summary.json``; return the run's figures the report carries (its speed apart)."""
    (out / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    return {k: v for k, v in result.summary().items() if k not in ("seconds", "ticks_per_second")}


class _ReportObserver:
    """Feeds the report collector around each decision; starts the warm-up at the first tick.

    The warm-up is a global kill switch with event times, an ordinary control command, so the
    decisions stay exactly those a live worker given the same command would take.
    """

    def __init__(self, pipeline: Pipeline, collector: BacktestCollector, warmup_ns: int) -> None:
        self.pipeline, self.collector, self.warmup_ns = pipeline, collector, warmup_ns

    def before_decide(self, tick: TradeTick | QuoteTick) -> None:
        if self.warmup_ns and self.collector.warmup_until_ns is None:
            self.collector.warmup_until_ns = tick.ts_event_ns + self.warmup_ns
            for command in warmup_commands(tick.ts_event_ns, self.warmup_ns):
                self.pipeline.on_control(command)
        self.collector.before_decide(tick)

    def after_decide(self, tick: TradeTick | QuoteTick, decided: Decided) -> None:
        self.collector.after_decide(tick, decided)


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

    ``controls`` are operator commands (kill switch, demotion, promotion); give them an
    ``effective_ts_event_ns`` (or load a live audit trail with ``replay.controls``) to replay
    them where live applied them. Input is consumed as a stream; ``equity.csv``,
    ``report.json`` and ``report.html`` are measured as ``settings`` says (``replay.collector``);
    ``warmup_ns`` of event time from the first tick trade nothing (``replay.warmup``).
    """
    from tickwise.streams.pipeline import Pipeline  # river's zoo, loaded only on this runner

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
        equity_csv = stack.enter_context(open(out / "equity.csv", "w", buffering=1 << 20))
        collector = BacktestCollector(pipeline, settings or ReportSettings(), equity_csv)
        pipeline.observer = _ReportObserver(pipeline, collector, warmup_ns)
        bar = stack.enter_context(Progress(progress, "backtest"))

        def write(output: Output) -> None:
            result.count(output.message)
            fh = files.get(output.topic.name)
            if fh is not None:
                fh.write(output.encoded() + b"\n")

        for rec in records:
            result.ticks += 1
            if result.ticks % PROGRESS_EVERY == 0:
                bar.update(result.ticks, **progress_fields(result, collector))
            source = SourceRef(topic=f"file:{rec.origin}", partition=0, offset=rec.index)
            for output in pipeline.process(rec.payload, source):
                write(output)
        for output in pipeline.finish():
            write(output)
        collector.finish()
        bar.close(result.ticks, **progress_fields(result, collector))
    result.seconds = time.perf_counter() - started
    result.report = collector.write(out, write_summary(out, result))
    return result
