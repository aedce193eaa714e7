"""Our ADWIN gives river's answers bit for bit: river's ``drift.ADWIN`` is the oracle, fed the
same random streams (0/1 errors, block means, level shifts) under random parameters."""

from __future__ import annotations

import pickle
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from river import drift

from tickwise.streams.operators.adwin import Adwin


def _state(a: drift.ADWIN | Adwin) -> tuple[object, ...]:
    return (a.drift_detected, a.width, a.total, a.variance, a.estimation, a.n_detections)


def _stream(seed: int, n: int, kind: str) -> list[float]:
    """Inputs with changes in them: the monitor's 0/1 errors and block means, and a signal
    whose level shifts."""
    rng = random.Random(seed)
    out: list[float] = []
    level = rng.random()
    while len(out) < n:
        run = rng.randint(5, 400)
        if kind == "errors":
            out += [float(rng.random() < level) for _ in range(run)]
        elif kind == "means":
            out += [sum(rng.random() < level for _ in range(7)) / 7 for _ in range(run)]
        else:
            out += [rng.gauss(10 * level, 1 + level) for _ in range(run)]
        level = rng.random()
    return out[:n]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    n=st.integers(0, 3_000),
    kind=st.sampled_from(["errors", "means", "levels"]),
    delta=st.sampled_from([0.002, 0.05, 0.3, 1e-5]),
    clock=st.sampled_from([1, 2, 32]),
    max_buckets=st.integers(2, 6),
    min_window_length=st.integers(1, 12),
    grace_period=st.integers(0, 40),
)
def test_adwin_equals_rivers(
    seed: int,
    n: int,
    kind: str,
    delta: float,
    clock: int,
    max_buckets: int,
    min_window_length: int,
    grace_period: int,
) -> None:
    params = {
        "delta": delta,
        "clock": clock,
        "max_buckets": max_buckets,
        "min_window_length": min_window_length,
        "grace_period": grace_period,
    }
    theirs, ours = drift.ADWIN(**params), Adwin(**params)
    assert _state(ours) == _state(theirs)
    for x in _stream(seed, n, kind):
        theirs.update(x)
        assert ours.update(x) == theirs.drift_detected
        assert _state(ours) == _state(theirs)


def test_adwin_detects_rivers_changes_and_pickles_midway() -> None:
    """The monitor's setting (clock=1): detections happen, at river's inputs, and a window
    pickled halfway (a checkpoint) goes on as the one that was not."""
    xs = _stream(7, 20_000, "errors")
    theirs = drift.ADWIN(clock=1, grace_period=5)
    ours = Adwin(clock=1, grace_period=5)
    detected = []
    for j, x in enumerate(xs):
        if j == len(xs) // 2:
            ours = pickle.loads(pickle.dumps(ours))
        theirs.update(x)
        if ours.update(x):
            detected.append(j)
        assert _state(ours) == _state(theirs)
    assert len(detected) > 10
