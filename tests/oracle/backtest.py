"""``tickwise backtest`` one tick at a time through ``Pipeline``: the runner
``replay.engine.run_backtest`` is held to, file by file and byte for byte.

It hands each raw record to ``Pipeline.process`` and writes every output in the JSON form it
has on its topic. The report is built by an observer that watches the pipeline and never
changes what it decides.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

from tests.oracle.collector import BacktestCollector
from tests.oracle.pipeline import Decided, Pipeline
from tickwise.replay.backtest import FILES, BacktestResult, progress_fields, write_summary
from tickwise.replay.report import ReportSettings
from tickwise.replay.warmup import warmup_commands
from tickwise.schemas.base import Contract
from tickwise.schemas.decisions import ControlCommand, Decision, HoldSummary, Signal
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import CleanTick, QuoteTick, SourceRef, TradeTick
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.live.state import Output
from tickwise.streams.progress import PROGRESS_EVERY, Progress
from tickwise.streams.sources import RawRecord


def count(result: BacktestResult, message: Contract | None) -> None:
    """Tally one output of the pipeline into ``result``."""
    if isinstance(message, CleanTick):
        result.clean += 1
    elif isinstance(message, QuarantineRecord):
        result.quarantined[message.reason.value] += 1
    elif isinstance(message, Signal):
        result.signals += 1
    elif isinstance(message, Decision):
        result.decisions += 1
        result.approved += message.approved
    elif isinstance(message, HoldSummary):
        result.holds_summarised += message.holds


class ReportObserver:
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


def run_per_tick_backtest(
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
        pipeline.observer = ReportObserver(pipeline, collector, warmup_ns)
        bar = stack.enter_context(Progress(progress, "backtest"))

        def write(output: Output) -> None:
            count(result, output.message)
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
