"""The one place operators are wired together. Live agents and replay both drive this.

``process`` takes one raw message from ``ticks.raw`` and returns every message it gives rise
to, each with its topic and key. The live agent sends them; the backtest writes them to files.
Neither knows what the outputs are, so neither can drift from the other. Inside, two steps:

* ``validate``: raw bytes -> a clean tick or a quarantine record;
* ``decide``: a clean tick -> features, and once the model is warm, a signal, a risk-checked
  decision and its audit record.

An unexpected exception inside an operator quarantines that message (reason ``OPERATOR_ERROR``,
exception type in the detail) and the stream goes on; nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.base import Contract
from schemas.decisions import AuditRecord, Decision, FeatureVector, Signal
from schemas.quarantine import QuarantineRecord, ReasonCode
from schemas.ticks import CleanTick, SourceRef
from schemas.topics import (
    AUDIT,
    DECISIONS,
    FEATURES,
    SIGNALS,
    TICKS_CLEAN,
    TICKS_QUARANTINE,
    TopicSpec,
)
from streams.config import TickwiseConfig
from streams.operators import AuditChain, FeatureEngine, OnlineClassifier, RiskEngine, Validator
from streams.operators.state import KeyedState
from streams.operators.validation import quarantine


@dataclass(frozen=True, slots=True)
class Output:
    """One message for one catalogue topic, keyed by instrument (None when unknown)."""

    topic: TopicSpec
    key: str | None
    message: Contract


@dataclass(frozen=True, slots=True)
class Decided:
    """What the decide stage produced for one clean tick."""

    features: FeatureVector | None = None
    signal: Signal | None = None
    decision: Decision | None = None
    audit: AuditRecord | None = None
    error: QuarantineRecord | None = None

    def outputs(self, key: str) -> list[Output]:
        """The messages to publish, in the order consumers should see them."""
        pairs = (
            (TICKS_QUARANTINE, self.error),
            (FEATURES, self.features),
            (SIGNALS, self.signal),
            (DECISIONS, self.decision),
            (AUDIT, self.audit),
        )
        return [Output(topic, key, msg) for topic, msg in pairs if msg is not None]


class Pipeline:
    """Validation, features, model, risk and audit for one worker (or one backtest)."""

    def __init__(self, config: TickwiseConfig) -> None:
        self.config = config
        self.validator = Validator(config.validation)
        self.features = FeatureEngine(config.features)
        self.model = OnlineClassifier(config.model, config.label)
        self.risk = RiskEngine(config.risk)
        self.audit = AuditChain()

    @property
    def decide_operators(self) -> dict[str, KeyedState]:
        """The decide stage's stateful operators by name: what a checkpoint must carry."""
        return {
            "features": self.features,
            "model": self.model,
            "risk": self.risk,
            "audit": self.audit,
        }

    def export_state(self, instrument: str) -> dict[str, Any]:
        """The decide stage's whole state for one instrument (picklable)."""
        return {name: op.export_state(instrument) for name, op in self.decide_operators.items()}

    def import_state(self, instrument: str, state: dict[str, Any]) -> None:
        """Continue an instrument from a state exported by another (or an earlier) pipeline."""
        for name, op in self.decide_operators.items():
            if state.get(name) is not None:
                op.import_state(instrument, state[name])

    def reconfigured(self, config: TickwiseConfig) -> Pipeline:
        """A pipeline under ``config`` that carries this one's per-instrument state over.

        A worker restarted with a new config rebuilds its state under the config it was
        running (the checkpoint's), then continues under the new one from here.
        """
        if config == self.config:
            return self
        fresh = Pipeline(config)
        instruments = set(self.validator.instruments())
        for op in self.decide_operators.values():
            instruments.update(op.instruments())  # type: ignore[attr-defined]
        for instrument in sorted(instruments):
            state = self.validator.export_state(instrument)
            if state is not None:
                fresh.validator.import_state(instrument, state)
            fresh.import_state(instrument, self.export_state(instrument))
        return fresh

    def process(self, raw: bytes, source: SourceRef, reinjected: bool = False) -> list[Output]:
        """Everything one raw message leads to: its verdict(s), then the decision path."""
        return self._route(self.screen(raw, source, reinjected))

    def finish(self) -> list[Output]:
        """At the end of a finite input (replay): what the validator still held, decided."""
        return self._route(self.flush_validation())

    def _route(self, verdicts: list[CleanTick | QuarantineRecord]) -> list[Output]:
        outputs: list[Output] = []
        for verdict in verdicts:
            if isinstance(verdict, QuarantineRecord):
                outputs.append(Output(TICKS_QUARANTINE, verdict.instrument, verdict))
                continue
            key = verdict.tick.instrument
            outputs += [Output(TICKS_CLEAN, key, verdict), *self.decide(verdict).outputs(key)]
        return outputs

    def validate(self, raw: bytes, source: SourceRef) -> CleanTick | QuarantineRecord:
        """Stage one for configs that do not reorder: exactly one verdict per raw message."""
        outputs = self.screen(raw, source)
        if len(outputs) != 1:
            raise RuntimeError("validate() needs one verdict per message; use screen() to reorder")
        return outputs[0]

    def screen(
        self, raw: bytes, source: SourceRef, reinjected: bool = False
    ) -> list[CleanTick | QuarantineRecord]:
        """Stage one: every raw message ends as exactly one clean tick or quarantine record.

        A list, because a reordering validator may hold a tick and release it with a later
        call; live and replay both send whatever comes back, in order.
        """
        try:
            return self.validator.on_raw(raw, source, reinjected)
        except Exception as exc:  # an operator bug must not stop the stream
            return [quarantine(raw, source, ReasonCode.OPERATOR_ERROR, f"validator: {exc!r}")]

    def flush_validation(self) -> list[CleanTick | QuarantineRecord]:
        """Release what the validator still holds, at the end of a finite input (replay)."""
        return self.validator.flush()

    def decide(self, clean: CleanTick) -> Decided:
        """Stage two: features, then (after warm-up) signal, decision and audit record."""
        try:
            fv = self.features.on_tick(clean.tick)
            signal = self.model.on_features(fv)
            if signal is None:
                return Decided(features=fv)
            decision, checks = self.risk.on_signal(signal, fv.price)
            record = self.audit.on_decision(fv, signal, checks, decision)
            return Decided(fv, signal, decision, record)
        except Exception as exc:  # an operator bug must not stop the stream
            error = quarantine(
                clean.to_bytes(),
                clean.source,
                ReasonCode.OPERATOR_ERROR,
                f"decide: {exc!r}",
                clean.tick.instrument,
                clean.tick.tick_id,
            )
            return Decided(error=error)
