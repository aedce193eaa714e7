"""The online model: score every tick now, learn from it once its label has matured.

A label is the direction of the forward return over ``horizon_s`` of event time. It matures when
a tick arrives whose timestamp is beyond ``t + horizon``; only then does the model learn from the
features it saw at ``t``. Nothing here can see a price from after the tick it scores.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from river import linear_model, optim, preprocessing

from schemas.decisions import Contribution, FeatureVector, Side, Signal
from streams.config import LabelConfig, ModelConfig
from streams.operators.state import InstrumentStateMixin

BPS = 1e4
# Standardised inputs are clipped: a feature that was constant during warm-up (a zero variance
# estimate) must not turn one unusual tick into a 300-sigma input and a saturated score.
Z_CLIP = 5.0


def _standardise(scaler: preprocessing.StandardScaler, x: dict[str, float]) -> dict[str, float]:
    return {k: max(-Z_CLIP, min(Z_CLIP, z)) for k, z in scaler.transform_one(x).items()}


@dataclass
class _InstrumentModel:
    scaler: preprocessing.StandardScaler
    classifier: linear_model.LogisticRegression
    pending: deque[tuple[int, float, dict[str, float]]] = field(default_factory=deque)
    last_price: float = math.nan
    n_trained: int = 0
    n_dead_zone: int = 0


class OnlineClassifier(InstrumentStateMixin):
    """Per-instrument river logistic regression with delayed, event-time labels.

    One model per instrument, because the instrument is the partition key: each model then sees
    its ticks in the same order live and in replay, so its scores are bit-identical.

    Examples
    --------
    >>> from schemas.decisions import FeatureVector
    >>> m = OnlineClassifier(ModelConfig(warmup_labels=1), LabelConfig(horizon_s=1.0))
    >>> fv = lambda ms, p: FeatureVector(instrument="ES", tick_id=str(ms),
    ...                                  ts_event_ns=ms * 10**6, price=p, values={"x": p - 100})
    >>> m.on_features(fv(0, 100.0)) is None     # nothing learned yet: no signal
    True
    >>> m.on_features(fv(500, 101.0)) is None   # the t=0 label is not mature before t=1s
    True
    >>> m.on_features(fv(2000, 99.0)).n_trained  # at t=2s it matures at 101 (up), is learned
    1
    """

    def __init__(self, model: ModelConfig, label: LabelConfig) -> None:
        self.config = model
        self.horizon_ns = int(label.horizon_s * 1e9)
        self.dead_zone_bps = label.dead_zone_bps
        self._state: dict[str, _InstrumentModel] = {}

    def _new_model(self) -> _InstrumentModel:
        classifier = linear_model.LogisticRegression(
            optimizer=optim.SGD(self.config.learning_rate), l2=self.config.l2
        )
        return _InstrumentModel(preprocessing.StandardScaler(), classifier)

    def on_features(self, fv: FeatureVector) -> Signal | None:
        """Learn every label that matured before ``fv``, then score ``fv``.

        Returns None while the instrument's model is still warming up.
        """
        m = self._state.get(fv.instrument)
        if m is None:
            m = self._state[fv.instrument] = self._new_model()
        self._learn_matured(m, fv.ts_event_ns)
        m.last_price = fv.price
        x = fv.values
        m.pending.append((fv.ts_event_ns, fv.price, x))
        if m.n_trained < self.config.warmup_labels:
            return None
        return self._score(m, fv)

    def _learn_matured(self, m: _InstrumentModel, now_ns: int) -> None:
        pending = m.pending
        while pending and pending[0][0] + self.horizon_ns < now_ns:
            _, entry_price, x = pending.popleft()
            forward_bps = (math.log(m.last_price) - math.log(entry_price)) * BPS
            if abs(forward_bps) <= self.dead_zone_bps or forward_bps == 0.0:
                m.n_dead_zone += 1
                continue
            m.scaler.learn_one(x)
            m.classifier.learn_one(_standardise(m.scaler, x), forward_bps > 0.0)
            m.n_trained += 1

    def _score(self, m: _InstrumentModel, fv: FeatureVector) -> Signal:
        cfg = self.config
        scaled = _standardise(m.scaler, fv.values)
        score = m.classifier.predict_proba_one(scaled)[True]
        if score > 0.5 + cfg.threshold:
            side = Side.BUY
        elif score < 0.5 - cfg.threshold:
            side = Side.SELL
        else:
            side = Side.FLAT
        weights = m.classifier.weights
        ranked = sorted(
            ((weights.get(name, 0.0) * z, name) for name, z in scaled.items()),
            key=lambda c: (-abs(c[0]), c[1]),
        )[: cfg.top_k_explain]
        contributions = [
            Contribution(
                feature=name, value=fv.values[name], weight=weights.get(name, 0.0), contribution=c
            )
            for c, name in ranked
        ]
        return Signal(
            signal_id=f"sig-{fv.tick_id}-{cfg.model_id}-v{cfg.model_version}",
            instrument=fv.instrument,
            tick_id=fv.tick_id,
            ts_event_ns=fv.ts_event_ns,
            model_id=cfg.model_id,
            model_version=cfg.model_version,
            score=score,
            side=side,
            confidence=min(1.0, abs(score - 0.5) * 2.0),
            n_trained=m.n_trained,
            explanation=contributions,
        )
