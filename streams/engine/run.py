"""The whole engine over batches: validate, features, model, decide and monitor, state carried
across.

``Engine.run`` takes one partition's batch (a block of a file in replay, what one consume call
returned live) and gives back everything it publishes for it, in each topic's order: quarantine
records, signals, decisions, orders, fills, audit entries, the monitor's alerts and the
commands its policies issued. It is ``validate`` then ``take``: a replay (``replay.engine``)
validates a batch ahead of the engine on a thread of its own and has ``take`` leave the
rendering of what was decided to its writer thread (``take(defer=True)``). The model
stage is the compiled kernel (``models.BatchModel``) until the config or a command asks for
what only river's stage runs (the zoo, several versions, shadow, canary): then
``staged.StagedModel``, which takes the kernel's state over.

The monitor runs as a pass of its own after the decide kernel, over the same rows: nothing the
decide kernel computes depends on it, except through a policy's command (demote, halt, kill),
which applies from the next row on. So the decide kernel runs the batch ahead; when the
monitor's pass stops at an alert whose policy issues a command, the decide state goes back to
where the batch (or the last such stop) began, decides again up to that row, takes the
command, and goes on from there. Policies are rare, so the batch is mostly decided once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from tickwise.schemas.decisions import Alert, ControlCommand, FeatureVector, Signal
from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.streams.config import ModelConfig, TickwiseConfig, parse_every
from tickwise.streams.engine import risk as rk
from tickwise.streams.engine.batch import SymbolTable, TickBatch, clean_tick_bytes
from tickwise.streams.engine.decide import E_STAGE, BatchDecide, DecideColumns, Rendered
from tickwise.streams.engine.features import BatchFeatures
from tickwise.streams.engine.models import BatchModel, ModelColumns, one_version_cannot
from tickwise.streams.engine.monitor import BatchMonitor, MonitorEvents, MonitorOutput
from tickwise.streams.engine.validate import BatchValidator
from tickwise.streams.operators.control import MODEL_COMMANDS
from tickwise.streams.operators.models.shared import applied_alert, version_key
from tickwise.streams.operators.sampling import SignalSampler
from tickwise.streams.operators.validation.records import quarantine

if TYPE_CHECKING:  # river's stage: imported when a deployment or the zoo needs it
    from tickwise.streams.engine.staged import StagedModel


_RENDERING = threading.Lock()  # deferred rendering, one output at a time (``BatchOutput``)


@dataclass(slots=True)
class Validated:
    """A batch through validation and features (``Engine.validate``): the rows as validated,
    which are clean, their quarantine records by row, which rows have a feature vector and
    the vectors; ``symbols``, how many symbols the reading table held by then."""

    batch: TickBatch
    clean: np.ndarray
    records: dict[int, QuarantineRecord]
    emit: np.ndarray
    vectors: np.ndarray
    symbols: int


@dataclass(slots=True)
class BatchOutput:
    """What one batch gave rise to, each list in the order its topic carries it."""

    quarantined: dict[int, QuarantineRecord]
    decided: Rendered
    # the published signals (``[signals] every``): river's stage gives ``Signal`` s, the
    # compiled kernel a ``SignalLines`` of their bytes; ``signals``, ``signal_bytes`` and
    # ``signal_count`` read them either way
    published: list[Signal | SignalLines] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)  # the monitor's, then stage changes'
    commands: list[ControlCommand] = field(default_factory=list)  # policies' (control topic)
    # the decide kernel's columns over the batch, one per stretch between policy commands
    parts: list[DecideColumns] = field(default_factory=list)
    # each row: passed validation (what the report, the quality figures and ``ticks.clean``
    # count as clean)
    accepted: np.ndarray = field(default_factory=lambda: np.zeros(0, np.bool_))
    # live only (``Engine(live=True)``): each clean tick's ``CleanTick`` bytes with its
    # instrument, and the feature vectors published with the signals
    clean: list[tuple[str, bytes]] = field(default_factory=list)
    features: list[FeatureVector] = field(default_factory=list)
    # the rows every column above indexes: the batch as validated (``BatchValidator.run``),
    # the given one unless ticks are reordered
    batch: TickBatch | None = None
    # ``Engine.take(defer=True)``: what is left to render into ``decided`` and ``alerts``,
    # in order, and the output deferred before this one (rendered first)
    pending: list[Callable[[], None]] = field(default_factory=list)
    before: BatchOutput | None = None

    def render(self) -> BatchOutput:
        """Render what ``take`` left to render, after every output deferred before it:
        ``decided`` and ``alerts`` are whole once this returns. Whichever thread asks first
        renders, under one lock, so the audit chain grows in batch order either way."""
        with _RENDERING:
            chain: list[BatchOutput] = []
            out: BatchOutput | None = self
            while out is not None and (out.pending or out.before is not None):
                chain.append(out)
                out = out.before
            for out in reversed(chain):
                steps, out.pending, out.before = out.pending, [], None
                for step in steps:
                    step()
        return self

    @property
    def signals(self) -> list[Signal]:
        """The published signals as contracts (the live worker's), bytes parsed."""
        parse = Signal.model_validate_json
        out: list[Signal] = []
        for s in self.published:
            if isinstance(s, Signal):
                out.append(s)
            else:
                out += [parse(line) for line in s.lines()]
        return out

    def signal_bytes(self) -> list[bytes]:
        """The published signals as a topic carries them (what a replay writes)."""
        out: list[bytes] = []
        for s in self.published:
            if isinstance(s, Signal):
                out.append(s.to_bytes())
            else:
                out += s.lines()
        return out

    @property
    def signal_count(self) -> int:
        """How many signals are published, none rendered to count them."""
        return sum(1 if isinstance(s, Signal) else len(s) for s in self.published)


class SignalLines:
    """Signals of the compiled kernel, their bytes written when first asked for.

    Why: the bytes are a function of columns the engine is done with, so a replay's writer
    thread renders them (``replay.engine``), not the engine's.
    """

    __slots__ = ("_lines", "_n", "_render")

    def __init__(self, render: Callable[[], list[bytes]], n: int) -> None:
        self._render: Callable[[], list[bytes]] | None = render
        self._n = n
        self._lines: list[bytes] = []

    def __len__(self) -> int:
        return self._n

    def lines(self) -> list[bytes]:
        """The signals' bytes, in order."""
        if self._render is not None:
            self._lines, self._render = self._render(), None
        return self._lines


class Renumber:
    """Validated batches read against one table of symbols (``Engine``'s ``read_symbols``),
    their instruments renumbered into the engine's own table.

    Each name read is registered in the engine's table when the batch it was read with is
    taken: where the engine would have registered it reading the batch itself, so both tables
    number alike unless a command named an instrument before its first tick, and the
    engine's numbering is the same whether the reader runs ahead or not.
    """

    def __init__(self, reading: SymbolTable, symbols: SymbolTable) -> None:
        self.reading, self.symbols = reading, symbols
        self.index = np.zeros(0, np.int32)  # the engine's number of each reading number
        self.same = True  # whether each number is its own

    def __call__(self, validated: Validated) -> Validated:
        """``validated`` with its batch's instruments in the engine's table."""
        known = self.index.size
        if validated.symbols > known:
            names = self.reading.names[known : validated.symbols]
            new = np.array([self.symbols.index(name) for name in names], np.int32)
            self.index = np.concatenate([self.index, new])
            self.same = self.same and bool(np.all(new == np.arange(known, self.index.size)))
        if not self.same:
            batch = validated.batch
            validated.batch = replace(batch, instrument=self.index[batch.instrument])
        return validated


class Engine:
    """Every kernel of the engine for one partition, with their state."""

    def __init__(
        self,
        config: TickwiseConfig,
        symbols: SymbolTable | None = None,
        commands: Iterable[ControlCommand] = (),
        on_first_tick: Callable[[int], Iterable[ControlCommand]] | None = None,
        live: bool = False,
        read_symbols: SymbolTable | None = None,
    ) -> None:
        """``on_first_tick``: called once with the event time of the first clean tick, before
        it is decided; the commands it returns are taken (a backtest's warm-up). ``live``:
        also give the topics only a worker publishes (``ticks.clean``, ``features``); its
        batches must be decoded with ``keep_messages``. ``read_symbols``: the table the
        input is read and validated against when that is not ``symbols`` (a reader a batch
        ahead of ``take``, ``replay.engine``); its batches go to ``take`` with their
        instruments in ``symbols``."""
        self.config = config
        self.live = live
        self.on_first_tick = on_first_tick
        self.symbols = symbols if symbols is not None else SymbolTable()
        reading = self.symbols if read_symbols is None else read_symbols
        self.validator = BatchValidator(config.validation, reading)
        self.features = BatchFeatures(config.features, reading)
        # model ids, as slots of the decide kernel's control view and of the monitor
        self.models = SymbolTable([config.model.model_id])
        self.model: BatchModel | StagedModel
        try:
            self.model = BatchModel(
                config.model,
                config.label,
                config.features.feature_set,
                self.symbols,
                config.decision,
                config.evaluation,
            )
        except NotImplementedError:  # river's zoo
            from tickwise.streams.engine.staged import StagedModel

            self.model = StagedModel(config, self.symbols, self.models)
        self.decide = BatchDecide(config, self.symbols, self.models)
        self.order_slots: dict[int, int] = {}  # pending order number: its model's slot
        self._deferred: BatchOutput | None = None  # the last output left to render
        self.monitor = BatchMonitor(config.monitor, config.label, self.symbols, self.models)
        self.on_control(commands)
        every = config.signals.every
        period_s = parse_every(every)
        self.sample_ns = None if period_s is None else round(period_s * 1e9)
        self.every_signal = every == "decision"
        self.sampled = np.zeros(0, np.int64)  # per instrument: period of its last sampled signal
        self.sampler: SignalSampler | None = None  # what samples them under ``StagedModel``

    def on_control(self, commands: Iterable[ControlCommand]) -> None:
        """Take operator commands (between batches), in arrival order. One
        that deploys what the compiled kernel cannot run (another version, a shadow or a
        canary) hands the model stage over to ``StagedModel``, state and all."""
        fresh = [c for c in commands if c.command_id not in self.decide.seen]
        for command in fresh:
            _check_spec(command, self.config.label.task)
        if isinstance(self.model, BatchModel) and any(
            c.command in MODEL_COMMANDS and one_version_cannot(c, self.config.model) for c in fresh
        ):
            from tickwise.streams.engine.staged import StagedModel

            self.model = StagedModel.from_kernel(
                self.model, self.config, self.models, self.decide.model_commands,
                self.decide.mc_next,
            )  # fmt: skip
        if not isinstance(self.model, BatchModel):
            for command in fresh:
                self.model.submit(command)
        self.decide.on_control(fresh)

    def run(self, batch: TickBatch) -> BatchOutput:
        """One batch through every stage; the outputs index ``BatchOutput.batch``, the batch
        as validated (held ticks left out, released ones in, under the reorder policy)."""
        return self.take(self.validate(batch))

    def validate(self, batch: TickBatch) -> Validated:
        """The batch through validation and features, the stages nothing after them feeds
        back into: a caller may run them ahead of ``take`` on a thread of their own, against
        the table of symbols it reads with (``read_symbols``)."""
        return self._features(*self.validator.run(batch))

    def _features(self, batch: TickBatch, verdict: np.ndarray, aux: np.ndarray) -> Validated:
        clean = verdict == 0
        emit, vectors = self.features.run(batch, clean)
        records = self.validator.records(batch, verdict, aux)
        return Validated(batch, clean, records, emit, vectors, len(self.validator.symbols))

    def take(self, validated: Validated, defer: bool = False) -> BatchOutput:
        """A validated batch through the model, decide and monitor stages, in batch order.

        ``defer``: leave the decisions, orders, fills, audit entries and alerts for
        ``BatchOutput.render`` (a replay's writer thread), which nothing the engine does next
        waits for. Only under the compiled kernel's one version: river's stage routes the
        next batch's fills by what rendering knows of pending orders, so its outputs render
        here, after those deferred before them.
        """
        batch, clean, emit, vectors = (
            validated.batch, validated.clean, validated.emit, validated.vectors
        )  # fmt: skip
        if self.on_first_tick is not None and clean.any():
            first, self.on_first_tick = self.on_first_tick, None
            self.on_control(first(int(batch.ts[int(np.argmax(clean))])))
        scored = self.model.run(batch, clean, emit, vectors)
        defer = defer and scored.signals is None
        if not defer and self._deferred is not None:
            self._deferred.render()
        records = validated.records
        for row, what in scored.errors or ():
            records[row] = self._operator_error(batch, row, what)
        out = BatchOutput(records, Rendered(), accepted=clean, batch=batch)
        if self.live:
            self._live_topics(batch, clean, emit, vectors, out)
        inst = batch.instrument.astype(np.int64)
        start, seen = 0, False
        while True:
            snapshot = self.decide.snapshot()
            cols = self.decide.run(batch, clean, emit, scored, start)
            events = _events(batch, inst, clean, cols, scored, self._fill_slots(cols, scored))
            mon = self.monitor.run_until_policy(events, start, seen)
            stop = len(batch)
            if mon.stopped_at is not None:  # decide again, up to where the command applies
                stop = mon.stopped_at[0]
                self.decide.restore(snapshot)
                cols = self.decide.run(batch, clean, emit, scored, start, stop)
            render = partial(self._render, out, batch, cols, vectors, scored, mon)
            if defer:
                out.pending.append(render)
            else:
                render()
            self._forget_filled()
            if scored.signals is None:
                self._publish(batch, cols, scored, vectors, out)
            else:
                self._publish_staged(batch, clean, emit, cols, scored, vectors, (start, stop), out)
            out.parts.append(cols)
            if mon.stopped_at is None:
                if out.pending:
                    out.before, self._deferred = self._deferred, out
                return out
            fresh = [c for c in mon.commands if c.command_id not in self.decide.seen]
            self.on_control(fresh)
            out.commands += fresh
            start, seen = mon.stopped_at

    def _render(
        self,
        out: BatchOutput,
        batch: TickBatch,
        cols: DecideColumns,
        vectors: np.ndarray,
        scored: ModelColumns,
        mon: MonitorOutput,
    ) -> None:
        """A part's decisions, orders, fills, audit entries and alerts, into ``out``."""
        part = self.decide.render(batch, cols, vectors, scored)
        out.decided.decisions += part.decisions
        out.decided.orders += part.orders
        out.decided.fills += part.fills
        out.decided.audit += part.audit
        out.decided.applied += part.applied
        out.alerts += _alerts_in_row_order(mon.a_int, mon.alerts, cols, part)

    def _live_topics(
        self,
        batch: TickBatch,
        clean: np.ndarray,
        emit: np.ndarray,
        vectors: np.ndarray,
        out: BatchOutput,
    ) -> None:
        """``ticks.clean``, and under ``[signals] every = "decision"`` the feature vector of
        every row that has one (sampled, they go with the published signals)."""
        names, inst_of, tick_ids = self.symbols.names, batch.instrument, batch.tick_ids
        rows = np.flatnonzero(clean).tolist()
        keys = [names[int(inst_of[i])] for i in rows]
        out.clean = list(zip(keys, clean_tick_bytes(batch, rows), strict=True))
        if not self.every_signal:
            return
        features = self.decide._features
        for j, i in enumerate(np.flatnonzero(emit).tolist()):
            tick_id = tick_ids[i]
            assert tick_id is not None
            name, ts, price = names[int(inst_of[i])], int(batch.ts[i]), float(batch.price[i])
            out.features.append(features(vectors[j], name, tick_id, ts, price))

    def finish(
        self, adapt: Callable[[Validated], Validated] | None = None, defer: bool = False
    ) -> BatchOutput:
        """At the end of a finite input: the ticks the validator still holds, through every
        stage (``adapt``: what the caller does between ``validate`` and ``take``), then the
        summaries of the runs of holds still open (``defer``: as ``take``'s)."""
        flushed = self.validator.flush()
        if flushed is None:
            out = BatchOutput({}, Rendered())
        else:
            validated = self._features(*flushed)
            out = self.take(validated if adapt is None else adapt(validated), defer)
        if defer and self._deferred is not None:
            if self._deferred is not out:
                out.before = self._deferred
            out.pending.append(lambda: out.decided.audit.extend(self.decide.finish()))
            self._deferred = None
        else:
            out.decided.audit += self.decide.finish()
        return out

    def _operator_error(self, batch: TickBatch, row: int, what: str) -> QuarantineRecord:
        """The record of a clean tick river's stage raised on (the per-tick oracle's words)."""
        name = self.symbols.names[int(batch.instrument[row])]
        return quarantine(
            batch.payloads[row], batch.source(row), ReasonCode.OPERATOR_ERROR,
            f"model stage: {what}", name, batch.tick_ids[row],
        )  # fmt: skip

    def _fill_slots(self, cols: DecideColumns, model: ModelColumns) -> np.ndarray:
        """The model slot of each fill's order (the version routed when it was decided)."""
        if model.signals is None and not self.order_slots:  # one version: slot 0 throughout
            return np.zeros(cols.fills.row.size, np.int64)
        placed = cols.order >= 0
        numbers, slots = cols.order[placed].tolist(), model.slot[cols.vec[placed]].tolist()
        self.order_slots.update(zip(numbers, slots, strict=True))
        get = self.order_slots.get
        return np.array([get(n, 0) for n in cols.fills.order_id.tolist()], np.int64)

    def _forget_filled(self) -> None:
        """Drop the slots of orders no longer pending (filled, as rendered)."""
        if self.order_slots:
            pending = self.decide.pending_orders
            self.order_slots = {n: s for n, s in self.order_slots.items() if n in pending}

    def monitor_stats(self, instrument: str) -> dict[str, object]:
        """``Monitor.stats`` for the report."""
        return self.monitor.stats(instrument)

    def _publish(
        self,
        batch: TickBatch,
        cols: DecideColumns,
        model: ModelColumns,
        vectors: np.ndarray,
        out: BatchOutput,
    ) -> None:
        """The signals ``SignalSampler`` publishes: every one (``decision``), those of order
        intents, and (a period) the first other one of each instrument in each period; live,
        each with the feature vector it was scored on."""
        rows = cols.row
        if rows.size == 0:
            return
        if self.every_signal:
            chosen = np.arange(rows.size)
        else:
            intent = cols.out[:, rk.O_DELTA] != 0.0
            chosen_mask = intent.copy()
            others = np.flatnonzero(~intent)
            if self.sample_ns is not None and others.size:
                n = len(self.symbols)
                if self.sampled.size < n:
                    grown = np.full(n, np.iinfo(np.int64).min, np.int64)
                    grown[: self.sampled.size] = self.sampled
                    self.sampled = grown
                inst = batch.instrument[rows[others]].astype(np.int64)
                period = batch.ts[rows[others]] // self.sample_ns
                order = np.argsort(inst, kind="stable")
                inst_o, period_o = inst[order], period[order]
                first = np.ones(order.size, np.bool_)
                first[1:] = inst_o[1:] != inst_o[:-1]
                before = np.empty_like(period_o)
                before[1:] = period_o[:-1]
                before[first] = self.sampled[inst_o[first]]
                new = period_o != before
                chosen_mask[others[order[new]]] = True
                last = np.flatnonzero(np.r_[inst_o[1:] != inst_o[:-1], True])
                self.sampled[inst_o[last]] = period_o[last]
            chosen = np.flatnonzero(chosen_mask)
        decide = self.decide
        if chosen.size:
            lines = partial(decide.signal_wire, batch, cols, chosen, model, vectors)
            out.published.append(SignalLines(lines, chosen.size))
        if not self.live or self.every_signal:
            return
        names = self.symbols.names
        for d in chosen.tolist():
            i = int(rows[d])
            name, tick_id = names[int(batch.instrument[i])], batch.tick_ids[i]
            assert tick_id is not None
            vector = vectors[int(cols.vec[d])]
            ts, price = int(batch.ts[i]), float(batch.price[i])
            out.features.append(decide._features(vector, name, tick_id, ts, price))

    def _publish_staged(
        self,
        batch: TickBatch,
        clean: np.ndarray,
        emit: np.ndarray,
        cols: DecideColumns,
        model: ModelColumns,
        vectors: np.ndarray,
        bounds: tuple[int, int],
        out: BatchOutput,
    ) -> None:
        """The signals ``SignalSampler`` publishes under ``StagedModel``, at every row with a
        vector in ``bounds`` (a shadow's are published while no version routes), each
        row's chosen by ``SignalSampler``'s rule; live, with the row's feature vector."""
        assert model.signals is not None
        if self.sampler is None:
            self.sampler = self._carried_sampler()
        select, names = self.sampler.select, self.symbols.names
        intents = set(cols.row[cols.out[:, rk.O_DELTA] != 0.0].tolist())
        rows = np.flatnonzero(emit & clean)
        for j in _rows_between(rows, bounds):
            i, signals = int(rows[j]), model.signals[j]
            name = names[int(batch.instrument[i])]
            chosen = select(name, signals, i in intents)
            published = signals if chosen is None else chosen
            out.published += published
            if self.live and not self.every_signal and published:
                tick_id = batch.tick_ids[i]
                assert tick_id is not None
                ts, price = int(batch.ts[i]), float(batch.price[i])
                out.features.append(self.decide._features(vectors[j], name, tick_id, ts, price))

    def _carried_sampler(self) -> SignalSampler:
        """A sampler going on from the one-version sampling (``sampled``) so far."""
        sampler = SignalSampler(self.config.signals)
        key = version_key(self.config.model.model_id, self.config.model.model_version)
        none = np.iinfo(np.int64).min
        for name, period in zip(self.symbols.names, self.sampled.tolist(), strict=False):
            if period != none:
                sampler.resume(name, key, period)
        return sampler


def _check_spec(command: ControlCommand, task: str) -> None:
    """``ValueError`` for a command deploying a model spec that is not a model of the task,
    or names another version than the command: refused before anything applies it."""
    if command.command not in MODEL_COMMANDS or command.model_spec is None:
        return
    from tickwise.streams.operators.models.zoo import build_estimator

    spec = ModelConfig.model_validate(command.model_spec)
    build_estimator(spec, task)  # type: ignore[arg-type]  # ValueError: kind and task disagree
    named = version_key(command.model_id or "", command.model_version or 0)
    if named != version_key(spec.model_id, spec.model_version):
        raise ValueError(
            f"{command.command_id} names {named} but its model_spec is "
            f"{version_key(spec.model_id, spec.model_version)}"
        )


def _rows_between(rows: np.ndarray, bounds: tuple[int, int]) -> range:
    """The positions in ``rows`` (ascending) of the rows in ``[start, stop)``."""
    start, stop = np.searchsorted(rows, bounds).tolist()
    return range(start, stop)


def _events(
    batch: TickBatch,
    inst: np.ndarray,
    clean: np.ndarray,
    cols: DecideColumns,
    model: ModelColumns,
    fill_slots: np.ndarray,
) -> MonitorEvents:
    """What the monitor sees of the rows ``cols`` decided: verdicts, fills, decisions, each
    decision and fill with its model's slot."""
    f = cols.fills
    return MonitorEvents(
        inst, clean, batch.ts, batch.price,
        f.row, fill_slots, f.realized_pnl_after, f.fee,
        cols.row, model.slot[cols.vec], cols.score, cols.side.astype(np.int64),
        batch.price[cols.row], cols.net_pnl, cols.account_ts,
    )  # fmt: skip


def _alerts_in_row_order(
    a_int: np.ndarray, alerts: list[Alert], cols: DecideColumns, part: Rendered
) -> list[Alert]:
    """The monitor's alerts and the model stage's applied commands in the order they are
    published: a row's monitor alerts, then its stage changes."""
    if not part.applied:
        return alerts
    stage_rows = cols.e_row[cols.e_what == E_STAGE].tolist()
    alert_rows = a_int[:, 0].tolist()  # monitor.A_ROW
    out: list[Alert] = []
    j = 0
    for row, applied in zip(stage_rows, part.applied, strict=True):
        while j < len(alerts) and alert_rows[j] <= row:
            out.append(alerts[j])
            j += 1
        out.append(applied_alert(applied))
    return out + alerts[j:]
