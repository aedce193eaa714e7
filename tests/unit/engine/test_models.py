"""The engine's model stage against ``ModelStage`` tick by tick (the oracle), and batch
invariance of its scores and state."""

from __future__ import annotations

from itertools import islice, pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stubs import ES_TRADES

from tickwise.schemas.ticks import CleanTick, SourceRef
from tickwise.streams.config import FeatureConfig, LabelConfig, ModelConfig, ValidationConfig
from tickwise.streams.engine.batch import SymbolTable, decode
from tickwise.streams.engine.features import BatchFeatures
from tickwise.streams.engine.models import START_CAPACITY, BatchModel
from tickwise.streams.engine.validate import BatchValidator
from tickwise.streams.operators.features.engine import FeatureEngine
from tickwise.streams.operators.models import ModelStage
from tickwise.streams.operators.validation import Validator
from tickwise.streams.sources import ColumnMap, read_csv, synthetic

CLASSIFY = (ModelConfig(warmup_labels=0), LabelConfig(horizon_s=2.0, dead_zone_bps=0.5))
REGRESS = (
    ModelConfig(kind="linear", warmup_labels=0, l2=0.01),
    LabelConfig(horizon_s=1.5, task="regression"),
)


def oracle(payloads: list[bytes], fc: FeatureConfig, model: ModelConfig, label: LabelConfig):
    """Scores and labels learned per decision, as the per-tick pipeline computes them."""
    validator, features, stage = (
        Validator(ValidationConfig()),
        FeatureEngine(fc),
        ModelStage(model, label),
    )
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
    return np.array(scores), np.array(trained)


class Engine:
    def __init__(self, fc: FeatureConfig, model: ModelConfig, label: LabelConfig) -> None:
        self.symbols = SymbolTable()
        self.validator = BatchValidator(ValidationConfig(), self.symbols)
        self.features = BatchFeatures(fc, self.symbols)
        self.model = BatchModel(model, label, fc.feature_set, self.symbols)

    def run(self, payloads: list[bytes], start: int) -> tuple[np.ndarray, np.ndarray]:
        offsets = np.arange(start, start + len(payloads))
        batch = decode(payloads, self.symbols, "ticks.raw", 0, offsets, 16_384)
        verdict, _ = self.validator.run(batch)
        clean = verdict == 0
        emit, vectors = self.features.run(batch, clean)
        out = self.model.run(batch, clean, emit, vectors)
        return out.score, out.n_trained


def engine_run(payloads, fc, model, label, cuts=()):
    engine = Engine(fc, model, label)
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
