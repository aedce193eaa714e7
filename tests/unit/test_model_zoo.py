"""Every zoo model passes the same contract: it learns, scores, explains, pickles, repeats."""

from __future__ import annotations

import math
import pickle

import pytest

from tests.oracle.pipeline import Pipeline
from tickwise.schemas.decisions import Signal
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import SourceRef
from tickwise.streams.config import LabelConfig, ModelConfig, TickwiseConfig
from tickwise.streams.operators.models import build_estimator
from tickwise.streams.operators.models.zoo import ZOO
from tickwise.streams.sources import synthetic


def config(task: str, kind: str) -> TickwiseConfig:
    return TickwiseConfig(
        model=ModelConfig(kind=kind, warmup_labels=20, grace_period=30, n_models=2),
        label=LabelConfig(horizon_s=0.3, task=task),
    )


def run(pipeline: Pipeline, records: list) -> list[bytes]:
    """Every signal and decision, as topic bytes, in order."""
    out = []
    for rec in records:
        verdict = pipeline.validate(
            rec.payload, SourceRef(topic="t", partition=0, offset=rec.index)
        )
        if isinstance(verdict, QuarantineRecord):
            continue
        decided = pipeline.decide(verdict)
        assert decided.error is None, decided.error
        out.extend(s.to_bytes() for s in decided.signals)
        if decided.decision is not None:
            out.append(decided.decision.to_bytes())
    return out


def signals_of(lines: list[bytes]) -> list[Signal]:
    return [
        Signal.model_validate_json(b)
        for b in lines
        if b.startswith(b'{"schema_version":1,"signal_id"')
    ]


@pytest.fixture(scope="module")
def records() -> list:
    return list(synthetic(seed=21, count=600, instruments=["ES", "CL"]))


@pytest.mark.parametrize(("task", "kind"), ZOO)
def test_zoo_model_learns_scores_explains_and_moves_between_workers(
    task: str, kind: str, records: list
) -> None:
    cfg = config(task, kind)
    whole_pipeline = Pipeline(cfg)
    whole = run(whole_pipeline, records)
    assert whole, "the model must warm up and signal on this stream"
    assert run(Pipeline(cfg), records) == whole, "two runs must be bit-identical"

    report = whole_pipeline.model.metrics("ES")["logreg:v1"]
    assert report["n_trained"] > 20 and report["n"] > 0
    assert all(math.isfinite(v) for v in report["overall"].values())

    # explanations: at most top_k, finite, naming real features
    sigs = signals_of(whole)
    assert sigs and all(s.task == task for s in sigs)
    names = set(whole_pipeline.features.names)
    for s in sigs[-50:]:
        assert len(s.explanation) <= cfg.model.top_k_explain
        assert all(c.feature in names and math.isfinite(c.contribution) for c in s.explanation)
    assert any(s.explanation for s in sigs)

    # the whole decide state pickles and continues exactly on another pipeline
    cut = len(records) // 2
    first = Pipeline(cfg)
    head = run(first, records[:cut])
    blob = pickle.dumps({i: first.export_state(i) for i in ("ES", "CL")})
    vblob = pickle.dumps({i: first.validator.export_state(i) for i in ("ES", "CL")})
    second = Pipeline(cfg)
    for i, state in pickle.loads(blob).items():
        second.import_state(i, state)
    for i, state in pickle.loads(vblob).items():
        second.validator.import_state(i, state)
    assert head + run(second, records[cut:]) == whole


def test_kinds_that_cannot_do_a_task_fail_at_start_up() -> None:
    with pytest.raises(ValueError, match="does not do regression"):
        Pipeline(config("regression", "logistic"))
    with pytest.raises(ValueError, match="does not do classification"):
        build_estimator(ModelConfig(kind="linear"), "classification")


def test_tree_explanations_follow_the_decision_path(records: list) -> None:
    sigs = signals_of(run(Pipeline(config("classification", "hoeffding_tree")), records))
    with_path = [c for s in sigs for c in s.explanation if c.detail]
    assert with_path, "after splits, explanations name the splits on the path"
    assert all(("<=" in c.detail or ">" in c.detail) and c.feature in c.detail for c in with_path)
