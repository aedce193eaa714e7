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

from schemas.decisions import (
    Alert,
    AuditRecord,
    ControlCommand,
    Decision,
    FeatureVector,
    Fill,
    Order,
    Signal,
)
from schemas.quarantine import QuarantineRecord, ReasonCode
from schemas.ticks import CleanTick, QuoteTick, SourceRef, TradeTick
from streams.config import TickwiseConfig
from streams.operators import AuditChain, FeatureEngine, OnlineClassifier, RiskEngine, Validator
from streams.operators.control import ControlBook
from streams.operators.execution import AccountView, PaperBroker
from streams.operators.monitor import Monitor
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
    # risk / execution / monitor outputs (issue 5)
    order: Order | None = None
    fills: tuple[Fill, ...] = ()
    account: AccountView | None = None
    alerts: tuple[Alert, ...] = ()
    commands: tuple[ControlCommand, ...] = ()


class Pipeline:
    """Validation, features, model, risk and audit for one worker (or one backtest)."""

    def __init__(self, config: TickwiseConfig) -> None:
        self.config = config
        self.validator = Validator(config.validation)
        self.features = FeatureEngine(config.features)
        self.model = OnlineClassifier(config.model, config.label)
        self.risk = RiskEngine(config.risk, multiplier=config.execution.multiplier)
        self.audit = AuditChain()
        self.execution = PaperBroker(config.execution)
        self.control = ControlBook()
        self.monitor = Monitor(config.monitor, config.label)

    @property
    def decide_operators(self) -> dict[str, KeyedState]:
        """The decide stage's stateful operators by name: what a checkpoint must carry."""
        return {
            "features": self.features,
            "model": self.model,
            "risk": self.risk,
            "audit": self.audit,
            "execution": self.execution,
            "control": self.control,
            "monitor": self.monitor,
        }

    def export_state(self, instrument: str) -> dict[str, Any]:
        """The decide stage's whole state for one instrument (picklable)."""
        return {name: op.export_state(instrument) for name, op in self.decide_operators.items()}

    def import_state(self, instrument: str, state: dict[str, Any]) -> None:
        """Continue an instrument from a state exported by another (or an earlier) pipeline."""
        for name, op in self.decide_operators.items():
            if state.get(name) is not None:
                op.import_state(instrument, state[name])

    def validate(self, raw: bytes, source: SourceRef) -> CleanTick | QuarantineRecord:
        """Stage one: every raw message ends as exactly one clean tick or quarantine record."""
        try:
            return self.validator.on_raw(raw, source)
        except Exception as exc:  # an operator bug must not stop the stream
            return quarantine(raw, source, ReasonCode.OPERATOR_ERROR, f"validator: {exc!r}")

    def on_control(self, command: ControlCommand) -> bool:
        """Take an operator command (kill switch, demotion); False if seen before."""
        return self.control.on_command(command)

    def decide(self, clean: CleanTick) -> Decided:
        """Stage two: features, then (after warm-up) signal, decision and audit record."""
        fills: list[Fill] = []
        try:
            fills, alerts = self._before_model(clean.tick)
            fv = self.features.on_tick(clean.tick)
            signal = self.model.on_features(fv)
            if signal is None:
                self.audit.hold_fills(clean.tick.instrument, fills)
                alerts, commands = self._policies(alerts)
                return Decided(features=fv, fills=tuple(fills), alerts=alerts, commands=commands)
            return self._after_model(fv, signal, fills, alerts)
        except Exception as exc:  # an operator bug must not stop the stream
            error = quarantine(
                clean.to_bytes(),
                clean.source,
                ReasonCode.OPERATOR_ERROR,
                f"decide: {exc!r}",
                clean.tick.instrument,
                clean.tick.tick_id,
            )
            return Decided(error=error, fills=tuple(fills))

    # --- risk, execution, control and audit (issue 5); the model part stays above -----------

    def observe_validation(
        self, verdict: CleanTick | QuarantineRecord
    ) -> tuple[tuple[Alert, ...], tuple[ControlCommand, ...]]:
        """Feed the validator's verdict to the data-quality monitor (validate stage)."""
        if isinstance(verdict, CleanTick):
            tick = verdict.tick
            alerts = self.monitor.on_validated(tick.instrument, True, tick.ts_event_ns)
        elif verdict.instrument:
            alerts = self.monitor.on_validated(verdict.instrument, False, None)
        else:
            return (), ()  # no instrument to attribute it to; counted by its quarantine record
        return self._policies(alerts)

    def _before_model(self, tick: TradeTick | QuoteTick) -> tuple[list[Fill], list[Alert]]:
        """Fill orders due at this tick, update the market state risk reads, score outcomes."""
        fills = self.execution.on_tick(tick)
        self.risk.on_tick(tick)
        alerts = self.monitor.on_tick(tick.instrument, tick.ts_event_ns, tick.reference_price)
        for fill in fills:
            alerts += self.monitor.on_fill(fill)
        return fills, alerts

    def _policies(
        self, alerts: list[Alert]
    ) -> tuple[tuple[Alert, ...], tuple[ControlCommand, ...]]:
        """Apply each alert's policy here at once (deterministic per instrument); the commands
        also go to the control topic so every worker, and a restart, has them."""
        commands = []
        for alert in alerts:
            command = self.monitor.act(alert)
            if command is not None and self.control.on_command(command):
                commands.append(command)
        return tuple(alerts), tuple(commands)

    def _after_model(
        self, fv: FeatureVector, signal: Signal, fills: list[Fill], alerts: list[Alert]
    ) -> Decided:
        """Risk-check the signal, send an approved order to the paper broker, audit it all."""
        account = self.execution.account(signal.instrument)
        control = self.control.view(signal.instrument, signal.model_id, signal.ts_event_ns)
        verdict = self.risk.evaluate(signal, fv.price, account, control)
        decision = verdict.decision
        order = self.execution.submit(decision)
        record = self.audit.on_decision(
            fv,
            signal,
            verdict.checks,
            decision,
            order=order,
            fills=fills,
            trading_state=verdict.trading_state,
            controls=control.newly_applied,
        )
        account = self.execution.account(signal.instrument)
        self.monitor.on_signal(signal, fv.price)
        alerts += self.monitor.on_account(account, signal.model_id)
        all_alerts, commands = self._policies(alerts)
        return Decided(
            fv,
            signal,
            decision,
            record,
            order=order,
            fills=tuple(fills),
            account=account,
            alerts=all_alerts,
            commands=commands,
        )
