"""Prequential figures agree with river's own ``progressive_val_score`` on the same stream.

The model stage predicts every tick when it arrives and scores that prediction when the
label matures (strictly after ``t + H``). river reveals an answer once ``t + delay <= now``,
so the same rule is ``delay = H + 1 ns`` on integer nanosecond moments.
"""

from __future__ import annotations

import pytest
from river import compose, evaluate, metrics

from tickwise.schemas.ticks import TICK_ADAPTER
from tickwise.streams.config import EvaluationConfig, FeatureConfig, LabelConfig, ModelConfig
from tickwise.streams.operators import FeatureEngine
from tickwise.streams.operators.labels import NO_DIRECTION, UP, Label, horizon_ns, outcome_one
from tickwise.streams.operators.models import ModelStage, build_estimator, version_key
from tickwise.streams.operators.models.evaluation import CLASSIFIER_METRICS, REGRESSOR_METRICS
from tickwise.streams.sources import synthetic

H_S = 0.5
WINDOW_S = 20.0


def feature_stream(count: int) -> list:
    engine = FeatureEngine(FeatureConfig())
    ticks = [TICK_ADAPTER.validate_json(r.payload) for r in synthetic(7, count, ["ES"])]
    return [engine.on_tick(t) for t in ticks]


def run_stage(fvs: list, model: ModelConfig, label: LabelConfig) -> tuple[ModelStage, list]:
    """Drive the stage and record every label it learned (in learning order)."""
    stage = ModelStage(model, label, EvaluationConfig(window_s=WINDOW_S))
    learned: list[Label] = []
    for fv in fvs:
        st = stage.export_state("ES")
        if st is not None:  # peek at what matures now, exactly as the stage will see it
            pending = [p for p in st.labels.pending if p[0] + st.labels.horizon_ns < fv.ts_event_ns]
            learned.extend(pending)
        stage.on_features(fv)
    return stage, learned


CASES = [
    ("classification", ModelConfig(kind="logistic")),
    ("classification", ModelConfig(kind="hoeffding_tree", grace_period=50)),
    ("classification", ModelConfig(kind="pa")),
    ("classification", ModelConfig(kind="mlp")),
    ("regression", ModelConfig(kind="linear")),
    ("regression", ModelConfig(kind="arf", n_models=2, grace_period=50)),
]


@pytest.mark.parametrize(("task", "model"), CASES, ids=lambda c: getattr(c, "kind", c))
def test_stage_metrics_equal_river_progressive_val_score(task: str, model: ModelConfig) -> None:
    label = LabelConfig(horizon_s=H_S, dead_zone_bps=0.5, task=task)
    fvs = feature_stream(900)
    stage, learned = run_stage(fvs, model, label)
    report = stage.metrics("ES")[version_key(model.model_id, model.model_version)]

    # The same labelled stream for river: the ticks whose label matured, dead zone left out
    # (the stage neither learns nor scores those, and dropping them moves no answer past a
    # question, since answers only wait for later questions).
    rows = []
    for ts, entry, x, _ in learned:
        later = [fv for fv in fvs if fv.ts_event_ns <= ts + horizon_ns(H_S)]
        forward, sign = outcome_one(entry, later[-1].price, label.dead_zone_bps)
        if task == "classification":
            if sign == NO_DIRECTION:
                continue
            rows.append(({**x, "__t": ts}, sign == UP))
        else:
            rows.append(({**x, "__t": ts}, forward))
    assert len(rows) > 150

    names = CLASSIFIER_METRICS if task == "classification" else REGRESSOR_METRICS
    delay = horizon_ns(H_S) + 1
    for name in names:
        oracle = compose.Discard("__t") | build_estimator(model, task)
        expected = evaluate.progressive_val_score(
            rows, oracle, getattr(metrics, name)(), moment="__t", delay=delay
        )
        assert report["overall"][name] == pytest.approx(expected.get(), rel=1e-12), name

    # Rolling window: the same figure over the labels of the last WINDOW_S event seconds.
    oracle = compose.Discard("__t") | build_estimator(model, task)
    steps = list(
        evaluate.iter_progressive_val_score(
            rows,
            oracle,
            metrics.MAE() if task == "regression" else metrics.LogLoss(),
            moment="__t",
            delay=delay,
            yield_predictions=True,
        )
    )
    preds = [s["Prediction"] for s in steps]
    # river scores no prediction made before the model learned anything; neither do we
    assert report["n"] == sum(p not in (None, {}) for p in preds) > 200
    last_ts = rows[-1][0]["__t"]
    in_window = [
        (y, p)
        for (x, y), p in zip(rows, preds, strict=True)
        if x["__t"] > last_ts - int(WINDOW_S * 1e9) and p not in (None, {})
    ]
    assert report["window_n"] == len(in_window) > 0
    metric = metrics.MAE() if task == "regression" else metrics.LogLoss()
    for y, p in in_window:
        metric.update(y, p)
    key = "MAE" if task == "regression" else "LogLoss"
    assert report["window"][key] == pytest.approx(metric.get(), rel=1e-12)
