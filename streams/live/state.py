"""What decides one raw partition in a worker: the columnar engine, the one the backtest runs.

``EngineState`` gives, for a batch of raw messages, every message they lead to as an
``Output``, topic by topic and byte for byte what the per-tick oracle of the tests gives for
them one by one (``tests/unit/engine/test_engine_run.py`` holds the engine to it;
``tests/unit/test_partition_state.py`` this adapter). It pickles whole into a partition's
checkpoint, so a partition moves to a worker on another host with its state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tickwise.schemas.base import Contract
from tickwise.schemas.decisions import ControlCommand
from tickwise.schemas.topics import (
    ALERTS,
    AUDIT,
    CONTROL,
    DECISIONS,
    FEATURES,
    FILLS,
    SIGNALS,
    TICKS_CLEAN,
    TICKS_QUARANTINE,
    TopicSpec,
)
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.engine.batch import decode
from tickwise.streams.engine.monitor import M_EXISTS, M_H_LEN, M_H_SUM
from tickwise.streams.engine.run import BatchOutput, Engine
from tickwise.streams.engine.validate import BatchValidator
from tickwise.streams.operators.control import control_key
from tickwise.streams.operators.validation import QualityMonitor

# Config sections a running state does not depend on: a worker restarted with only these
# changed carries its state on as it is.
STATELESS_SECTIONS = frozenset({"app_id", "topic_prefix", "live", "watch", "data"})


@dataclass(frozen=True, slots=True)
class Output:
    """One message for one catalogue topic, keyed by instrument (None when unknown)."""

    topic: TopicSpec
    key: str | None
    # None only beside ``wire``: a message encoded in bulk, never built as a model (the
    # engine's clean ticks)
    message: Contract | None
    wire: bytes | None = None  # the message's bytes when its operator already encoded it

    def encoded(self) -> bytes:
        """The exact bytes to put on the topic (live) or write to its file (replay)."""
        if self.wire is not None:
            return self.wire
        assert self.message is not None
        return self.message.to_bytes()


class CommandRefused(ValueError):
    """An operator command the partition's state cannot carry out (it is not applied)."""


class EngineAccuracy:
    """The engine monitor's rolling accuracy, read (never written) from another thread: what
    ``metrics.AccuracyCollector`` asks of a monitor."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def instruments(self) -> list[str]:
        """Instruments the engine has seen."""
        return list(self.engine.symbols.names)

    def stats(self, instrument: str) -> dict[str, object]:
        """Each model's accuracy for ``instrument`` (None before its first outcome)."""
        monitor = self.engine.monitor
        mst, names = monitor.mst, monitor.models.names  # one reference each: a consistent pair
        k = self.engine.symbols.names.index(instrument)
        models: dict[str, dict[str, object]] = {}
        if k < mst.shape[0]:
            for m, name in enumerate(names[: mst.shape[1]]):
                row = mst[k, m]
                if row[M_EXISTS]:
                    n = int(row[M_H_LEN])
                    models[name] = {"accuracy": int(row[M_H_SUM]) / n if n else None}
        return {"models": models}


class EngineState:
    """The columnar engine as one partition's state."""

    chunk = 5_000  # raw messages decided per call: a consume call's batch, whole

    def __init__(self, config: TickwiseConfig) -> None:
        self.config = config
        self.engine = Engine(config, live=True)

    @property
    def monitor(self) -> EngineAccuracy:
        """The rolling accuracy the worker's /metrics exposes."""
        return EngineAccuracy(self.engine)

    def process(
        self,
        raws: Sequence[bytes],
        topic: str,
        partition: int,
        offsets: np.ndarray,
        reinjected: np.ndarray,
        quality: QualityMonitor | None = None,
    ) -> list[Output]:
        """Every output of a batch of one partition's raw messages, in each topic's order."""
        engine = self.engine
        max_bytes = self.config.validation.max_message_bytes
        batch = decode(raws, engine.symbols, topic, partition, offsets, max_bytes, reinjected, True)
        return self._outputs(engine.run(batch), quality)

    def finish(self) -> list[Output]:
        """At the end of a finite input (a replay of a period): the ticks still held for
        reordering, decided, and the runs of holds still open, summarised."""
        return self._outputs(self.engine.finish())

    def _outputs(self, o: BatchOutput, quality: QualityMonitor | None = None) -> list[Output]:
        """A batch's outputs as the worker publishes them, in each topic's order."""
        engine = self.engine
        quarantined = [o.quarantined[row] for row in sorted(o.quarantined)]
        if quality is not None and o.batch is not None:
            rows, done = np.flatnonzero(o.accepted), o.batch
            quality.on_accepted_many(engine.symbols.names, done.instrument[rows], done.ts[rows])
        r = o.decided
        out = [Output(TICKS_CLEAN, key, None, wire) for key, wire in o.clean]
        out += [Output(TICKS_QUARANTINE, q.instrument, q) for q in quarantined]
        out += [Output(FEATURES, f.instrument, f) for f in o.features]
        out += [Output(SIGNALS, s.instrument, s) for s in o.signals]
        out += [Output(DECISIONS, d.instrument, d) for d in r.decisions]
        out += [Output(AUDIT, e.instrument, e, wire) for e, wire in r.audit]
        out += [Output(FILLS, f.instrument, f) for f in r.fills]
        out += [Output(ALERTS, a.instrument or a.model_id, a) for a in o.alerts]
        out += [Output(CONTROL, control_key(c), c) for c in o.commands]
        return out

    def on_control(self, command: ControlCommand) -> bool:
        """Take an operator command; False if it was taken before. One deploying another
        model version, a shadow or a canary hands the engine's model stage over to
        ``StagedModel`` (``Engine.on_control``). ``CommandRefused`` for one that cannot be
        carried out (a model spec that is not a valid model of the task)."""
        if command.command_id in self.engine.decide.seen:
            return False
        try:
            self.engine.on_control([command])
        except ValueError as exc:
            raise CommandRefused(str(exc)) from exc
        return True

    def reconfigured(self, config: TickwiseConfig) -> EngineState:
        """This state under ``config``: the state carried over where the engine's layout
        allows it, else ``ValueError`` naming what changed.

        Sections nothing decides by (``STATELESS_SECTIONS``) change freely. A changed
        ``[validation]`` (an instrument allowed, a limit moved: the fix before re-injecting
        quarantined ticks) keeps the validator's state and takes the new rules, as long as its
        windows keep their sizes. Any other changed section stops the take-over: features,
        learners, risk and monitor state are laid out for the config they were built under,
        and a guess would decide differently from a backtest of either config.
        """
        old = self.config
        changed = sorted(
            name
            for name in type(config).model_fields
            if name not in STATELESS_SECTIONS and getattr(config, name) != getattr(old, name)
        )
        if changed == ["validation"]:
            self._revalidate(config)
        elif changed:
            raise ValueError(
                f"the checkpointed engine state was built under another [{'], ['.join(changed)}] "
                "config; the columnar engine carries a changed [validation] over, nothing else: "
                "run the new config under a new app_id (its state is rebuilt from the log) or "
                "restore the old sections"
            )
        self.config = config
        self.engine.config = config
        return self

    def _revalidate(self, config: TickwiseConfig) -> None:
        engine = self.engine
        before = engine.validator
        after = BatchValidator(config.validation, engine.symbols)
        old_shape = (before.state.moves.shape[1], before.state.ids.shape[2])
        new_shape = (after.state.moves.shape[1], after.state.ids.shape[2])
        if old_shape != new_shape:
            raise ValueError(
                "the new [validation] changes the outlier or duplicate windows (ring sizes "
                f"{old_shape} -> {new_shape}); the checkpointed validator state cannot carry "
                "over: run it under a new app_id (its state is rebuilt from the log)"
            )
        after.state, after.reorder = before.state, before.reorder
        engine.validator = after


MODEL_STAGES = {"BatchModel", "StagedModel"}


def same_layout(old: object, new: object) -> bool:
    """Whether ``old`` (a checkpoint's state) has the layout of ``new`` (a fresh state): the
    same classes, every attribute of ``new``'s objects, arrays of the same dtype and rank, all
    the way down through tickwise's own objects (containers and values are not compared).

    Why: a state pickled by another version of tickwise unpickles without complaint even when
    its classes gained or lost attributes since, and would fail, or worse go on wrongly, in
    the middle of a batch. ``None`` on either side matches anything (a part the config leaves
    out, such as the reorder buffers).
    """
    seen: set[tuple[int, int]] = set()

    def same(a: object, b: object) -> bool:
        if a is None or b is None:
            return True
        if type(a) is not type(b):
            # the engine's model stage in either of its forms: the compiled kernel, or
            # river's stage it hands over to
            return {type(a).__name__, type(b).__name__} == MODEL_STAGES
        if isinstance(a, np.ndarray):
            return a.dtype == b.dtype and a.ndim == b.ndim  # type: ignore[attr-defined]
        if not type(a).__module__.startswith("tickwise.") or (id(a), id(b)) in seen:
            return True
        seen.add((id(a), id(b)))
        wanted = _attributes(b)  # what the old state holds beyond (set on first use) is kept
        return wanted <= _attributes(a) and all(same(getattr(a, n), getattr(b, n)) for n in wanted)

    return same(old, new)


def _attributes(obj: object) -> set[str]:
    """The attributes ``obj`` holds: its ``__dict__``, its slots that are set, a named tuple's
    fields."""
    names = set(getattr(obj, "__dict__", {}))
    names.update(getattr(type(obj), "_fields", ()))
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        names.update(n for n in ([slots] if isinstance(slots, str) else slots) if hasattr(obj, n))
    return names - {"__dict__", "__weakref__"}
