"""The engine's model stage against ``ModelStage`` tick by tick (the oracle), and batch
invariance of its scores and state."""

from __future__ import annotations

import json
from itertools import islice, pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stubs import ES_TRADES, S

from tests.oracle.validator import Validator
from tickwise.schemas.ticks import CleanTick, SourceRef
from tickwise.streams.config import (
    EvaluationConfig,
    FeatureConfig,
    LabelConfig,
    ModelConfig,
    ValidationConfig,
)
from tickwise.streams.engine import prequential
from tickwise.streams.engine.batch import SymbolTable, decode
from tickwise.streams.engine.features import BatchFeatures
from tickwise.streams.engine.models import START_CAPACITY, BatchModel, ModelColumns
from tickwise.streams.engine.prequential import N_COUNTS, score_label
from tickwise.streams.engine.validate import BatchValidator
from tickwise.streams.operators.features.engine import FeatureEngine
from tickwise.streams.operators.models import ModelStage
from tickwise.streams.operators.models.evaluation import Prequential
from tickwise.streams.sources import ColumnMap, read_csv, synthetic

CLASSIFY = (ModelConfig(warmup_labels=0), LabelConfig(horizon_s=2.0, dead_zone_bps=0.5))
REGRESS = (
    ModelConfig(kind="linear", warmup_labels=0, l2=0.01),
    LabelConfig(horizon_s=1.5, task="regression"),
)


def oracle(
    payloads: list[bytes],
    fc: FeatureConfig,
    model: ModelConfig,
    label: LabelConfig,
    evaluation: EvaluationConfig | None = None,
    stages: list[ModelStage] | None = None,
    explained: list[list[tuple[str, float, float]]] | None = None,
):
    """Scores and labels learned per decision, as the per-tick pipeline computes them (the
    stage itself is appended to ``stages`` when given, and each signal's explanation, as
    (feature, weight, contribution), to ``explained``)."""
    validator, features, stage = (
        Validator(ValidationConfig()),
        FeatureEngine(fc),
        ModelStage(model, label, evaluation),
    )
    if stages is not None:
        stages.append(stage)
    scores, trained = [], []
    for i, raw in enumerate(payloads):
        (verdict,) = validator.on_raw(raw, SourceRef(topic="ticks.raw", partition=0, offset=i))
        if not isinstance(verdict, CleanTick):
            continue
        tick = verdict.tick
        fv = features.on_tick(tick)
        if fv is None:
            stage.on_price(tick.instrument, tick.ts_event_ns, tick.reference_price)
            continue
        signal = stage.on_features(fv).routed
        scores.append(signal.score)
        trained.append(signal.n_trained)
        if explained is not None:
            explained.append([(c.feature, c.weight, c.contribution) for c in signal.explanation])
    return np.array(scores), np.array(trained)


class Engine:
    def __init__(
        self,
        fc: FeatureConfig,
        model: ModelConfig,
        label: LabelConfig,
        evaluation: EvaluationConfig | None = None,
    ) -> None:
        self.symbols = SymbolTable()
        self.validator = BatchValidator(ValidationConfig(), self.symbols)
        self.features = BatchFeatures(fc, self.symbols)
        self.model = BatchModel(model, label, fc.feature_set, self.symbols, None, evaluation)

    def run(self, payloads: list[bytes], start: int) -> tuple[np.ndarray, np.ndarray]:
        out = self.columns(payloads, start)
        return out.score, out.n_trained

    def columns(self, payloads: list[bytes], start: int) -> ModelColumns:
        offsets = np.arange(start, start + len(payloads))
        batch = decode(payloads, self.symbols, "ticks.raw", 0, offsets, 16_384)
        _, verdict, _ = self.validator.run(batch)
        clean = verdict == 0
        emit, vectors = self.features.run(batch, clean)
        return self.model.run(batch, clean, emit, vectors)


def engine_run(payloads, fc, model, label, cuts=(), evaluation=None):
    engine = Engine(fc, model, label, evaluation)
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(payloads)}), len(payloads)]
    parts = [engine.run(payloads[a:b], a) for a, b in pairwise(bounds)]
    scores = np.concatenate([p[0] for p in parts])
    trained = np.concatenate([p[1] for p in parts])
    return scores, trained, engine


@pytest.mark.parametrize(("model", "label"), [CLASSIFY, REGRESS], ids=["logistic", "linear"])
@pytest.mark.parametrize("sample_ms", [0.0, 500.0])
def test_scores_equal_the_model_stage(model, label, sample_ms) -> None:
    payloads = [r.payload for r in synthetic(4, 8_000, bad_rate=0.02, regime="volatile")]
    fc = FeatureConfig(sample_ms=sample_ms)
    want_scores, want_trained = oracle(payloads, fc, model, label)
    scores, trained, _ = engine_run(payloads, fc, model, label)
    assert want_trained[-1] > 50  # it did learn
    assert trained.tolist() == want_trained.tolist()
    np.testing.assert_allclose(scores, want_scores, rtol=1e-12, atol=1e-12)


def test_real_es_trades_score_as_the_model_stage() -> None:
    if not ES_TRADES.exists():
        pytest.skip(f"real ES trades not found at {ES_TRADES}")
    rows = read_csv(ES_TRADES, ColumnMap(symbol="ES", tz="America/Chicago"))
    payloads = [r.payload for r in islice(rows, 15_000)]
    fc = FeatureConfig()
    want_scores, want_trained = oracle(payloads, fc, *CLASSIFY)
    scores, trained, _ = engine_run(payloads, fc, *CLASSIFY)
    assert trained.tolist() == want_trained.tolist()
    np.testing.assert_allclose(scores, want_scores, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("model", "label"), [CLASSIFY, REGRESS], ids=["logistic", "linear"])
def test_explanations_ranked_later_are_the_model_stages(model, label) -> None:
    """Rows asked for after the weights moved on (a later batch learned), in any order and
    more than once, name the terms the per-tick stage named at their scores."""
    payloads = [r.payload for r in synthetic(4, 6_000, bad_rate=0.02, regime="volatile")]
    fc = FeatureConfig()
    explained: list[list[tuple[str, float, float]]] = []
    oracle(payloads, fc, model, label, explained=explained)
    engine = Engine(fc, model, label)
    first = engine.columns(payloads[:3_000], 0)
    second = engine.columns(payloads[3_000:], 3_000)
    names = fc.feature_set
    got = []
    for cols in (first, second):
        n = cols.score.size
        vec = np.r_[np.arange(n)[::-1], np.arange(0, n, 7)]  # backwards, then some again
        feature, weight, contribution = cols.explanation(vec)
        by_row = {}
        for j, fs, ws, cs in zip(vec.tolist(), feature.tolist(), weight.tolist(),
                                 contribution.tolist(), strict=True):  # fmt: skip
            row = [(names[f], w, c) for f, w, c in zip(fs, ws, cs, strict=True)]
            assert by_row.setdefault(j, row) == row
        got += [by_row[j] for j in range(n)]
    assert len(got) == len(explained) > 1_000
    assert got == explained
    assert sum(any(w != 0.0 for _, w, _ in e) for e in got) > 1_000  # weights learned


def _columns(inputs: np.ndarray, weights: np.ndarray, rank: np.ndarray, top: int) -> ModelColumns:
    """Model columns carrying only an explanation's parts."""
    n = inputs.shape[0]
    zeros, ints = np.zeros(n), np.zeros(n, np.int64)
    return ModelColumns(
        zeros, ints, ints, zeros, inputs, weights, np.zeros(n, np.bool_), zeros, zeros, ints,
        ints, rank, top,
    )  # fmt: skip


TERM_VALUES = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, -2.0]) | st.floats(-1e3, 1e3)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n_features=st.integers(1, 9), n_rows=st.integers(1, 12))
def test_explanation_ranks_as_explain_linear(data, n_features: int, n_rows: int) -> None:
    """Largest |weight x input| first, equal ones by feature name (``explain_linear``'s
    sort), for any rows asked; zero weights (features not learned) and ties included."""
    words = st.text("abcxyz_", min_size=1, max_size=4)
    names = data.draw(st.lists(words, min_size=n_features, max_size=n_features, unique=True))
    matrix = st.lists(TERM_VALUES, min_size=n_features * n_rows, max_size=n_features * n_rows)
    inputs = np.array(data.draw(matrix)).reshape(n_rows, n_features)
    weights = np.array(data.draw(matrix)).reshape(n_rows, n_features)
    top = data.draw(st.integers(0, n_features))
    vec = data.draw(st.lists(st.integers(0, n_rows - 1), max_size=20))
    rank = np.array([sorted(names).index(n) for n in names], np.int64)
    feature, weight, contribution = _columns(inputs, weights, rank, top).explanation(vec)
    assert feature.shape == weight.shape == contribution.shape == (len(vec), top)
    for r, j in enumerate(vec):
        terms = [(weights[j, f] * inputs[j, f], names[f], f) for f in range(n_features)]
        want = sorted(terms, key=lambda t: (-abs(t[0]), t[1]))[:top]
        assert feature[r].tolist() == [f for *_, f in want]
        assert weight[r].tolist() == [weights[j, f] for *_, f in want]
        assert contribution[r].tolist() == [c for c, *_ in want]


PAYLOADS = [r.payload for r in synthetic(9, 1_500, bad_rate=0.03)]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, len(PAYLOADS)), max_size=12))
def test_any_split_gives_the_same_scores_and_state(cuts: list[int]) -> None:
    fc = FeatureConfig()
    whole = engine_run(PAYLOADS, fc, *CLASSIFY)
    split = engine_run(PAYLOADS, fc, *CLASSIFY, cuts=cuts)
    assert whole[2].model.q_ts.shape[1] > START_CAPACITY  # the label rings had to grow
    assert split[0].tobytes() == whole[0].tobytes()
    assert split[1].tobytes() == whole[1].tobytes()
    for a, b in zip(split[2].model.state_arrays(), whole[2].model.state_arrays(), strict=True):
        assert a.tobytes() == b.tobytes()


def test_the_engine_refuses_models_it_does_not_compile() -> None:
    with pytest.raises(NotImplementedError, match="hoeffding_tree"):
        BatchModel(ModelConfig(kind="hoeffding_tree"), LabelConfig(), ("x",), SymbolTable())
    with pytest.raises(NotImplementedError):
        BatchModel(ModelConfig(engine="river"), LabelConfig(), ("x",), SymbolTable())


# --- prequential metrics --------------------------------------------------------------------

WINDOW = EvaluationConfig(window_s=20.0)  # shorter than the streams, so labels leave it
DEAD_ZONE_FREE = (CLASSIFY[0], LabelConfig(horizon_s=2.0, dead_zone_bps=0.0))


def assert_same_metrics(engine: Engine, stage: ModelStage, instruments: list[str]) -> None:
    """``metrics()`` equal (floats identical), and the report's JSON the same text."""
    for name in [*instruments, "NOT-SEEN"]:
        got, want = engine.model.metrics(name), stage.metrics(name)
        assert got == want
        assert json.dumps(got) == json.dumps(want)  # same types: int counts, float figures


@pytest.mark.parametrize(
    ("model", "label"),
    [CLASSIFY, DEAD_ZONE_FREE, REGRESS],
    ids=["logistic-dead-zone", "logistic", "linear"],
)
@pytest.mark.parametrize("sample_ms", [0.0, 500.0])
def test_metrics_equal_the_model_stage(model, label, sample_ms) -> None:
    payloads = [r.payload for r in synthetic(4, 8_000, bad_rate=0.02, regime="volatile")]
    fc = FeatureConfig(sample_ms=sample_ms)
    stages: list[ModelStage] = []
    oracle(payloads, fc, model, label, WINDOW, stages)
    *_, engine = engine_run(payloads, fc, model, label, evaluation=WINDOW)
    instruments = list(engine.symbols.names)
    assert_same_metrics(engine, stages[0], instruments)
    figures = [engine.model.metrics(i) for i in instruments]
    (version,) = figures[0]
    n = sum(f[version]["n"] for f in figures)
    window_n = sum(f[version]["window_n"] for f in figures)
    assert 0 < window_n < n  # labels scored, and some have left the window
    assert n == sum(f[version]["n_trained"] for f in figures)  # each label learned was scored


def test_real_es_trades_metrics_equal_the_model_stage() -> None:
    if not ES_TRADES.exists():
        pytest.skip(f"real ES trades not found at {ES_TRADES}")
    rows = read_csv(ES_TRADES, ColumnMap(symbol="ES", tz="America/Chicago"))
    payloads = [r.payload for r in islice(rows, 15_000)]
    fc = FeatureConfig()
    for model, label in (CLASSIFY, REGRESS):
        stages: list[ModelStage] = []
        oracle(payloads, fc, model, label, WINDOW, stages)
        *_, engine = engine_run(payloads, fc, model, label, evaluation=WINDOW)
        assert_same_metrics(engine, stages[0], ["ES"])
        (figures,) = engine.model.metrics("ES").values()
        assert figures["n"] > 1_000
        assert 0 < figures["window_n"] < figures["n"]


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(0, len(PAYLOADS)), max_size=12), regress=st.booleans())
def test_any_split_gives_the_same_metrics_and_state(cuts: list[int], regress: bool) -> None:
    fc, short = FeatureConfig(), EvaluationConfig(window_s=3.0)
    config = REGRESS if regress else CLASSIFY
    *_, whole = engine_run(PAYLOADS, fc, *config, evaluation=short)
    *_, split = engine_run(PAYLOADS, fc, *config, cuts=[*cuts, 1], evaluation=short)
    assert whole.model.w_ts.shape[1] > START_CAPACITY  # the window rings had to grow
    assert whole.model.w_len.sum() < whole.model.pq_counts[:, 0].sum()  # labels left them
    for name in whole.symbols.names:
        assert split.model.metrics(name) == whole.model.metrics(name)
    for a, b in zip(split.model.state_arrays(), whole.model.state_arrays(), strict=True):
        assert a.tobytes() == b.tobytes()


# the kernel's scoring of one label against river's metrics, on hypothesis-made labels
P = st.one_of(
    st.sampled_from([0.0, 1.0, 0.5, 1e-17, 1 - 1e-16, 0.25]), st.floats(0.0, 1.0, width=64)
)
FORECAST = st.floats(-1e6, 1e6, allow_nan=False)
GAP = st.one_of(st.sampled_from([0, 1, S // 2, S, 2 * S]), st.integers(0, 3 * S))  # edges too


def kernel_report(regression: bool, labels, window_ns: int) -> dict:
    """``Prequential.report`` as ``score_label`` and ``prequential.overall``/``window`` give it."""
    counts, means = np.zeros((1, N_COUNTS), np.int64), np.zeros((1, 4))
    cap = max(len(labels), 1)
    w_ts, w_y, w_pred = np.zeros((1, cap), np.int64), np.zeros((1, cap)), np.zeros((1, cap))
    head, length = np.zeros(1, np.int64), np.zeros(1, np.int64)
    for ts, y, p in labels:
        score_label(counts, means, w_ts, w_y, w_pred, head, length, 0, ts, float(y), p,
                    regression, window_ns, 2.0)  # fmt: skip
    order = (head[0] + np.arange(length[0])) % cap
    return {
        "n": int(counts[0, prequential.N]),
        "overall": prequential.overall(regression, counts[0], means[0]),
        "window_n": int(length[0]),
        "window": prequential.window(regression, w_y[0, order], w_pred[0, order]),
    }


@settings(max_examples=200, deadline=None)
@given(
    regression=st.booleans(),
    steps=st.lists(st.tuples(GAP, st.booleans(), P, FORECAST), max_size=40),
    window_s=st.sampled_from([1e-9, 0.5, 2.0, 1e3]),
)
def test_score_label_is_river_arithmetic(regression, steps, window_s) -> None:
    ts, labels, reference = (
        0,
        [],
        Prequential("regression" if regression else "classification", window_s),
    )
    for gap, up, p, forecast in steps:
        ts += gap
        y = forecast / 3.0 if regression else float(up)
        prediction = forecast if regression else p
        labels.append((ts, y, prediction))
        reference.update(
            ts, y if regression else up, prediction if regression else {False: 1.0 - p, True: p}
        )
    got = kernel_report(regression, labels, int(window_s * 1e9))
    assert got == reference.report()


def _rmse(errors: list[float], square) -> float:
    n = mean = 0.0
    for d in errors:
        n += 1.0
        mean += (1.0 / n) * (square(d) - mean)
    return mean**0.5


def test_squared_errors_are_pythons_pow_not_a_product() -> None:
    """libm's ``pow(d, 2)``, which ``d ** 2`` calls, and ``d * d`` differ on about one value
    in 1,200: on errors where the RMSE tells them apart, the kernel's is river's."""
    rng, telling = np.random.default_rng(7), []
    while len(telling) < 5:
        errors = [float(d) for d in rng.standard_normal(3) * 37.0]
        if _rmse(errors, lambda d: d**2) != _rmse(errors, lambda d: d * d):
            telling.append(errors)
    for errors in telling:
        labels = [(i * S, d, 0.0) for i, d in enumerate(errors)]
        reference = Prequential("regression", 1e6)
        for ts, y, p in labels:
            reference.update(ts, y, p)
        assert kernel_report(True, labels, 10**15) == reference.report()
