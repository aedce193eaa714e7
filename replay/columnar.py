"""The backtest's report collector over columns, for the columnar engine.

``ColumnarCollector`` takes, per batch, what the decide stage did on each row as columns
(``DecidedColumns``) and writes the same ``equity.csv``, ``report.json`` and ``report.html``
as the tests' per-tick ``BacktestCollector`` (``tests/oracle``) fed the same ticks one by
one, byte for byte. The sequential part (the clock, curves and walk-forward segments, round
trips, signal outcomes and the rolling accuracy, both baselines' paper brokers and the random
baseline's draws) runs in the kernels of ``replay.columnar_nb``; the file writing, plots and
histogram are numpy over the batch.

Input layout (``DecidedColumns``), one row per tick of the batch in the order decided:

=============== ======= ===============================================================
column          dtype   meaning
=============== ======= ===============================================================
instrument      int64   index into the run's ``SymbolTable`` (``TickBatch.instrument``)
kind            uint8   ``KIND_TRADE`` or ``KIND_QUOTE`` (``TickBatch.kind``)
ts              int64   event time, ns (``TickBatch.ts``)
price           float64 reference price: the trade price, or the quote's mid
bid, ask        float64 the quote's touch, NaN on trades (the baselines fill at them)
clean           bool    the row was decided; False rows (quarantined) are skipped
signal          bool    a classification signal went to risk on the row
score           float64 that signal's score, P(up) (read only where ``signal``)
signal_price    float64 the feature vector's price the signal was scored at
decision        bool    a decision (HOLD included) was taken on the row
order           bool    the decision sent an order to the paper broker
equity          float64 the row's instrument's paper-account equity after the row
=============== ======= ===============================================================

``fills`` is ``streams.engine.execution.FillColumns``: the fills of the batch in the order
they happened, ``row`` ascending (the row each filled on, before that row's decision);
``quantity``, ``price``, ``fee``, ``position_after`` and ``realized_pnl_after`` are read (a
fill's instrument, event time and reference price are its row's).

The random baseline draws from ``random.Random(seed)``: its 32-bit outputs are generated in
Python in blocks and consumed by the kernel, which stops for the next block when fewer than a
decision's worth remain, so the draws are those of the per-tick ``Baselines`` and the state
after a stream is the same whatever its split into batches.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from tickwise.replay import columnar_nb as nb
from tickwise.replay.baselines import FEEDBACK_DECISIONS, NAMES
from tickwise.replay.collector import (
    MAX_PLOTTED_INSTRUMENTS,
    SCORE_BINS,
    report_content,
    write_report,
)
from tickwise.replay.metrics import Resampler, period_ns
from tickwise.replay.report import (
    CurveAccumulator,
    Decimator,
    EquityWriter,
    ReportSettings,
    SegmentedCurve,
)
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.engine.batch import KIND_TRADE, SymbolTable
from tickwise.streams.engine.execution import BatchExecution, FillColumns
from tickwise.streams.operators.labels import horizon_ns

WORDS_BLOCK = 1 << 16  # 32-bit outputs of the random baseline's generator drawn at a time (256 KiB)


@dataclass(frozen=True, slots=True)
class DecidedColumns:
    """What the decide stage did on each row of a batch (layout in the module docstring)."""

    instrument: np.ndarray
    kind: np.ndarray
    ts: np.ndarray
    price: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    clean: np.ndarray
    signal: np.ndarray
    score: np.ndarray
    signal_price: np.ndarray
    decision: np.ndarray
    order: np.ndarray
    equity: np.ndarray
    fills: FillColumns

    def __len__(self) -> int:
        return len(self.ts)


def _grown(a: np.ndarray, n: int, axis: int = 0, fill: float = 0) -> np.ndarray:
    """``a`` with room for ``n`` along ``axis``, the new part ``fill``."""
    extra = n - a.shape[axis]
    if extra <= 0:
        return a
    shape = list(a.shape)
    shape[axis] = extra
    return np.concatenate([a, np.full(shape, fill, a.dtype)], axis=axis)


class ColumnarCollector:
    """Streams equity to ``equity.csv`` and keeps the report's figures, over batches."""

    # per-instrument arrays: (name, axis of the instrument)
    _PER_INSTRUMENT = (
        ("pos", 0), ("pnl", 0), ("mark", 0), ("has_mark", 0), ("has_pnl", 0), ("pnl_order", 0),
        ("bpnl", 1), ("bhas", 1), ("border", 1), ("bmark", 0), ("bhas_mark", 0), ("bought", 0),
        ("q_ts", 0), ("q_px", 0), ("q_sc", 0), ("q_head", 0), ("q_len", 0), ("last_px", 0),
        ("has_last_px", 0), ("tr", 1),
    )  # fmt: skip

    def __init__(
        self,
        config: TickwiseConfig,
        settings: ReportSettings,
        equity_csv: TextIO,
        symbols: SymbolTable,
        warmup_ns: int = 0,
    ) -> None:
        self.config, self.settings, self.symbols = config, settings, symbols
        ex = config.execution
        self.capital = ex.initial_cash
        # both baselines' paper brokers in one set of account arrays: row 2k + b
        self.brokers = BatchExecution(ex, SymbolTable())
        wf = period_ns(settings.walk_forward) if settings.walk_forward else 0
        self.p = np.array(
            [
                horizon_ns(config.label.horizon_s),
                period_ns(settings.returns_period),
                wf,
                self.brokers.latency_ns,
                self.brokers.day_offset_ns,
                warmup_ns,
            ],
            np.int64,
        )
        self.pf = np.array(
            [
                self.capital,
                ex.multiplier,
                config.risk.target_size,
                config.label.dead_zone_bps,
                float(FEEDBACK_DECISIONS),
            ]
        )
        self.g = np.zeros(nb.N_G, np.int64)
        self.gf = np.zeros(nb.N_GF)
        self.cf = np.zeros((nb.N_CURVES, nb.N_CF))
        self.ci = np.zeros((nb.N_CURVES, nb.N_CI), np.int64)
        self.tr = np.zeros((nb.N_CURVES, 0, 2))
        for c in range(nb.N_CURVES):
            nb.fresh_curve(self.cf, self.ci, self.tr, c)
        self.rv = np.zeros((nb.N_CURVES, 64))
        self.rc = np.zeros((nb.N_CURVES, 64), np.int64)
        self.kf = np.zeros((4, nb.N_CF))
        self.ki = np.zeros((4, nb.N_CI), np.int64)
        self.kseg = np.zeros(4, np.int64)
        self.koff = np.zeros(4, np.int64)
        self.kv = np.zeros(64)
        self.kc = np.zeros(64, np.int64)
        self.pos, self.pnl, self.mark = np.zeros(0), np.zeros(0), np.zeros(0)
        self.has_mark, self.has_pnl = np.zeros(0, np.bool_), np.zeros(0, np.bool_)
        self.pnl_order = np.zeros(0, np.int64)
        self.bpnl, self.bhas = np.zeros((2, 0)), np.zeros((2, 0), np.bool_)
        self.border, self.bcount = np.zeros((2, 0), np.int64), np.zeros(2, np.int64)
        self.bmark, self.bhas_mark = np.zeros(0), np.zeros(0, np.bool_)
        self.bought = np.zeros(0, np.bool_)
        self.q_ts = np.zeros((0, 16), np.int64)
        self.q_px, self.q_sc = np.zeros((0, 16)), np.zeros((0, 16))
        self.q_head, self.q_len = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self.last_px, self.has_last_px = np.zeros(0), np.zeros(0, np.bool_)
        self.win = np.zeros(settings.accuracy_window, np.bool_)
        self._rng = random.Random(settings.seed)
        self.words = np.zeros(0, np.uint32)
        self._refill()
        self._scratch()
        self.writer = EquityWriter(equity_csv)
        n = settings.plot_points
        self.plots = {"equity": Decimator(n), "drawdown": Decimator(n), "accuracy": Decimator(n)}
        self.positions: dict[str, Decimator] = {}
        self.baseline_plots = {name: Decimator(n) for name in NAMES}
        self.score_counts = np.zeros(SCORE_BINS, np.int64)
        self.seen = np.zeros(0, np.bool_)

    # --- growth -----------------------------------------------------------------------------

    def _refill(self) -> None:
        """The next block of the generator's 32-bit outputs after the unused ones."""
        block = self._rng.getrandbits(32 * WORDS_BLOCK).to_bytes(4 * WORDS_BLOCK, "little")
        rest = self.words[self.g[nb.WORD] : self.g[nb.N_WORDS]]
        self.words = np.concatenate([rest, np.frombuffer(block, "<u4").astype(np.uint32)])
        self.g[nb.WORD], self.g[nb.N_WORDS] = 0, self.words.size

    def _scratch(self) -> None:
        """Fill columns for one broker's fills on one row (at most its pending orders)."""
        cap = self.brokers.state.o_due.shape[1]
        self.scratch = FillColumns(
            np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap), np.empty(cap),
            np.empty(cap), np.empty(cap, np.bool_), np.empty(cap), np.empty(cap), np.empty(cap),
        )  # fmt: skip

    def _instruments(self, n: int) -> None:
        if self.pos.size >= n:
            return
        for name, axis in self._PER_INSTRUMENT:
            setattr(self, name, _grown(getattr(self, name), n, axis))
        self.seen = _grown(self.seen, n)
        self.brokers.state.grow(2 * n)

    def _widen_signals(self) -> None:
        cap = self.q_ts.shape[1]
        order = (self.q_head[:, None] + np.arange(cap)[None, :]) % cap
        rows = np.arange(order.shape[0])[:, None]
        for name in ("q_ts", "q_px", "q_sc"):
            setattr(self, name, _grown(getattr(self, name)[rows, order], 2 * cap, 1))
        self.q_head[:] = 0

    def _room(self) -> None:
        """Room for a row's runs and a segment's close (what ``finish`` may append)."""
        runs = int(self.ci[:, nb.RS_N].max()) + nb.RUNS_PER_ROW
        if runs > self.rv.shape[1]:
            self.rv = _grown(self.rv, 2 * runs, 1)
            self.rc = _grown(self.rc, 2 * runs, 1)
        closed = int(self.g[nb.CLOSED_RUNS]) + max(int(self.ci[nb.SEGMENT, nb.RS_N]), 0)
        if closed + nb.RUNS_PER_ROW > self.kv.size:
            self.kv = _grown(self.kv, 2 * (closed + nb.RUNS_PER_ROW))
            self.kc = _grown(self.kc, self.kv.size)
        if self.g[nb.N_CLOSED] + 2 > self.kf.shape[0]:
            size = 2 * self.kf.shape[0]
            self.kf, self.ki = _grown(self.kf, size), _grown(self.ki, size)
            self.kseg, self.koff = _grown(self.kseg, size), _grown(self.koff, size)

    # --- batches ----------------------------------------------------------------------------

    def on_batch(self, cols: DecidedColumns) -> None:
        """Take one batch's decided rows and fills, in order."""
        self._instruments(len(self.symbols))
        clean = np.ascontiguousarray(cols.clean, np.bool_)
        inst = np.ascontiguousarray(cols.instrument, np.int64)
        ts = np.ascontiguousarray(cols.ts, np.int64)
        signal = np.ascontiguousarray(cols.signal, np.bool_) & clean
        n = len(ts)
        f = cols.fills
        n_acc = int(self.q_len.sum()) + int(np.count_nonzero(signal))
        e_ts, e_val, e_dd = np.empty(n + 1, np.int64), np.empty(n + 1), np.empty(n + 1)
        e_inst, e_pos = np.empty(n + 1, np.int64), np.empty(n + 1)
        a_ts, a_val = np.empty(n_acc, np.int64), np.empty(n_acc)
        b_ts, b_val = np.empty((2, n + 1), np.int64), np.empty((2, n + 1))
        counts = np.zeros(4, np.int64)
        columns = (
            clean, ts, inst, np.ascontiguousarray(cols.price, np.float64),
            np.ascontiguousarray(cols.kind) == KIND_TRADE,
            np.ascontiguousarray(cols.bid, np.float64), np.ascontiguousarray(cols.ask, np.float64),
            signal, np.ascontiguousarray(cols.score, np.float64),
            np.ascontiguousarray(cols.signal_price, np.float64),
            np.ascontiguousarray(cols.decision, np.bool_),
            np.ascontiguousarray(cols.order, np.bool_),
            np.ascontiguousarray(cols.equity, np.float64),
            np.ascontiguousarray(f.row, np.int64), np.ascontiguousarray(f.quantity, np.float64),
            np.ascontiguousarray(f.price, np.float64), np.ascontiguousarray(f.fee, np.float64),
            np.ascontiguousarray(f.position_after, np.float64),
            np.ascontiguousarray(f.realized_pnl_after, np.float64),
        )  # fmt: skip
        row = fill = 0
        while True:
            self._room()
            row, fill, why = nb.rows(*columns, row, fill, *self._state(), e_ts, e_val, e_dd,
                                     e_inst, e_pos, a_ts, a_val, b_ts, b_val, counts)  # fmt: skip
            if row < 0:
                break
            self._grow(why)
        if fill != f.row.size:
            raise ValueError(f"fills name rows that are not clean rows of the batch: {f.row}")
        self._outputs(e_ts, e_val, e_dd, e_inst, e_pos, counts[0])
        self.plots["accuracy"].extend(a_ts[: counts[1]], a_val[: counts[1]])
        for b, name in enumerate(NAMES):
            self.baseline_plots[name].extend(b_ts[b, : counts[2 + b]], b_val[b, : counts[2 + b]])
        scores = np.asarray(cols.score, np.float64)[signal]
        bins = np.clip((scores * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)
        self.score_counts += np.bincount(bins, minlength=SCORE_BINS)
        self.seen[inst[clean]] = True

    def _state(self) -> tuple[np.ndarray, ...]:
        x, s = self.brokers.state, self.scratch
        return (
            self.p, self.pf, self.brokers.cfg, self.g, self.gf, self.cf, self.ci, self.rv,
            self.rc, self.tr, self.kf, self.ki, self.kseg, self.koff, self.kv, self.kc,
            self.pos, self.pnl, self.mark, self.has_mark, self.has_pnl, self.pnl_order,
            self.bpnl, self.bhas, self.border, self.bcount, self.bmark, self.bhas_mark,
            self.bought, x.started, x.acct, x.ts, x.day, x.n_fills, x.o_due, x.o_ts, x.o_buy,
            x.o_qty, x.o_id, x.o_head, x.o_len, s.row, s.order_id, s.price, s.fee, s.quantity,
            s.buy, s.position_after, s.cash_after, s.realized_pnl_after, np.zeros(1, np.int64),
            self.q_ts, self.q_px, self.q_sc, self.q_head, self.q_len, self.last_px,
            self.has_last_px, self.win, self.words,
        )  # fmt: skip

    def _grow(self, why: int) -> None:
        if why == nb.NEED_SIGNALS:
            self._widen_signals()
        elif why == nb.NEED_ORDERS:
            self.brokers.state.widen()
            self._scratch()
        elif why == nb.NEED_WORDS:
            self._refill()
        elif why == nb.BACKWARDS:
            raise ValueError("equity timestamps went backwards")
        elif why == nb.NO_WORDS:  # 128 rejections in a row: probability 2^-128
            raise RuntimeError("the random baseline ran out of drawn words within one decision")
        # NEED_RUNS and NEED_CLOSED: ``_room`` before the next call

    def _outputs(self, ts, val, dd, inst, pos, n) -> None:
        """equity.csv, the equity and drawdown plots and the position plots, in bulk."""
        ts, val, dd, inst, pos = ts[:n], val[:n], dd[:n], inst[:n], pos[:n]
        self.writer.write_many(ts, val)
        self.plots["equity"].extend(ts, val)
        self.plots["drawdown"].extend(ts, dd)
        names = self.symbols.names
        firsts = np.unique(inst[inst >= 0], return_index=True)
        for k in firsts[0][np.argsort(firsts[1])].tolist():  # in order of first appearance
            name = names[k]
            if name in self.positions or len(self.positions) < MAX_PLOTTED_INSTRUMENTS:
                plot = self.positions.setdefault(name, Decimator(self.settings.plot_points))
                mine = inst == k
                plot.extend(ts[mine], pos[mine])

    def finish(self) -> None:
        """Close the curves at the last tick's event time (equity unchanged since)."""
        self._room()
        e_ts, e_val, e_dd = np.empty(1, np.int64), np.empty(1), np.empty(1)
        e_inst, counts = np.empty(1, np.int64), np.zeros(4, np.int64)
        done = nb.finish(
            self.g, self.gf, self.p, self.cf, self.ci, self.rv, self.rc, self.tr, self.kf,
            self.ki, self.kseg, self.koff, self.kv, self.kc, e_ts, e_val, e_dd, e_inst, counts,
        )  # fmt: skip
        if not done:
            raise ValueError("equity timestamps went backwards")
        self._outputs(e_ts, e_val, e_dd, e_inst, np.zeros(1), counts[0])

    # --- figures ----------------------------------------------------------------------------

    @property
    def last_ts_ns(self) -> int | None:
        return int(self.g[nb.LAST_TS]) if self.g[nb.HAS_LAST_TS] else None

    @property
    def equity(self) -> float:
        """Equity at the last recorded change (the initial capital before the first)."""
        return float(self.gf[nb.EQ_LAST]) if self.g[nb.HAS_EQ] else self.capital

    def _curve(self, f: np.ndarray, i: np.ndarray, v: np.ndarray, c: np.ndarray) -> Any:
        """The ``CurveAccumulator`` a per-tick run holds in this state."""
        acc = CurveAccumulator(self.settings, self.capital, self.config.execution.multiplier)
        if i[nb.ON]:
            acc.start_ns, acc.end_ns = int(i[nb.START_NS]), int(i[nb.END_NS])
        acc.first, acc.last = float(f[nb.FIRST]), float(f[nb.LAST])
        acc.n_points, acc.n_trades = int(i[nb.N_POINTS]), int(i[nb.N_TRADES])
        acc.traded_units, acc.traded_notional = float(f[nb.UNITS]), float(f[nb.NOTIONAL])
        acc.fees, acc.slippage = float(f[nb.FEES]), float(f[nb.SLIPPAGE])
        acc.wins, acc.round_trips = int(i[nb.WINS]), int(i[nb.ROUND_TRIPS])
        acc.held_ns, acc.outcomes = int(i[nb.HELD_NS]), int(i[nb.OUTCOMES])
        acc.correct, acc.log_loss = int(i[nb.CORRECT]), float(f[nb.LOG_LOSS])
        acc.holding = bool(i[nb.HOLDING])
        acc._drawdown.peak, acc._drawdown.max_drawdown = float(f[nb.PEAK]), float(f[nb.MAX_DD])
        if i[nb.RS_N] >= 0:
            r = Resampler(int(self.p[nb.RET_PERIOD]))
            r._origin, r._bucket = int(i[nb.RS_ORIGIN]), int(i[nb.RS_BUCKET])
            r._closed = np.repeat(v, c).tolist()
            r._last = float(f[nb.RS_LAST])
            acc._resampler = r
        return acc

    def _live(self, c: int) -> CurveAccumulator:
        n = max(int(self.ci[c, nb.RS_N]), 0)
        return self._curve(self.cf[c], self.ci[c], self.rv[c, :n], self.rc[c, :n])

    def segments(self) -> list[dict[str, Any]]:
        curve = SegmentedCurve(self.settings, self.capital, self.config.execution.multiplier)
        for s in range(int(self.g[nb.N_CLOSED])):
            lo = int(self.koff[s])
            hi = lo + max(int(self.ki[s, nb.RS_N]), 0)
            acc = self._curve(self.kf[s], self.ki[s], self.kv[lo:hi], self.kc[lo:hi])
            curve.closed.append({"segment": int(self.kseg[s]), **acc.figures()})
        if self.g[nb.SEG_HAS_INDEX]:
            curve._segment, curve._index = self._live(nb.SEGMENT), int(self.g[nb.SEG_INDEX])
        return curve.segments()

    def report(
        self,
        run_summary: dict[str, Any],
        model_metrics: Any = None,
        monitor_stats: Any = None,
    ) -> dict[str, Any]:
        """The content of ``report.json``; ``model_metrics`` and ``monitor_stats``: callables
        of an instrument name giving the model stage's and the monitor's figures, if any."""
        g = self.g
        return report_content(
            self.config,
            self.settings,
            run_summary,
            whole=self._live(nb.WHOLE).figures(),
            segments=self.segments(),
            baselines={
                name: self._live(c).figures()
                for name, c in zip(NAMES, (nb.BUY_AND_HOLD, nb.RANDOM), strict=True)
            },
            score_counts=self.score_counts.tolist(),
            instruments=[self.symbols.names[k] for k in np.flatnonzero(self.seen)],
            warmup=(
                int(g[nb.WARM_END]) if g[nb.WARM_SET] else None,
                int(g[nb.UNTIL]) if g[nb.UNTIL_SET] else None,
                int(g[nb.WARM_TICKS]),
            ),
            late_ticks=int(g[nb.LATE]),
            model_metrics=model_metrics,
            monitor_stats=monitor_stats,
        )

    def write(
        self,
        out: Path,
        run_summary: dict[str, Any],
        model_metrics: Any = None,
        monitor_stats: Any = None,
    ) -> dict[str, Any]:
        """Write ``report.json`` and ``report.html`` into ``out``; return the report."""
        report = self.report(run_summary, model_metrics, monitor_stats)
        write_report(out, report, self.plots, self.positions, self.baseline_plots)
        return report

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every array of the state that outlives a batch (what invariance compares)."""
        x = self.brokers.state
        out = {name: getattr(self, name) for name, _ in self._PER_INSTRUMENT}
        out |= {name: getattr(x, name) for name in x.__slots__}
        for name in ("g", "gf", "cf", "ci", "rv", "rc", "kf", "ki", "kseg", "koff", "kv", "kc",
                     "bcount", "win", "words", "score_counts", "seen"):  # fmt: skip
            out[name] = getattr(self, name)
        return out
