"""Our ADWIN gives river's answers bit for bit: river's ``drift.ADWIN`` is the oracle, fed the
same random streams (0/1 errors, block means, level shifts) under random parameters."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import drift

from tickwise.streams.operators.adwin import Adwin, adwin_arrays, adwin_feed_many, feed_adwin


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


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    n_windows=st.integers(1, 5),
    n=st.integers(0, 2_000),
    min_increase=st.sampled_from([0.0, 0.05, 0.2]),
    grace_period=st.integers(0, 20),
)
def test_stacked_windows_fed_at_once_answer_as_windows_fed_one_by_one(
    seed: int, n_windows: int, n: int, min_increase: float, grace_period: int
) -> None:
    """``adwin_feed_many`` over stacked windows gives what ``feed_adwin`` gives each window
    fed its inputs one at a time, and stops after the first alarm; fed again from there, it
    goes on as the single windows do."""
    rng = random.Random(seed)
    xs = _stream(seed, n, "means")
    windows = [rng.randrange(n_windows) for _ in xs]
    params = {"clock": 1, "grace_period": grace_period}
    singles = [Adwin(**params) for _ in range(n_windows)]
    want = [feed_adwin(singles[w], x, min_increase) for w, x in zip(windows, xs, strict=True)]
    stack = adwin_arrays(n_windows, **params)
    got: list[tuple[bool, float, float]] = []
    alarms = 0
    while len(got) < len(xs):
        start = len(got)
        rest = len(xs) - start
        fire, old, now = np.full(rest, np.nan), np.full(rest, np.nan), np.full(rest, np.nan)
        stop = adwin_feed_many(
            np.array(windows[start:], np.int64), np.array(xs[start:]), *stack, min_increase,
            fire, old, now,
        )  # fmt: skip
        fed = rest if stop < 0 else stop + 1
        assert not np.isnan(fire[:fed]).any() and np.isnan(fire[fed:]).all()
        assert stop < 0 or fire[stop] == 1.0
        got += [(f == 1.0, o, e) for f, o, e in zip(fire[:fed], old[:fed], now[:fed], strict=True)]
        alarms += stop >= 0
    assert got == want
    assert alarms == sum(fire for fire, _, _ in want)
    for p, single in enumerate(singles):
        assert _state(Adwin.of(stack, p)) == _state(single)


def test_the_drift_rule_alarms_on_a_rise_only() -> None:
    """A change that lowers the error rate is detected but raises no alarm; a rise does, and
    reports the rate of the inputs cut (all before the change) and the window's rate now."""
    for start, end, alarms in ((0.9, 0.1, False), (0.1, 0.9, True)):
        adwin, detected, fired = Adwin(clock=1), 0, []
        for x in [start] * 60 + [end] * 60:
            answer = feed_adwin(adwin, x, 0.05)
            detected += adwin.drift_detected
            fired += [answer] if answer[0] else []
        assert detected > 0
        assert bool(fired) == alarms
        for _, old, now in fired:
            assert old == pytest.approx(start) and old + 0.05 <= now <= end
