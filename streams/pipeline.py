"""The one place operators are wired together. Live agents and replay both drive this.

Two stages, split where the topics split:

* ``validate``: raw bytes from ``ticks.raw`` -> a clean tick or a quarantine record;
* ``decide``: a clean tick -> features, and once the model is warm, a signal, a risk-checked
  decision and its audit record.

An unexpected exception inside an operator quarantines that message (reason ``OPERATOR_ERROR``,
exception type in the detail) and the stream goes on; nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.decisions import AuditRecord, ControlCommand, Decision, FeatureVector, Signal
from schemas.quarantine import QuarantineRecord, ReasonCode
from schemas.ticks import CleanTick, SourceRef
from streams.config import TickwiseConfig
from streams.operators import AuditChain, FeatureEngine, ModelStage, RiskEngine, Validator
from streams.operators.models import Applied
from streams.operators.state import KeyedState
from streams.operators.validation import quarantine


@dataclass(frozen=True, slots=True)
class Decided:
    """What the decide stage produced for one clean tick."""

    features: FeatureVector | None = None
    signal: Signal | None = None
    decision: Decision | None = None
    audit: AuditRecord | None = None
    error: QuarantineRecord | None = None
    # The model stage's share (learning issue): every signal of the tick, shadow ones
    # included (``signal`` is the one that went to risk), and control commands applied here.
    signals: tuple[Signal, ...] = ()
    applied: tuple[Applied, ...] = ()


class Pipeline:
    """Validation, features, model, risk and audit for one worker (or one backtest)."""

    def __init__(self, config: TickwiseConfig) -> None:
        self.config = config
        self.validator = Validator(config.validation)
        self.features = FeatureEngine(config.features)
        self.model = ModelStage(config.model, config.label, config.evaluation)
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

    def control(self, command: ControlCommand) -> None:
        """Queue a control command (model stages); the model stage applies it per instrument."""
        self.model.submit(command)

    def validate(self, raw: bytes, source: SourceRef) -> CleanTick | QuarantineRecord:
        """Stage one: every raw message ends as exactly one clean tick or quarantine record."""
        try:
            return self.validator.on_raw(raw, source)
        except Exception as exc:  # an operator bug must not stop the stream
            return quarantine(raw, source, ReasonCode.OPERATOR_ERROR, f"validator: {exc!r}")

    def decide(self, clean: CleanTick) -> Decided:
        """Stage two: features, then (after warm-up) signal, decision and audit record."""
        try:
            fv = self.features.on_tick(clean.tick)
            scored = self.model.on_features(fv)
            signal = scored.routed  # shadow signals never reach risk
            if signal is None:
                return Decided(features=fv, signals=scored.signals, applied=scored.applied)
            decision, checks = self.risk.on_signal(signal, fv.price)
            record = self.audit.on_decision(fv, signal, checks, decision)
            return Decided(fv, signal, decision, record, None, scored.signals, scored.applied)
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
