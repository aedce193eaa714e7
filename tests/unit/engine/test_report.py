"""The columnar report collector against ``BacktestCollector`` (the oracle), byte for byte,
and its batch invariance.

The oracle run drives the per-tick ``Pipeline`` with the real collector and records what each
tick's ``Decided`` held as the columns the decide kernel will render; the columnar collector
fed those columns must write the same ``equity.csv``, ``report.json`` and ``report.html``.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice, pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stubs import ES_TRADES, fast_config, threshold_rule

from tests.oracle.backtest import ReportObserver
from tests.oracle.collector import BacktestCollector
from tests.oracle.pipeline import Decided, Pipeline
from tickwise.replay.columnar import ColumnarCollector, DecidedColumns
from tickwise.replay.report import ReportSettings
from tickwise.schemas.ticks import QuoteTick, SourceRef, TradeTick
from tickwise.streams.config import ExecutionConfig, TickwiseConfig
from tickwise.streams.engine.batch import KIND_QUOTE, KIND_TRADE, SymbolTable
from tickwise.streams.engine.execution import FillColumns
from tickwise.streams.sources import ColumnMap, RawRecord, read_csv, synthetic

RUN = {"ticks": 0, "note": "the same summary for both collectors"}
ROW_COLUMNS = ("instrument", "kind", "ts", "price", "bid", "ask", "signal", "score",
               "signal_price", "decision", "order", "equity")  # fmt: skip
FILL_COLUMNS = ("quantity", "price", "fee", "position_after", "realized_pnl_after")


@dataclass
class Recorder:
    """The oracle's bridge: each decided tick's ``Decided`` as the collector's input columns."""

    pipeline: Pipeline
    inner: ReportObserver
    symbols: SymbolTable = field(default_factory=SymbolTable)
    rows: dict[str, list] = field(default_factory=lambda: {c: [] for c in ROW_COLUMNS})
    fills: dict[str, list] = field(default_factory=lambda: {c: [] for c in ("row", *FILL_COLUMNS)})

    def before_decide(self, tick: TradeTick | QuoteTick) -> None:
        self.inner.before_decide(tick)

    def after_decide(self, tick: TradeTick | QuoteTick, decided: Decided) -> None:
        self.inner.after_decide(tick, decided)
        quote = isinstance(tick, QuoteTick)
        signal = (
            decided.signal if decided.signal and decided.signal.task == "classification" else None
        )
        account = decided.account or self.pipeline.execution.account(tick.instrument)
        row = len(self.rows["ts"])
        values = (
            self.symbols.index(tick.instrument),
            KIND_QUOTE if quote else KIND_TRADE,
            tick.ts_event_ns,
            tick.reference_price,
            tick.bid if quote else math.nan,
            tick.ask if quote else math.nan,
            signal is not None,
            signal.score if signal else math.nan,
            decided.features.price if decided.features else math.nan,
            decided.decision is not None,
            decided.order is not None,
            account.equity,
        )
        for name, value in zip(ROW_COLUMNS, values, strict=True):
            self.rows[name].append(value)
        for fill in decided.fills:
            # a fill's instrument, time and reference are its row's: the layout relies on it
            assert (fill.instrument, fill.ts_event_ns) == (tick.instrument, tick.ts_event_ns)
            assert fill.reference_price == tick.reference_price
            self.fills["row"].append(row)
            for name in FILL_COLUMNS:
                self.fills[name].append(getattr(fill, name))


@dataclass(frozen=True)
class Oracle:
    config: TickwiseConfig
    settings: ReportSettings
    warmup_ns: int
    files: dict[str, bytes]
    columns: DecidedColumns
    symbols: SymbolTable
    model_metrics: object
    monitor_stats: object


def run_oracle(
    records: Iterable[RawRecord], config: TickwiseConfig, rs: ReportSettings, warmup_ns: int,
    out: Path,
) -> Oracle:  # fmt: skip
    """``run_backtest``'s loop with the real collector, every decided tick recorded."""
    pipeline = Pipeline(config)
    csv = io.StringIO()
    collector = BacktestCollector(pipeline, rs, csv)
    recorder = Recorder(pipeline, ReportObserver(pipeline, collector, warmup_ns))
    pipeline.observer = recorder
    for rec in records:
        pipeline.process(rec.payload, SourceRef(topic="f", partition=0, offset=rec.index))
    pipeline.finish()
    collector.finish()
    out.mkdir(parents=True, exist_ok=True)
    collector.write(out, RUN)
    files = {"equity.csv": csv.getvalue().encode()}
    files |= {name: (out / name).read_bytes() for name in ("report.json", "report.html")}
    r, f = recorder.rows, recorder.fills
    fills = FillColumns(
        np.array(f["row"], np.int64), np.zeros(len(f["row"]), np.int64),
        np.array(f["price"]), np.array(f["fee"]), np.array(f["quantity"]),
        np.zeros(len(f["row"]), np.bool_), np.array(f["position_after"]),
        np.zeros(len(f["row"])), np.array(f["realized_pnl_after"]),
    )  # fmt: skip
    cols = DecidedColumns(
        instrument=np.array(r["instrument"], np.int32),
        kind=np.array(r["kind"], np.uint8),
        ts=np.array(r["ts"], np.int64),
        price=np.array(r["price"]),
        bid=np.array(r["bid"]),
        ask=np.array(r["ask"]),
        clean=np.ones(len(r["ts"]), np.bool_),
        signal=np.array(r["signal"], np.bool_),
        score=np.array(r["score"]),
        signal_price=np.array(r["signal_price"]),
        decision=np.array(r["decision"], np.bool_),
        order=np.array(r["order"], np.bool_),
        equity=np.array(r["equity"]),
        fills=fills,
    )
    metrics = getattr(pipeline.model, "metrics", None)
    return Oracle(config, rs, warmup_ns, files, cols, recorder.symbols, metrics,
                  pipeline.monitor.stats)  # fmt: skip


def with_quarantined(cols: DecidedColumns, rate: float, seed: int) -> DecidedColumns:
    """``cols`` with rows the collector must skip (quarantined ticks) put in between."""
    rng = np.random.default_rng(seed)
    n = len(cols)
    extra = rng.random(n) < rate
    keep = np.repeat(np.arange(n), 1 + extra)  # each marked row gets a junk row before it
    clean = np.ones(keep.size, np.bool_)
    clean[np.flatnonzero(np.diff(keep, prepend=-1) == 0) - 1] = False
    row_of = np.flatnonzero(clean)  # old row -> new row
    f = cols.fills
    fills = FillColumns(row_of[f.row], *(getattr(f, s) for s in FillColumns.__slots__[1:]))
    out = {name: getattr(cols, name)[keep].copy() for name in ROW_COLUMNS}
    out["price"][~clean] = -1.0  # junk the collector must never read
    out["ts"][~clean] = 0
    return DecidedColumns(**out, clean=clean, fills=fills)


def split(cols: DecidedColumns, cuts: Iterable[int]) -> Iterator[DecidedColumns]:
    """``cols`` as batches ending at each cut; each batch's fills numbered from its first row."""
    edges = sorted({0, len(cols), *(c for c in cuts if 0 < c < len(cols))})
    f = cols.fills
    for lo, hi in pairwise(edges):
        m = (f.row >= lo) & (f.row < hi)
        fills = FillColumns(f.row[m] - lo, *(getattr(f, s)[m] for s in FillColumns.__slots__[1:]))
        parts = {name: getattr(cols, name)[lo:hi] for name in (*ROW_COLUMNS, "clean")}
        yield DecidedColumns(**parts, fills=fills)


def run_columnar(
    o: Oracle, batches: Iterable[DecidedColumns], out: Path
) -> tuple[dict[str, bytes], ColumnarCollector]:
    csv = io.StringIO()
    collector = ColumnarCollector(o.config, o.settings, csv, o.symbols, warmup_ns=o.warmup_ns)
    for batch in batches:
        collector.on_batch(batch)
    collector.finish()
    out.mkdir(parents=True, exist_ok=True)
    collector.write(out, RUN, o.model_metrics, o.monitor_stats)
    files = {"equity.csv": csv.getvalue().encode()}
    files |= {name: (out / name).read_bytes() for name in ("report.json", "report.html")}
    return files, collector


def assert_same_files(got: dict[str, bytes], want: dict[str, bytes]) -> None:
    for name, data in want.items():
        assert got[name] == data, name


def interleaved(records: Iterable[RawRecord], seed: int, rate: float) -> Iterator[RawRecord]:
    """Neighbouring records of different instruments swapped now and then: late ticks."""
    rng = random.Random(seed)
    held: RawRecord | None = None
    for rec in records:
        if held is not None:
            yield rec
            yield held
            held = None
        elif rng.random() < rate:
            held = rec
        else:
            yield rec
    if held is not None:
        yield held


def synthetic_config(latency_ms: float = 40.0, size: float = 1.0) -> TickwiseConfig:
    config = threshold_rule(fast_config(warmup=20, horizon_s=0.2))
    return config.model_copy(
        update={
            "execution": ExecutionConfig(latency_ms=latency_ms, fee_per_unit=0.5, multiplier=5.0),
            "risk": config.risk.model_copy(update={"target_size": size}),
        }
    )


@pytest.fixture(scope="module")
def synthetic_oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    records = interleaved(
        synthetic(7, 6_000, ["ES", "NQ", "CL"], bad_rate=0.01, regime="gaps"), 3, 0.02
    )
    rs = ReportSettings(returns_period="200ms", walk_forward="3s", accuracy_window=50,
                        plot_points=40, seed=11)  # fmt: skip
    out = tmp_path_factory.mktemp("oracle")
    return run_oracle(records, synthetic_config(), rs, 2 * 10**9, out)


def test_synthetic_run_trades_and_equals_the_per_tick_collector(
    synthetic_oracle: Oracle, tmp_path: Path
) -> None:
    o = synthetic_oracle
    report = o.files["report.json"].decode()
    assert o.columns.fills.row.size > 50, "the run must trade for the comparison to mean much"
    assert '"late_ticks_marked_at_latest_time": 0' not in report
    assert report.count('"segment":') >= 3
    files, _ = run_columnar(o, [o.columns], tmp_path)
    assert_same_files(files, o.files)


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 7_000), max_size=12),
    ones=st.booleans(),
    junk=st.floats(0.0, 0.3),
)
def test_any_split_into_batches_gives_the_same_files_and_state(
    synthetic_oracle: Oracle, tmp_path_factory: pytest.TempPathFactory, cuts: list[int],
    ones: bool, junk: float,
) -> None:  # fmt: skip
    o = synthetic_oracle
    cols = with_quarantined(o.columns, junk, seed=len(cuts))
    whole, ref = run_columnar(o, [cols], tmp_path_factory.mktemp("whole"))
    if ones:  # a stretch of batches of one row
        start = cuts[0] if cuts else 0
        cuts = [*cuts, *range(start, start + 300)]
    files, got = run_columnar(o, split(cols, cuts), tmp_path_factory.mktemp("split"))
    assert_same_files(files, o.files)
    assert_same_files(whole, o.files)
    want = ref.state_arrays()
    for name, array in got.state_arrays().items():
        np.testing.assert_array_equal(array, want[name], err_msg=name)


@pytest.mark.parametrize("latency_ms,size", [(0.0, 2.0), (400.0, 1.0)])
def test_no_walk_forward_no_warmup_and_long_latency(
    tmp_path: Path, latency_ms: float, size: float
) -> None:
    records = synthetic(5, 3_000, ["ES", "NQ"], regime="volatile")
    rs = ReportSettings(returns_period="1s", walk_forward=None, seed=3, plot_points=10)
    o = run_oracle(records, synthetic_config(latency_ms, size), rs, 0, tmp_path / "o")
    files, _ = run_columnar(o, split(o.columns, range(0, 3_000, 97)), tmp_path / "c")
    assert_same_files(files, o.files)


def test_quotes_only(tmp_path: Path) -> None:
    records = (r for r in synthetic(9, 4_000, ["EURUSD"]) if b'"quote"' in r.payload)
    rs = ReportSettings(returns_period="500ms", walk_forward="2s", seed=1, plot_points=12)
    o = run_oracle(records, synthetic_config(), rs, 0, tmp_path / "o")
    assert np.all(o.columns.kind == KIND_QUOTE) and o.columns.fills.row.size > 0
    files, _ = run_columnar(o, split(o.columns, range(0, 4_000, 333)), tmp_path / "c")
    assert_same_files(files, o.files)


def test_real_es_trades(tmp_path: Path) -> None:
    if not ES_TRADES.exists():
        pytest.skip(f"{ES_TRADES} is absent")
    records = islice(read_csv(ES_TRADES, ColumnMap(symbol="ES", tz="America/Chicago")), 6_000)
    config = threshold_rule(TickwiseConfig())
    rs = ReportSettings(returns_period="1min", walk_forward="1h")
    o = run_oracle(records, config, rs, 15 * 60 * 10**9, tmp_path / "o")
    assert o.columns.fills.row.size > 10
    files, _ = run_columnar(o, split(o.columns, range(0, 6_000, 1_024)), tmp_path / "c")
    assert_same_files(files, o.files)
