"""The compiled linear learners against their oracle, river, on the same streams.

Predictions, weights, intercepts and the scaler's statistics must agree within 1e-9 (relative,
absolute near zero) for any interleaving of predictions and learning, with and without L2 and
the zoo's input clip; and the batch kernel must equal the per-row calls bit for bit, whatever
the batch boundaries and however many models share the state.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import base, compose, linear_model, optim, preprocessing

from tickwise.schemas.ticks import TICK_ADAPTER
from tickwise.streams.config import FeatureConfig, LabelConfig, ModelConfig
from tickwise.streams.operators import FeatureEngine
from tickwise.streams.operators.models import ModelStage
from tickwise.streams.operators.models.linear import (
    CompiledLinear,
    CompiledLinearRegression,
    CompiledLogisticRegression,
)
from tickwise.streams.operators.models.linear_kernel import (
    LOG,
    SQUARED,
    learn_one,
    new_state,
    predict_learn,
    predict_one,
    score_scaled,
    transform_one,
)
from tickwise.streams.operators.models.zoo import Z_CLIP, clip_z
from tickwise.streams.sources import synthetic

TOL = 1e-9
NAMES = ("a", "b", "c", "d")


def close(a: float, b: float) -> bool:
    """Equal within 1e-9, relative to the larger magnitude (absolute below 1); NaN equals NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= TOL * max(1.0, abs(a), abs(b))


def theirs(task: str, lr: float, l2: float, z_clip: float) -> compose.Pipeline:
    """river's pipeline the compiled learner must equal (the zoo's clip when ``z_clip``)."""
    steps: list[Any] = [preprocessing.StandardScaler()]
    if z_clip != math.inf:
        steps.append(compose.FuncTransformer(clip_z))
    cls = (
        linear_model.LogisticRegression
        if task == "classification"
        else linear_model.LinearRegression
    )
    return compose.Pipeline(*steps, cls(optimizer=optim.SGD(lr), l2=l2))


def ours(task: str, lr: float, l2: float, z_clip: float) -> CompiledLinear:
    cls = CompiledLogisticRegression if task == "classification" else CompiledLinearRegression
    return cls(learning_rate=lr, l2=l2, z_clip=z_clip)


def score(model: base.Estimator, x: dict[str, float]) -> float:
    if isinstance(model, base.Classifier):
        return float(model.predict_proba_one(x)[True])
    return float(model.predict_one(x))


def assert_same_state(mine: CompiledLinear, river_model: compose.Pipeline) -> None:
    """Weights, intercept and the scaler's counts, means and variances, feature by feature."""
    scaler = river_model["StandardScaler"]
    final = list(river_model.steps.values())[-1]
    assert set(mine.weights) == set(final.weights)
    for name, w in final.weights.items():
        assert close(mine.weights[name], w), (name, mine.weights[name], w)
    assert close(mine.intercept, final.intercept)
    col = {n: j for j, n in enumerate(mine.names)}
    for name, count in scaler.counts.items():
        j = col[name]
        assert mine.state.counts[0, j] == count
        assert close(mine.state.means[0, j], scaler.means[name])
        assert close(mine.state.variances[0, j], scaler.vars[name])


# --- hypothesis streams: any interleaving of predict, learn and both on one row -------------

values = st.one_of(
    st.sampled_from([0.0, 1.0, -2.5]),  # repeats: zero variance, then a first deviation
    st.floats(-50.0, 50.0, allow_nan=False),
)
rows = st.fixed_dictionaries({}, optional={n: values for n in NAMES})
ops = st.sampled_from(["predict", "learn", "both"])


@st.composite
def streams(draw: st.DrawFn, task: str) -> list[tuple[str, dict[str, float], Any]]:
    target = st.booleans() if task == "classification" else st.floats(-20.0, 20.0)
    return draw(st.lists(st.tuples(ops, rows, target), min_size=1, max_size=60))


def check_stream(
    task: str, events: list[tuple[str, dict[str, float], Any]], lr: float, l2: float, z: float
) -> None:
    mine, river_model = ours(task, lr, l2, z), theirs(task, lr, l2, z)
    for i, (op, x, y) in enumerate(events):
        if op in ("predict", "both"):
            assert close(score(mine, x), score(river_model, x)), (i, x)
            assert mine.transform_one(x).keys() == x.keys()
        if op in ("learn", "both"):
            mine.learn_one(x, y)
            river_model.learn_one(x, y)
    assert_same_state(mine, river_model)


@settings(max_examples=150, deadline=None)
@given(
    events=streams("classification"),
    lr=st.sampled_from([0.001, 0.01, 0.1, 0.5]),
    l2=st.sampled_from([0.0, 1e-4, 0.05]),
    z_clip=st.sampled_from([math.inf, Z_CLIP]),
)
def test_logistic_equals_river_on_any_stream(
    events: list[tuple[str, dict[str, float], Any]], lr: float, l2: float, z_clip: float
) -> None:
    check_stream("classification", events, lr, l2, z_clip)


@settings(max_examples=150, deadline=None)
@given(
    events=streams("regression"),
    lr=st.sampled_from([0.001, 0.01, 0.03]),
    l2=st.sampled_from([0.0, 1e-4, 0.05]),
    z_clip=st.sampled_from([math.inf, Z_CLIP]),
)
def test_linear_regression_equals_river_on_any_stream(
    events: list[tuple[str, dict[str, float], Any]], lr: float, l2: float, z_clip: float
) -> None:
    check_stream("regression", events, lr, l2, z_clip)


# --- the batch kernel: many models, any batch boundaries, row calls and river ----------------


@settings(max_examples=60, deadline=None)
@given(
    task=st.sampled_from(["classification", "regression"]),
    data=st.data(),
    n_models=st.integers(1, 3),
    l2=st.sampled_from([0.0, 0.01]),
)
def test_batches_equal_row_calls_and_river_whatever_the_boundaries(
    task: str, data: st.DataObject, n_models: int, l2: float
) -> None:
    n = data.draw(st.integers(1, 80))
    block = st.lists(st.floats(-10.0, 10.0), min_size=n * len(NAMES), max_size=n * len(NAMES))
    X = np.array(data.draw(block)).reshape(n, len(NAMES))
    X[data.draw(st.lists(st.integers(0, n - 1), max_size=5)), 2] = np.nan  # absent in some rows
    y = (
        np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.float64)
        if task == "classification"
        else np.array(data.draw(st.lists(st.floats(-5.0, 5.0), min_size=n, max_size=n)))
    )
    model = np.array(data.draw(st.lists(st.integers(0, n_models - 1), min_size=n, max_size=n)))
    predict = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    learn = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    cuts = sorted(set(data.draw(st.lists(st.integers(1, n), max_size=6))) | {n})
    loss = LOG if task == "classification" else SQUARED

    def fresh() -> Any:
        return new_state(n_models, len(NAMES), loss, learning_rate=0.05, l2=l2, z_clip=Z_CLIP)

    whole, whole_out = fresh(), np.empty(n)
    predict_learn(*whole.learner(), model, X, y, predict, learn, whole_out)

    split, split_out, start = fresh(), np.empty(n), 0
    for stop in cuts:
        sl = slice(start, stop)
        predict_learn(
            *split.learner(), model[sl], X[sl], y[sl], predict[sl], learn[sl], split_out[sl]
        )
        start = stop
    assert split_out.tobytes() == whole_out.tobytes()
    assert np.isnan(whole_out[~predict]).all(), "a row that does not predict outputs NaN"
    assert all(a.tobytes() == b.tobytes() for a, b in zip(split, whole, strict=True))

    rowwise = fresh()
    for i in range(n):
        if predict[i]:
            p = predict_one(*rowwise.predictor(), model[i], X[i])
            assert p == whole_out[i] or (math.isnan(p) and math.isnan(whole_out[i]))
            # the engine's one pass from the scales equals predict_one and transform_one
            var = rowwise.variances[model[i]].tolist()
            sd = np.array([math.pow(v, 0.5) if v >= 0.0 else math.nan for v in var])
            z, want = np.empty(len(NAMES)), np.empty(len(NAMES))
            st_ = rowwise
            q = score_scaled(
                st_.hyper, st_.weights, st_.intercept, st_.means, sd, model[i], X[i], z
            )
            transform_one(*rowwise.predictor(), model[i], X[i], want)
            assert np.array([q]).tobytes() == np.array([p]).tobytes()
            assert z.tobytes() == want.tobytes()
        if learn[i]:
            learn_one(*rowwise.learner(), model[i], X[i], y[i])
    assert all(a.tobytes() == b.tobytes() for a, b in zip(rowwise, whole, strict=True))

    pipelines = [theirs(task, 0.05, l2, Z_CLIP) for _ in range(n_models)]
    for i in range(n):
        x = {name: float(v) for name, v in zip(NAMES, X[i], strict=True) if not math.isnan(v)}
        target: Any = bool(y[i]) if task == "classification" else float(y[i])
        if predict[i]:
            assert close(whole_out[i], score(pipelines[model[i]], x)), i
        if learn[i]:
            pipelines[model[i]].learn_one(x, target)
    for m, pipe in enumerate(pipelines):
        final = list(pipe.steps.values())[-1]
        for j, name in enumerate(NAMES):
            assert close(whole.weights[m, j], final.weights.get(name, 0.0)), (m, name)
        assert close(whole.intercept[m], final.intercept)


def test_a_row_wider_than_the_state_is_refused() -> None:
    state = new_state(1, 2, LOG)
    with pytest.raises(ValueError, match="different numbers of features"):
        predict_one(*state.predictor(), 0, np.zeros(3))


# --- a realistic stream: the model stage on tickwise's features, both engines ----------------


def feature_vectors(count: int) -> list[Any]:
    engine = FeatureEngine(FeatureConfig())
    ticks = (
        TICK_ADAPTER.validate_json(r.payload)
        for r in synthetic(seed=5, count=count, instruments=["ES"])
    )
    return [fv for fv in map(engine.on_tick, ticks) if fv is not None]


def test_the_model_stage_signals_and_explains_as_with_river() -> None:
    fvs = feature_vectors(2500)
    for task, kind in (("classification", "logistic"), ("regression", "linear")):
        for l2 in (0.0, 0.01):
            label = LabelConfig(horizon_s=1.0, task=task)
            runs = {}
            for engine in ("compiled", "river"):
                cfg = ModelConfig(kind=kind, engine=engine, l2=l2, warmup_labels=20)
                stage = ModelStage(cfg, label)
                runs[engine] = (stage, [stage.on_features(fv) for fv in fvs])
            (stage, mine), (river_stage, river_out) = runs["compiled"], runs["river"]
            signals = [(a.routed, b.routed) for a, b in zip(mine, river_out, strict=True)]
            pairs = [(a, b) for a, b in signals if a is not None or b is not None]
            assert len(pairs) > 1000, "the stream must warm the model up"
            for a, b in pairs:
                assert a is not None and b is not None
                assert close(a.score, b.score), (a.tick_id, a.score, b.score)
                assert a.side == b.side and a.n_trained == b.n_trained
                assert [c.feature for c in a.explanation] == [c.feature for c in b.explanation]
                for ca, cb in zip(a.explanation, b.explanation, strict=True):
                    assert ca.value == cb.value
                    assert close(ca.weight, cb.weight) and close(ca.contribution, cb.contribution)
            slot = stage.export_state("ES").slots["logreg:v1"]
            river_slot = river_stage.export_state("ES").slots["logreg:v1"]
            assert isinstance(slot.estimator, CompiledLinear)
            assert isinstance(river_slot.estimator, compose.Pipeline)
            assert_same_state(slot.estimator, river_slot.estimator)
            assert (
                stage.metrics("ES")["logreg:v1"]["n"] == river_stage.metrics("ES")["logreg:v1"]["n"]
            )


FINITE = st.floats(-1e3, 1e3, allow_nan=False) | st.sampled_from([0.0, -0.0, 1e-300])
LEARNED = st.dictionaries(st.sampled_from("abcdef"), FINITE | st.just(math.nan), min_size=1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(LEARNED, min_size=1, max_size=30),
    st.dictionaries(st.sampled_from("abcdefg"), FINITE, min_size=1),  # contributions are finite
    st.booleans(),
    st.integers(1, 8),
)
def test_a_compiled_learners_explanation_from_its_arrays_equals_the_dict_path(
    history: list[dict[str, float]], x: dict[str, float], classify: bool, k: int
) -> None:
    """``explain_linear`` ranks a compiled learner's terms from its arrays; the same
    contributions as weights times ``transform_one`` through dicts, ties and NaN included."""
    from tickwise.streams.operators.models.explain import explain_linear
    from tickwise.streams.operators.models.zoo import model_inputs

    model = CompiledLogisticRegression(0.1) if classify else CompiledLinearRegression(0.01)
    for n, row in enumerate(history):
        model.learn_one(row, bool(n % 2) if classify else float(n % 5))
    fast = explain_linear(model, x, k)
    slow = explain_linear(model, x, k, inputs=model_inputs(model, x))
    assert [c.to_bytes() for c in fast] == [c.to_bytes() for c in slow]
