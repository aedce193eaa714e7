"""``tickwise backtest`` on the columnar engine: batches of ticks through the kernels, the
files and the report written from columns.

It writes what the per-tick oracle of the tests (``tests/oracle``) writes for the same input,
byte for byte (``tests/unit/engine/test_backtest_engine.py``): the topic-shaped files,
``summary.json`` but its timing, ``equity.csv``, ``report.json`` and ``report.html``. Batches
come from the file reader (``streams.sources.batches``: CSV and Parquet by blocks of columns)
or, for any other stream of raw records (the synthetic feed, files merged in time), from the
bulk decoder over chunks of records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, closing
from itertools import groupby, islice
from pathlib import Path

import numpy as np

from tickwise.replay.backtest import FILES, BacktestResult, progress_fields, write_summary
from tickwise.replay.columnar import ColumnarCollector, DecidedColumns
from tickwise.replay.report import ReportSettings
from tickwise.replay.warmup import warmup_commands
from tickwise.schemas.decisions import ControlCommand, HoldSummary
from tickwise.schemas.topics import ALERTS, AUDIT, DECISIONS, FILLS, SIGNALS, TICKS_QUARANTINE
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.engine.batch import SymbolTable, TickBatch, decode
from tickwise.streams.engine.execution import FillColumns
from tickwise.streams.engine.overlap import WriteBehind, read_ahead
from tickwise.streams.engine.run import BatchOutput, Engine, Renumber
from tickwise.streams.progress import Progress
from tickwise.streams.sources import ColumnMap, RawRecord
from tickwise.streams.sources.batches import read_batches

CHUNK = 65_536  # raw records decoded at a time


def run_file(
    path: str | Path,
    columns: ColumnMap,
    config: TickwiseConfig,
    commands: Iterable[ControlCommand] = (),
) -> Iterator[BatchOutput]:
    """A whole file through the engine, a batch at a time, then the end-of-input summaries."""
    engine = Engine(config, commands=commands)
    max_bytes = config.validation.max_message_bytes
    for batch in read_batches(path, columns, engine.symbols, max_bytes):
        yield engine.run(batch)
    yield engine.finish()


def record_batches(
    records: Iterable[RawRecord], symbols: SymbolTable, max_bytes: int, size: int = CHUNK
) -> Iterator[TickBatch]:
    """Raw records as batches by the bulk decoder; a batch never mixes two origins (each is
    its own lineage topic, ``file:<origin>``)."""
    for origin, same in groupby(records, key=lambda r: r.origin):
        while chunk := list(islice(same, size)):
            offsets = np.fromiter((r.index for r in chunk), np.int64, len(chunk))
            payloads = [r.payload for r in chunk]
            yield decode(payloads, symbols, f"file:{origin}", 0, offsets, max_bytes)


def _decided(batch: TickBatch, output: BatchOutput, classification: bool) -> DecidedColumns:
    """The report's view of a batch: what each row did, from the decide kernel's columns."""
    n = len(batch)
    parts = output.parts
    equity = np.full(n, np.nan)
    signal, decision, order = (np.zeros(n, np.bool_) for _ in range(3))
    score = np.zeros(n)
    for cols in parts:
        done = ~np.isnan(cols.equity)
        equity[done] = cols.equity[done]
        decision[cols.row] = True
        signal[cols.row] = classification
        score[cols.row] = cols.score
        order[cols.row] = cols.order >= 0
    fills = FillColumns(
        *(np.concatenate([getattr(c.fills, name) for c in parts]) for name in FillColumns.__slots__)
    )
    clean = output.accepted
    return DecidedColumns(
        batch.instrument.astype(np.int64), batch.kind, batch.ts, batch.price, batch.bid,
        batch.ask, clean, signal, score, batch.price, decision, order, equity, fills,
    )  # fmt: skip


def run_engine_backtest(
    batches: Callable[[SymbolTable], Iterable[TickBatch]],
    config: TickwiseConfig,
    out: Path,
    controls: Iterable[ControlCommand] = (),
    settings: ReportSettings | None = None,
    progress: bool = False,
    warmup_ns: int = 0,
) -> BacktestResult:
    """Run a backtest on the engine and write the topic-shaped outputs and the report;
    ``batches`` gives the input's batches against the symbol table it is handed (the reading
    thread's, renumbered into the engine's as each batch is taken).

    ``controls`` are operator commands (kill switch, demotion, promotion); give them an
    ``effective_ts_event_ns`` (or load a live audit trail with ``replay.controls``) to replay
    them where live applied them. ``equity.csv``, ``report.json`` and ``report.html`` are
    measured as ``settings`` says; ``warmup_ns`` of event time from the first tick trade
    nothing (``replay.warmup``).
    """
    # the input is read and validated a batch ahead on a thread of its own (``overlap``),
    # against a table of symbols of its own, renumbered into the engine's as it is taken
    reading = SymbolTable()
    engine = Engine(
        config,
        commands=controls,
        on_first_tick=(lambda ts: warmup_commands(ts, warmup_ns)) if warmup_ns else None,
        read_symbols=reading,
    )
    renumber = Renumber(reading, engine.symbols)
    out.mkdir(parents=True, exist_ok=True)
    result = BacktestResult()
    classification = config.label.task == "classification"
    started = time.perf_counter()
    with ExitStack() as stack:
        files = {t: stack.enter_context(open(out / n, "wb")) for t, n in FILES.items()}
        equity_csv = stack.enter_context(open(out / "equity.csv", "w", buffering=1 << 20))
        collector = ColumnarCollector(
            config, settings or ReportSettings(), equity_csv, engine.symbols, warmup_ns
        )
        bar = stack.enter_context(Progress(progress, "backtest"))

        def write(output: BatchOutput) -> None:
            r = output.decided
            quarantined = [output.quarantined[row] for row in sorted(output.quarantined)]
            result.quarantined.update(q.reason.value for q in quarantined)
            result.signals += output.signal_count
            result.decisions += len(r.decisions)
            result.approved += sum(d.approved for d in r.decisions)
            result.holds_summarised += sum(
                e.holds for e, _ in r.audit if isinstance(e, HoldSummary)
            )
            for topic, lines in (
                (TICKS_QUARANTINE, (q.to_bytes() for q in quarantined)),
                (SIGNALS, output.signal_bytes()),
                (DECISIONS, (d.to_bytes() for d in r.decisions)),
                (AUDIT, (wire for _, wire in r.audit)),
                (FILLS, (f.to_bytes() for f in r.fills)),
                (ALERTS, (a.to_bytes() for a in output.alerts)),
            ):
                files[topic.name].writelines(line + b"\n" for line in lines)

        def take(done: tuple[BatchOutput, int]) -> None:
            output, ticks = done
            output.render()  # what the engine left to render, in batch order
            result.clean += int(output.accepted.sum())
            write(output)
            if output.batch is not None:
                collector.on_batch(_decided(output.batch, output, classification))
            bar.update(ticks, **progress_fields(result, collector))

        # rendering, the files and the report's columns come a batch behind the engine, on a
        # thread of their own (``overlap``); nothing the engine does depends on them
        validated = read_ahead((len(b), engine.validate(b)) for b in batches(reading))
        with WriteBehind(take) as behind, closing(validated):
            for n, ahead in validated:
                result.ticks += n
                behind.put((engine.take(renumber(ahead), defer=True), result.ticks))
            behind.put((engine.finish(renumber, defer=True), result.ticks))
        collector.finish()
        bar.close(result.ticks, **progress_fields(result, collector))
    result.seconds = time.perf_counter() - started
    run = write_summary(out, result)
    result.report = collector.write(out, run, engine.model.metrics, engine.monitor_stats)
    return result


def run_backtest(
    records: Iterable[RawRecord],
    config: TickwiseConfig,
    out: Path,
    controls: Iterable[ControlCommand] = (),
    settings: ReportSettings | None = None,
    progress: bool = False,
    warmup_ns: int = 0,
) -> BacktestResult:
    """``run_engine_backtest`` over a stream of raw records (the synthetic feed, files merged
    in time, any iterable), decoded in bulk a chunk at a time as they come."""
    max_bytes = config.validation.max_message_bytes
    return run_engine_backtest(
        lambda symbols: record_batches(records, symbols, max_bytes),
        config,
        out,
        controls,
        settings,
        progress,
        warmup_ns,
    )


__all__ = ["record_batches", "run_backtest", "run_engine_backtest", "run_file"]
