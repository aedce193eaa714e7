"""The per-tick report collector: ``equity.csv`` and the report's figures from ``Pipeline``'s
decisions, one tick at a time; ``replay.columnar`` is held to it byte for byte.

It only reads what the pipeline produced (fills, decisions, signals, the paper accounts of
``streams.operators.execution``); it never changes a decision. Account equity for the report is
one initial capital plus the net P&L of every instrument's paper account.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any, TextIO

from tests.oracle.pipeline import Decided, Pipeline
from tickwise.replay.baselines import Baselines
from tickwise.replay.collector import (
    MAX_PLOTTED_INSTRUMENTS,
    SCORE_BINS,
    report_content,
    write_report,
)
from tickwise.replay.prequential import Outcome, SignalOutcomes
from tickwise.replay.report import Decimator, EquityWriter, ReportSettings, SegmentedCurve
from tickwise.schemas.ticks import QuoteTick, TradeTick


class BacktestCollector:
    """Streams equity to ``equity.csv`` and keeps the report's figures and plots, bounded."""

    def __init__(self, pipeline: Pipeline, settings: ReportSettings, equity_csv: TextIO) -> None:
        config = pipeline.config
        self.pipeline = pipeline
        self.settings = settings
        self.capital = config.execution.initial_cash
        self.curve = SegmentedCurve(settings, self.capital, config.execution.multiplier)
        self.baselines = Baselines(config, settings)
        self.outcomes = SignalOutcomes(config.label)
        self.writer = EquityWriter(equity_csv)
        n = settings.plot_points
        self.plots = {"equity": Decimator(n), "drawdown": Decimator(n), "accuracy": Decimator(n)}
        self.positions: dict[str, Decimator] = {}
        self.score_counts = [0] * SCORE_BINS
        self._window: deque[bool] = deque(maxlen=settings.accuracy_window)
        self._window_correct = 0
        self._pnl: dict[str, float] = {}
        self._pos: dict[str, float] = {}
        self._marks: dict[str, float] = {}
        self._last_equity: tuple[float, bool] | None = None
        self.warmup_end_ns: int | None = None
        self.warmup_until_ns: int | None = None  # set by an event-time warm-up (replay.warmup)
        self.ticks_in_warmup = 0
        self.last_ts_ns: int | None = None
        self.instruments: set[str] = set()
        self.late_ticks = 0

    def before_decide(self, tick: TradeTick | QuoteTick) -> None:
        """Resolve signal outcomes and move the baselines with this tick's prices."""
        # the account's clock never goes back: inputs that interleave instruments slightly out
        # of order (within the validator's tolerance) are marked at the latest time seen
        if self.last_ts_ns is not None and tick.ts_event_ns < self.last_ts_ns:
            self.late_ticks += 1
        else:
            self.last_ts_ns = tick.ts_event_ns
        self.instruments.add(tick.instrument)
        if self.warmup_end_ns is None:
            self.ticks_in_warmup += 1
        self.baselines.on_tick(tick, self.last_ts_ns)
        for outcome in self.outcomes.on_price(
            tick.instrument, tick.ts_event_ns, tick.reference_price
        ):
            self._on_outcome(outcome)

    def after_decide(self, tick: TradeTick | QuoteTick, decided: Decided) -> None:
        """Count the tick's fills, signal and decision, then record the equity if it changed."""
        signal, decision = decided.signal, decided.decision
        if (
            decision is not None
            and self.warmup_end_ns is None
            and (self.warmup_until_ns is None or decision.ts_event_ns >= self.warmup_until_ns)
        ):
            self.warmup_end_ns = decision.ts_event_ns
        started = self.warmup_end_ns is not None
        for fill in decided.fills:
            before = self._pos.get(fill.instrument, 0.0)
            self._pos[fill.instrument] = fill.position_after
            if started:
                self.curve.on_fill(fill, before)
        # the score histogram and the outcome figures read the score as P(up): classifiers only
        # (a regressor's score is a forward return; its figures are the model stage's own)
        if signal is not None and signal.task == "classification":
            self.score_counts[min(max(int(signal.score * SCORE_BINS), 0), SCORE_BINS - 1)] += 1
            price = decided.features.price if decided.features else tick.reference_price
            self.outcomes.on_signal(tick.instrument, tick.ts_event_ns, price, signal.score)
        if decision is not None and started:
            self.baselines.on_decision(decision, decided.order is not None)
        if started:
            self._record(tick, decided)

    def _record(self, tick: TradeTick | QuoteTick, decided: Decided) -> None:
        inst = tick.instrument
        mark = tick.reference_price
        if not decided.fills and self._marks.get(inst) == mark and inst in self._pnl:
            return  # neither a fill nor a new mark: the account cannot have changed
        self._marks[inst] = mark
        # the snapshot taken after this tick's decision, else a fresh one (same equity)
        account = decided.account or self.pipeline.execution.account(inst)
        self._pnl[inst] = account.equity - self.capital
        total = 0.0  # left to right, as the report's kernel adds (sum() compensates from 3.12)
        for pnl in self._pnl.values():
            total += pnl
        equity = self.capital + total
        holding = any(p != 0.0 for p in self._pos.values())
        if self._last_equity == (equity, holding):
            return
        now = self.last_ts_ns if self.last_ts_ns is not None else tick.ts_event_ns
        self._point(now, equity, holding)
        if inst in self.positions or len(self.positions) < MAX_PLOTTED_INSTRUMENTS:
            self.positions.setdefault(inst, Decimator(self.settings.plot_points)).add(
                now, self._pos.get(inst, 0.0)
            )

    @property
    def equity(self) -> float:
        """Equity at the last recorded change (the initial capital before the first)."""
        return self._last_equity[0] if self._last_equity is not None else self.capital

    def _point(self, ts_ns: int, equity: float, holding: bool) -> None:
        self._last_equity = (equity, holding)
        self.writer.write(ts_ns, equity)
        drawdown = self.curve.on_equity(ts_ns, equity, holding)
        self.plots["equity"].add(ts_ns, equity)
        self.plots["drawdown"].add(ts_ns, drawdown)

    def _on_outcome(self, outcome: Outcome) -> None:
        if self.warmup_end_ns is None or outcome.ts_signal_ns < self.warmup_end_ns:
            return  # the report measures from the end of warm-up, accuracy included
        self.curve.on_outcome(outcome)
        if len(self._window) == self._window.maxlen:
            self._window_correct -= self._window[0]
        self._window.append(outcome.correct)
        self._window_correct += outcome.correct
        self.plots["accuracy"].add(outcome.ts_resolved_ns, self._window_correct / len(self._window))

    def finish(self) -> None:
        """Close the curve at the last tick's event time (equity unchanged since its last row)."""
        if self.last_ts_ns is not None:
            self.baselines.finish(self.last_ts_ns)
        last = self.curve.whole.end_ns
        if self._last_equity is not None and self.last_ts_ns is not None and last is not None:
            if self.last_ts_ns == last:
                return
            equity, holding = self._last_equity
            self._point(self.last_ts_ns, equity, holding)

    def report(self, run_summary: dict[str, Any]) -> dict[str, Any]:
        """The content of ``report.json``."""
        monitor = getattr(self.pipeline, "monitor", None)
        model_metrics = getattr(self.pipeline.model, "metrics", None)
        return report_content(
            self.pipeline.config,
            self.settings,
            run_summary,
            whole=self.curve.whole.figures(),
            segments=self.curve.segments(),
            baselines=self.baselines.figures(),
            score_counts=self.score_counts,
            instruments=self.instruments,
            warmup=(self.warmup_end_ns, self.warmup_until_ns, self.ticks_in_warmup),
            late_ticks=self.late_ticks,
            model_metrics=model_metrics if callable(model_metrics) else None,
            monitor_stats=monitor.stats if monitor is not None else None,
        )

    def write(self, out: Path, run_summary: dict[str, Any]) -> dict[str, Any]:
        """Write ``report.json`` and ``report.html`` into ``out``; return the report."""
        report = self.report(run_summary)
        write_report(out, report, self.plots, self.positions, self.baselines.plots)
        return report
