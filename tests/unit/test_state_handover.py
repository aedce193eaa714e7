"""A partition moving to another worker: exported state lets the new owner decide identically."""

from __future__ import annotations

import pickle

import pytest

from tests.oracle.pipeline import Pipeline
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import SourceRef
from tickwise.streams.config import load_config
from tickwise.streams.sources import synthetic


def run(pipeline: Pipeline, records: list) -> list[bytes]:
    out = []
    for rec in records:
        verdict = pipeline.validate(
            rec.payload, SourceRef(topic="t", partition=0, offset=rec.index)
        )
        if isinstance(verdict, QuarantineRecord):
            continue
        decided = pipeline.decide(verdict)
        if decided.decision is not None:
            out.append(decided.decision.to_bytes())
    return out


@pytest.mark.parametrize("sample_ms", [0.0, 150.0])
def test_pickled_state_continues_exactly_like_an_uninterrupted_run(sample_ms: float) -> None:
    config = load_config(features={"sample_ms": sample_ms})
    records = list(synthetic(seed=5, count=4000))
    cut = 2500
    whole = run(Pipeline(config), records)

    first = Pipeline(config)
    before = run(first, records[:cut])
    instruments = {r.key for r in records}
    decide_state = pickle.dumps({i: first.export_state(i) for i in instruments})
    validator_state = pickle.dumps({i: first.validator.export_state(i) for i in instruments})

    second = Pipeline(config)
    for instrument, state in pickle.loads(decide_state).items():
        second.import_state(instrument, state)
    for instrument, state in pickle.loads(validator_state).items():
        second.validator.import_state(instrument, state)
    after = run(second, records[cut:])

    assert len(before) > 0 and len(after) > 0
    assert before + after == whole


def test_a_fresh_pipeline_without_the_state_decides_differently() -> None:
    """The control for the test above: without handover the continuation is not the same."""
    config = load_config()
    records = list(synthetic(seed=5, count=4000))
    whole = run(Pipeline(config), records)
    before = run(Pipeline(config), records[:2500])
    assert before + run(Pipeline(config), records[2500:]) != whole


def test_a_new_config_keeps_the_state_it_carries_over() -> None:
    """A worker restarted with a changed config rebuilds under the old one, then switches."""
    old = Pipeline(load_config())
    records = list(synthetic(seed=5, count=1500))
    run(old, records)
    new_config = load_config().model_copy(update={"app_id": "changed"})
    new = old.reconfigured(new_config)
    assert new is not old and new.config == new_config
    assert old.reconfigured(old.config) is old
    # the dedup state came along: the last good tick again is a duplicate under the new config
    last = next(r for r in reversed(records) if r.injected is None)
    (verdict,) = new.screen(last.payload, SourceRef(topic="t", partition=0, offset=10**6))
    assert isinstance(verdict, QuarantineRecord) and verdict.reason.value == "DUPLICATE"
    for instrument in {r.key for r in records}:
        assert new.export_state(instrument).keys() == old.export_state(instrument).keys()
