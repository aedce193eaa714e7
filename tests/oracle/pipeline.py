"""The per-tick pipeline: the reference the columnar engine is held to, one message at a time.

``process`` takes one raw message from ``ticks.raw`` and returns every message it gives rise
to, each with its topic and key, in the order the engine publishes them for the same input.
Inside, two steps:

* ``validate``: raw bytes -> a clean tick or a quarantine record;
* ``decide``: a clean tick -> features, and once the model is warm, a signal, a risk-checked
  decision and its audit entries.

It is slow (about ten pydantic contracts and several operator layers a tick) and nothing of the
product runs it: tests run it beside the engine and require the same bytes.

An unexpected exception inside an operator quarantines that message (reason ``OPERATOR_ERROR``,
exception type in the detail) and the stream goes on, as in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

from tests.oracle.control import ControlBook
from tests.oracle.risk import RiskEngine
from tests.oracle.validator import Validator
from tickwise.schemas.decisions import (
    Action,
    Alert,
    AppliedControl,
    AuditRecord,
    ControlCommand,
    Decision,
    FeatureVector,
    Fill,
    Order,
    Signal,
)
from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import CleanTick, QuoteTick, SourceRef, TradeTick
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
)
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.live.state import Output
from tickwise.streams.operators import AuditChain, FeatureEngine, ModelStage
from tickwise.streams.operators.audit import Entry
from tickwise.streams.operators.control import control_key
from tickwise.streams.operators.decision import DecisionRule
from tickwise.streams.operators.execution import AccountView, PaperBroker
from tickwise.streams.operators.models import Applied, applied_alert
from tickwise.streams.operators.monitor import Monitor
from tickwise.streams.operators.sampling import SignalSampler
from tickwise.streams.operators.state import KeyedState
from tickwise.streams.operators.validation import quarantine


@dataclass(frozen=True, slots=True)
class Decided:
    """What the decide stage produced for one clean tick."""

    features: FeatureVector | None = None
    signal: Signal | None = None
    decision: Decision | None = None
    # what the tick appended to the audit chain, with each entry's bytes: the decision's record,
    # after the hold summary it closed; nothing for a HOLD counted into a summary
    audit_entries: tuple[tuple[Entry, bytes], ...] = ()
    error: QuarantineRecord | None = None
    # risk / execution / monitor outputs
    order: Order | None = None
    fills: tuple[Fill, ...] = ()
    account: AccountView | None = None
    alerts: tuple[Alert, ...] = ()
    commands: tuple[ControlCommand, ...] = ()
    # the model stage's share: every signal of the tick, shadow ones included
    # (``signal`` is the one that went to risk), and the control commands applied at it
    signals: tuple[Signal, ...] = ()
    applied: tuple[Applied, ...] = ()
    # the signals to publish (``[signals] every``); None: every one of ``signals``
    published: tuple[Signal, ...] | None = None

    @property
    def audit(self) -> AuditRecord | None:
        """The decision's own audit record; None for a HOLD counted into a summary."""
        for entry, _ in self.audit_entries:
            if isinstance(entry, AuditRecord):
                return entry
        return None

    def outputs(self, key: str) -> list[Output]:
        """The messages to publish, in the order consumers should see them."""
        if self.features is None and not (self.error or self.fills or self.alerts or self.commands):
            return []  # a tick between decisions (no model ran), with nothing to report
        signals = self.signals or ((self.signal,) if self.signal is not None else ())
        if self.published is not None:
            signals = self.published
        out = [Output(TICKS_QUARANTINE, key, self.error)] if self.error is not None else []
        if self.features is not None and (self.published is None or signals):
            out.append(Output(FEATURES, key, self.features))
        out += [Output(SIGNALS, key, s) for s in signals]
        for entry, wire in self.audit_entries:
            if isinstance(entry, AuditRecord):  # a decision is published with its record
                out.append(Output(DECISIONS, key, entry.decision))
            out.append(Output(AUDIT, key, entry, wire))
        out += [Output(FILLS, key, fill) for fill in self.fills]
        out += alert_outputs(self.alerts, self.commands)
        out += [Output(ALERTS, key, applied_alert(a)) for a in self.applied]
        return out


def alert_outputs(alerts: tuple[Alert, ...], commands: tuple[ControlCommand, ...]) -> list[Output]:
    """Monitor alerts, and the commands their policies issued (already applied here; on the
    control topic so every worker, and a restart, has them)."""
    out = [Output(ALERTS, a.instrument or a.model_id, a) for a in alerts]
    out += [Output(CONTROL, control_key(c), c) for c in commands]
    return out


class DecideObserver(Protocol):
    """Watches each decision (a backtest's report); must not change what is decided."""

    def before_decide(self, tick: TradeTick | QuoteTick) -> None: ...

    def after_decide(self, tick: TradeTick | QuoteTick, decided: Decided) -> None: ...


class Pipeline:
    """Validation, features, model, risk and audit for one worker (or one backtest)."""

    def __init__(self, config: TickwiseConfig) -> None:
        self.config = config
        self.validator = Validator(config.validation)
        self.features = FeatureEngine(config.features)
        self.model = ModelStage(config.model, config.label, config.evaluation, config.decision)
        self.risk = RiskEngine(
            config.risk,
            multiplier=config.execution.multiplier,
            rule=DecisionRule(config.decision, config.execution, config.label.horizon_s),
        )
        self.audit = AuditChain(config.audit)
        self.sampler = SignalSampler(config.signals)
        self.execution = PaperBroker(config.execution)
        self.control = ControlBook()
        self.monitor = Monitor(config.monitor, config.label)
        self.observer: DecideObserver | None = None

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
            "signals": self.sampler,
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
        """At the end of a finite input (replay): what the validator still held, decided, then
        a summary of each run of holds still open, so the audit chain covers the whole input.

        A live worker has no end: its open runs stay open (and in its checkpoint) until their
        period ends, so its chain is replay's without these last summaries.
        """
        outputs = self._route(self.flush_validation())
        for entry, wire in self.audit.close_runs():
            outputs.append(Output(AUDIT, entry.instrument, entry, wire))
        return outputs

    def _route(self, verdicts: list[CleanTick | QuarantineRecord]) -> list[Output]:
        outputs: list[Output] = []
        for verdict in verdicts:
            if isinstance(verdict, QuarantineRecord):
                outputs.append(Output(TICKS_QUARANTINE, verdict.instrument, verdict))
                outputs += self._observed(verdict)
                continue
            key = verdict.tick.instrument
            outputs.append(Output(TICKS_CLEAN, key, verdict))
            outputs += self._observed(verdict)
            if self.observer is not None:
                self.observer.before_decide(verdict.tick)
            decided = self.decide(verdict)
            if self.observer is not None:
                self.observer.after_decide(verdict.tick, decided)
            outputs += decided.outputs(key)
        return outputs

    def _observed(self, verdict: CleanTick | QuarantineRecord) -> list[Output]:
        """The data-quality monitor's alerts (and policy commands) on one verdict."""
        alerts, commands = self.observe_validation(verdict)
        return alert_outputs(alerts, commands) if alerts or commands else []

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

    def on_control(self, command: ControlCommand) -> bool:
        """Take an operator command; False if every operator had seen it before.

        Kill switches and demotions go to the control book (risk), stage changes to the model
        stage; each ignores the kinds that are not its own.
        """
        applied = self.control.on_command(command)
        return self.model.submit(command) or applied

    def decide(self, clean: CleanTick) -> Decided:
        """Stage two: features, then (after warm-up) signal, decision and audit record.

        Fills, market state and outcome scoring move on every tick; the model, risk and audit
        run on the ticks the feature engine samples (every tick unless ``sample_ms`` is set).
        """
        fills: list[Fill] = []
        try:
            fills, alerts = self._before_model(clean.tick)
            fv = self.features.on_tick(clean.tick)
            if fv is None:  # between two decisions (``features.sample_ms``)
                tick = clean.tick
                self.model.on_price(tick.instrument, tick.ts_event_ns, tick.reference_price)
                self.audit.hold_fills(tick.instrument, fills)
                alerts, commands = self._policies(alerts)
                return Decided(fills=tuple(fills), alerts=alerts, commands=commands)
            scored = self.model.on_features(fv)
            stages = tuple(a.audited() for a in scored.applied)  # model stage changes
            signal = scored.routed  # shadow signals never reach risk
            if signal is None:
                self.audit.hold_fills(clean.tick.instrument, fills)
                self.audit.hold_controls(clean.tick.instrument, stages)
                alerts, commands = self._policies(alerts)
                return Decided(
                    features=fv,
                    fills=tuple(fills),
                    alerts=alerts,
                    commands=commands,
                    signals=scored.signals,
                    applied=scored.applied,
                    published=self.sampler.select(fv.instrument, scored.signals, False),
                )
            decided = self._after_model(fv, signal, fills, alerts, stages)
            intent = decided.decision is not None and decided.decision.action is not Action.HOLD
            return replace(
                decided,
                signals=scored.signals,
                applied=scored.applied,
                published=self.sampler.select(fv.instrument, scored.signals, intent),
            )
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

    # --- risk, execution, control and audit; the model part stays above ---------------------

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
        self,
        fv: FeatureVector,
        signal: Signal,
        fills: list[Fill],
        alerts: list[Alert],
        stages: tuple[AppliedControl, ...] = (),
    ) -> Decided:
        """Risk-check the signal, send an approved order to the paper broker, audit it all."""
        account = self.execution.account(signal.instrument)
        control = self.control.view(signal.instrument, signal.model_id, signal.ts_event_ns)
        move = self.model.move_bps(signal.instrument)
        verdict = self.risk.evaluate(signal, fv.price, account, control, move)
        decision = verdict.decision
        order = self.execution.submit(decision)
        entries = self.audit.on_decision(
            fv,
            signal,
            verdict.checks,
            decision,
            order=order,
            fills=fills,
            trading_state=verdict.trading_state,
            controls=(*stages, *control.newly_applied),
        )
        account = self.execution.account(signal.instrument)
        self.monitor.on_signal(signal, fv.price)
        alerts += self.monitor.on_account(account, signal.model_id)
        all_alerts, commands = self._policies(alerts)
        return Decided(
            fv,
            signal,
            decision,
            tuple(entries),
            order=order,
            fills=tuple(fills),
            account=account,
            alerts=all_alerts,
            commands=commands,
        )
