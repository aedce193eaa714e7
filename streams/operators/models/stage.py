"""The model stage: every deployed model version scores each tick; one signal may reach risk.

A *deployment* maps model versions to stages. Per instrument:

* **production** scores and its signal goes to risk (except where a canary runs);
* **canary** replaces production on its configured instruments, at a fraction of capital;
* **shadow** scores and publishes signals that never reach risk;
* **retired** versions stop scoring; the last productions stay on a rollback stack and keep
  learning, so ``rollback`` hands back a model that is up to date.

All versions learn the same matured labels (see ``streams.operators.labels``) and are
validated prequentially. Stage changes arrive as control commands and take effect for an
instrument at its next tick whose event time reaches the command's ``effective_ts_event_ns`` (or
its next tick at all when unset); each application is reported with the tick it happened at,
so a backtest given the same commands decides identically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from river import base

from tickwise.schemas.decisions import (
    ControlCommand,
    FeatureVector,
    Side,
    Signal,
    Stage,
)
from tickwise.streams.config import DecisionConfig, EvaluationConfig, LabelConfig, ModelConfig
from tickwise.streams.operators.control import MODEL_COMMANDS
from tickwise.streams.operators.decision import MoveEstimate
from tickwise.streams.operators.labels import LabelQueue, horizon_ns
from tickwise.streams.operators.models.evaluation import Prequential
from tickwise.streams.operators.models.explain import explain
from tickwise.streams.operators.models.shared import (
    Applied,
    Deployed,
    version_key,
)
from tickwise.streams.operators.models.zoo import (
    LINEAR_KINDS,
    build_estimator,
    final_step,
    is_classifier,
    model_inputs,
    scales_inside,
)
from tickwise.streams.operators.state import InstrumentStateMixin

ROLLBACK_DEPTH = 3


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """Every signal of the tick (shadow included) and the one, if any, that goes to risk."""

    signals: tuple[Signal, ...] = ()
    routed: Signal | None = None
    applied: tuple[Applied, ...] = ()


@dataclass
class _Slot:
    deployed: Deployed
    estimator: base.Estimator
    prequential: Prequential
    classifier: bool
    n_trained: int = 0
    n_dead_zone: int = 0


@dataclass
class _Instrument:
    labels: LabelQueue
    slots: dict[str, _Slot] = field(default_factory=dict)
    rollback: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    means: dict[str, tuple[int, float]] = field(default_factory=dict)
    move: MoveEstimate | None = None  # typical |forward return| over the horizon, bps


class ModelStage(InstrumentStateMixin):
    """Per-instrument model versions with delayed labels, stages and prequential metrics.

    One estimator per instrument and version, because the instrument is the partition key:
    each then sees its ticks in the same order live and in replay, so scores are bit-identical.

    Examples
    --------
    >>> from tickwise.schemas.decisions import FeatureVector
    >>> stage = ModelStage(ModelConfig(warmup_labels=1), LabelConfig(horizon_s=1.0))
    >>> fv = lambda ms, p: FeatureVector(instrument="ES", tick_id=str(ms),
    ...                                  ts_event_ns=ms * 10**6, price=p, values={"x": p - 100})
    >>> stage.on_features(fv(0, 100.0)).routed is None     # nothing learned yet: no signal
    True
    >>> stage.on_features(fv(500, 101.0)).routed is None   # t=0 label not mature before 1 s
    True
    >>> stage.on_features(fv(2000, 99.0)).routed.n_trained  # at 2 s it matured (up), learned
    1
    """

    def __init__(
        self,
        model: ModelConfig,
        label: LabelConfig,
        evaluation: EvaluationConfig | None = None,
        decision: DecisionConfig | None = None,
    ) -> None:
        self.config = model
        self.label = label
        self.evaluation = evaluation or EvaluationConfig()
        self.move_tau_ns = (decision or DecisionConfig()).move_tau_s * 1e9
        self.horizon_ns = horizon_ns(label.horizon_s)
        self.initial = Deployed(model)
        build_estimator(model, label.task)  # fail at start-up on a kind/task mismatch
        self.commands: list[ControlCommand] = []
        self._state: dict[str, _Instrument] = {}

    # --- control -------------------------------------------------------------------------

    def submit(self, command: ControlCommand) -> bool:
        """Queue a control command; each instrument applies it at its next eligible tick.

        Returns False for a command seen before or not a model command.
        """
        if command.command in MODEL_COMMANDS and all(
            c.command_id != command.command_id for c in self.commands
        ):
            self.commands.append(command)
            return True
        return False

    def _slot(self, deployed: Deployed) -> _Slot:
        estimator = build_estimator(deployed.model, self.label.task)
        return _Slot(
            deployed,
            estimator,
            Prequential(self.label.task, self.evaluation.window_s),
            is_classifier(estimator),
        )

    def _apply(self, st: _Instrument, cmd: ControlCommand, instrument: str) -> str:
        key = version_key(cmd.model_id or "", cmd.model_version or 0)
        if cmd.command == "rollback":
            current = [k for k, s in st.slots.items() if s.deployed.stage == Stage.PRODUCTION]
            if key in st.slots and key not in current:  # the version the registry named
                back = key
                if key in st.rollback:
                    st.rollback.remove(key)
            elif st.rollback:
                back = st.rollback.pop()
            else:
                return "nothing to roll back to"
            for k in current:
                st.slots[k].deployed = _restage(st.slots[k].deployed, Stage.RETIRED)
            st.slots[back].deployed = _restage(st.slots[back].deployed, Stage.PRODUCTION)
            return f"production {','.join(current)} -> {back}"
        stage = cmd.stage or Stage.PRODUCTION
        if key not in st.slots:
            if cmd.model_spec is None:
                return f"unknown version {key}: ignored"
            spec = ModelConfig.model_validate(cmd.model_spec)
            st.slots[key] = self._slot(Deployed(spec, Stage.RETIRED))
        deployed = st.slots[key].deployed
        if stage == Stage.PRODUCTION:
            if key in st.rollback:
                st.rollback.remove(key)
            for k, s in st.slots.items():
                if k != key and s.deployed.stage == Stage.PRODUCTION:
                    s.deployed = _restage(s.deployed, Stage.RETIRED)
                    st.rollback = [*st.rollback[-(ROLLBACK_DEPTH - 1) :], k]
        st.slots[key].deployed = Deployed(
            deployed.model,
            stage,
            tuple(cmd.instruments) if cmd.instruments else None,
            cmd.capital_fraction if cmd.capital_fraction is not None else 1.0,
        )
        return f"{key} -> {stage}"

    def _control(self, st: _Instrument, fv: FeatureVector) -> tuple[Applied, ...]:
        out = []
        for cmd in self.commands:
            if cmd.command_id in st.applied:
                continue
            if cmd.scope not in ("global", fv.instrument):
                continue
            if cmd.effective_ts_event_ns is not None and fv.ts_event_ns < cmd.effective_ts_event_ns:
                break  # commands apply in order: a later one waits for this one
            detail = self._apply(st, cmd, fv.instrument)
            st.applied.append(cmd.command_id)
            out.append(Applied.of(cmd, fv.instrument, fv.tick_id, fv.ts_event_ns, detail))
        return tuple(out)

    # --- the hot path --------------------------------------------------------------------

    def on_features(self, fv: FeatureVector) -> ModelOutput:
        """Apply due control, learn every label that matured before ``fv``, then score it."""
        st = self._state.get(fv.instrument)
        if st is None:
            st = self._state[fv.instrument] = _Instrument(
                LabelQueue(self.horizon_ns, self.label.dead_zone_bps, self.label.task)
            )
            st.slots[self.initial.key] = self._slot(self.initial)
        applied = self._control(st, fv) if self.commands else ()
        learning = self._learning(st)
        self._learn(st, learning, fv.ts_event_ns)
        x = fv.values
        _update_means(st.means, x)
        predictions: dict[str, Any] = {}
        signals = []
        routed: Signal | None = None
        for key, slot in learning.items():
            # river's linear pipelines: standardise once, for the score and for its explanation
            # (the compiled learners standardise inside; the explanation asks them when it needs)
            linear = slot.deployed.model.kind in LINEAR_KINDS
            z = (
                model_inputs(slot.estimator, x)
                if linear and not scales_inside(slot.estimator)
                else None
            )
            prediction = _predict(slot, x, z)
            predictions[key] = prediction
            dep = slot.deployed
            if dep.stage == Stage.RETIRED or slot.n_trained < dep.model.warmup_labels:
                continue
            if (
                dep.stage == Stage.CANARY
                and dep.instruments
                and fv.instrument not in dep.instruments
            ):
                continue
            signal = self._signal(slot, st, fv, prediction, z)
            signals.append(signal)
            if dep.stage == Stage.CANARY or (dep.stage == Stage.PRODUCTION and routed is None):
                routed = signal
        st.labels.add(fv.ts_event_ns, fv.price, x, predictions)
        return ModelOutput(tuple(signals), routed, applied)

    def on_price(self, instrument: str, ts_event_ns: int, price: float) -> None:
        """A tick between two decisions (``features.sample_ms``): learn the labels that matured
        before it, then take its price as the latest, exactly as a scored tick would. So a
        label still ends at the last price at or before its horizon, whatever the cadence."""
        st = self._state.get(instrument)
        if st is None:
            return  # nothing scored yet, so nothing to label
        if st.labels.due(ts_event_ns):
            self._learn(st, self._learning(st), ts_event_ns)
        st.labels.last_price = price

    def _learning(self, st: _Instrument) -> dict[str, _Slot]:
        """The versions that learn: all but the retired, except those kept for a rollback."""
        return {
            k: s
            for k, s in st.slots.items()
            if s.deployed.stage != Stage.RETIRED or k in st.rollback
        }

    def _learn(self, st: _Instrument, learning: dict[str, _Slot], now_ns: int) -> None:
        """Score and learn every label that matured before ``now_ns``, oldest first; each
        also moves the typical absolute move (a dead-zone move counts as none, as it has no
        direction to bet on)."""
        for label in st.labels.mature(now_ns):
            if st.move is None:
                st.move = MoveEstimate(self.move_tau_ns)
            st.move.add(label.ts_event_ns, 0.0 if label.target is None else abs(label.forward_bps))
            for key, slot in learning.items():
                if label.target is None:
                    slot.n_dead_zone += 1
                    continue
                if label.predictions.get(key) not in (None, {}):  # as river: no guess, no score
                    slot.prequential.update(label.ts_event_ns, label.target, label.predictions[key])
                slot.estimator.learn_one(label.x, label.target)
                slot.n_trained += 1

    def _signal(
        self,
        slot: _Slot,
        st: _Instrument,
        fv: FeatureVector,
        prediction: Any,
        inputs: dict[str, float] | None = None,
    ) -> Signal:
        dep = slot.deployed
        cfg = dep.model
        if slot.classifier:
            score = float(prediction.get(True, 0.5)) if prediction else 0.5
            edge, band = score - 0.5, cfg.threshold
            confidence = min(1.0, abs(edge) * 2.0)
        else:
            score = 0.0 if prediction is None else float(prediction)
            edge, band = score, cfg.threshold_bps
            confidence = min(1.0, abs(score) / (abs(score) + cfg.threshold_bps or 1.0))
        side = Side.BUY if edge > band else Side.SELL if edge < -band else Side.FLAT
        means = {k: m for k, (_, m) in st.means.items()}
        explanation = explain(
            cfg.kind,
            slot.estimator,
            lambda x: _score(slot, x),
            fv.values,
            means,
            cfg.top_k_explain,
            inputs,
        )
        return Signal(
            signal_id=f"sig-{fv.tick_id}-{cfg.model_id}-v{cfg.model_version}",
            instrument=fv.instrument,
            tick_id=fv.tick_id,
            ts_event_ns=fv.ts_event_ns,
            model_id=cfg.model_id,
            model_version=cfg.model_version,
            score=score,
            side=side,
            confidence=confidence,
            n_trained=slot.n_trained,
            explanation=explanation,
            task="classification" if slot.classifier else "regression",
            stage=dep.stage,
            capital_fraction=dep.capital_fraction if dep.stage == Stage.CANARY else 1.0,
        )

    def move_bps(self, instrument: str) -> float:
        """The typical |forward return| over the horizon on ``instrument``, in bps, from the
        labels matured so far (NaN before the first)."""
        st = self._state.get(instrument)
        return st.move.bps if st is not None and st.move is not None else math.nan

    def deployment(self, instrument: str, key: str) -> Deployed:
        """Version ``key`` as deployed on ``instrument`` (its config, stage, capital)."""
        return self._state[instrument].slots[key].deployed

    def take_over(
        self,
        instrument: str,
        labels: LabelQueue,
        estimator: base.Estimator,
        prequential: Any,
        counts: tuple[int, int],
        means: dict[str, tuple[int, float]],
        move: MoveEstimate | None,
        applied: list[str],
    ) -> None:
        """Go on from another stage's state of ``instrument`` (the columnar engine's kernel,
        which runs the configured version alone, in production): its queued labels, learner,
        prequential figures (``update``/``report`` as ``Prequential``), labels learned and in
        the dead zone (``counts``), feature means, typical move and the ids of the commands
        it applied."""
        st = self._state[instrument] = _Instrument(labels)
        n_trained, n_dead_zone = counts
        st.slots[self.initial.key] = _Slot(
            self.initial, estimator, prequential, is_classifier(estimator), n_trained, n_dead_zone
        )
        st.means, st.move, st.applied = means, move, list(applied)

    # --- reports -------------------------------------------------------------------------

    def metrics(self, instrument: str) -> dict[str, dict[str, Any]]:
        """Prequential figures of every version on ``instrument``, by version key."""
        st = self._state.get(instrument)
        if st is None:
            return {}
        return {
            key: {"stage": s.deployed.stage, "n_trained": s.n_trained, **s.prequential.report()}
            for key, s in st.slots.items()
        }

    def stages(self, instrument: str) -> dict[str, str]:
        """Stage of every version known on ``instrument``."""
        st = self._state.get(instrument)
        return {k: s.deployed.stage for k, s in st.slots.items()} if st else {}


def _restage(deployed: Deployed, stage: Stage) -> Deployed:
    return Deployed(deployed.model, stage, deployed.instruments, deployed.capital_fraction)


def _predict(slot: _Slot, x: dict[str, float], inputs: dict[str, float] | None = None) -> Any:
    """The slot's prediction for ``x``; ``inputs``, when given, are ``x`` already through the
    pipeline's transformers (``model_inputs``), so only the final step runs."""
    estimator = slot.estimator if inputs is None else final_step(slot.estimator)
    x = x if inputs is None else inputs
    if slot.classifier:
        return dict(estimator.predict_proba_one(x))
    y = estimator.predict_one(x)
    return float(y) if y is not None and math.isfinite(y) else None


def _score(slot: _Slot, x: dict[str, float]) -> float:
    prediction = _predict(slot, x)
    if slot.classifier:
        return float(prediction.get(True, 0.5)) if prediction else 0.5
    return 0.0 if prediction is None else float(prediction)


def _update_means(means: dict[str, tuple[int, float]], x: dict[str, float]) -> None:
    for name, value in x.items():
        n, m = means.get(name, (0, 0.0))
        n += 1
        means[name] = (n, m + (value - m) / n)
