"""A partition moving to another worker: its pickled state lets the new owner decide identically,
on the engine a worker runs (``EngineState``, pickled whole) and on the per-tick oracle (its
operators' exported state)."""

from __future__ import annotations

import pickle

import pytest
from stubs import IMPLS, Stream, decide

from tests.oracle.pipeline import Pipeline
from tickwise.schemas.topics import DECISIONS, TICKS_QUARANTINE
from tickwise.streams.config import load_config
from tickwise.streams.sources import synthetic


def handed_over(stream: Stream, instruments: set[str]) -> Stream:
    """The stream's state as another worker takes it over: through pickled bytes."""
    state = stream.state
    if not isinstance(state, Pipeline):
        return Stream(stream.impl, state.config, pickle.loads(pickle.dumps(state)))
    decide_state = pickle.dumps({i: state.export_state(i) for i in instruments})
    validator_state = pickle.dumps({i: state.validator.export_state(i) for i in instruments})
    second = Pipeline(state.config)
    for instrument, exported in pickle.loads(decide_state).items():
        second.import_state(instrument, exported)
    for instrument, exported in pickle.loads(validator_state).items():
        second.validator.import_state(instrument, exported)
    return Stream(stream.impl, state.config, second)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("sample_ms", [0.0, 150.0])
def test_pickled_state_continues_exactly_like_an_uninterrupted_run(
    impl: str, sample_ms: float
) -> None:
    config = load_config(features={"sample_ms": sample_ms})
    records = list(synthetic(seed=5, count=4000))
    cut = 2500
    whole = decide(impl, records, config, finish=False).wire(DECISIONS.name)

    first = Stream(impl, config).feed(records[:cut])
    before = first.wire(DECISIONS.name)
    after = handed_over(first, {r.key for r in records}).feed(records[cut:]).wire(DECISIONS.name)

    assert len(before) > 0 and len(after) > 0
    assert before + after == whole


@pytest.mark.parametrize("impl", IMPLS)
def test_a_fresh_state_decides_differently(impl: str) -> None:
    """The control for the test above: without handover the continuation is not the same."""
    config = load_config()
    records = list(synthetic(seed=5, count=4000))
    whole = decide(impl, records, config, finish=False).wire(DECISIONS.name)
    before = decide(impl, records[:2500], config, finish=False).wire(DECISIONS.name)
    after = decide(impl, records[2500:], config, finish=False).wire(DECISIONS.name)
    assert before + after != whole


@pytest.mark.parametrize("impl", IMPLS)
def test_a_new_config_keeps_the_state_it_carries_over(impl: str) -> None:
    """A worker restarted with a changed config rebuilds under the old one, then switches."""
    records = list(synthetic(seed=5, count=1500))
    old = decide(impl, records, load_config(), finish=False)
    new_config = load_config().model_copy(update={"app_id": "changed"})
    state = old.state.reconfigured(new_config)
    assert state.config == new_config
    # the dedup state came along: the last good tick again is a duplicate under the new config
    last = next(r for r in reversed(records) if r.injected is None)
    again = Stream(impl, new_config, state).feed([last.payload])
    (verdict,) = again.messages(TICKS_QUARANTINE.name)
    assert verdict.reason.value == "DUPLICATE"
