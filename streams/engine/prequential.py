"""Prequential figures of the compiled learner, kept inside the model kernel.

The kernel scores each matured label it learns against the prediction made when the label's
tick was scored, exactly as ``Prequential.update`` does, with river's arithmetic in river's
order so the figures are the same floats:

* classification: the confusion counts behind ``Accuracy``, ``Precision``, ``Recall`` and
  ``F1`` (river keeps them as sums of 1.0, which integers hold exactly) and ``LogLoss``'s
  running mean (the probability clamped to ``[1e-15, 1 - 1e-15]``, then ``stats.Mean``'s
  ``n += 1; mean += (1 / n) * (loss - mean)``);
* regression: the running means of ``MAE`` and ``MSE`` (``RMSE`` is the latter's root).

State per instrument, row ``k`` of each array:

* ``counts`` int64 ``(K, N_COUNTS)``: the columns ``N`` (labels scored), ``CORRECT``,
  ``SAID_UP`` (predicted up), ``WENT_UP`` (went up) and ``BOTH_UP``;
* ``means`` float64 ``(K, 4)``: ``stats.Mean``'s ``(n, mean)`` of the first figure
  (``LogLoss`` or ``MAE``) in columns 0 and 1, of ``MSE`` in columns 2 and 3;
* the rolling window, a ring of the scored labels ``(ts, y, prediction)`` with ``head`` and
  ``length``, whose figures ``window`` computes from fresh sums of its labels in order, the
  same arithmetic river's fresh metrics do over them (held to river by an oracle test).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from numba import njit

from tickwise.streams.operators.models.evaluation import CLASSIFIER_METRICS, REGRESSOR_METRICS
from tickwise.streams.operators.models.linear_kernel import _libm_pow

N, CORRECT, SAID_UP, WENT_UP, BOTH_UP = range(5)
N_COUNTS = 5
P_MIN = 1e-15
P_MAX = 1 - 1e-15  # river's clamp bounds, as Python folds them


@njit(cache=True)
def _mean_add(means, k, col, x) -> None:  # pragma: no cover - compiled
    """``stats.Mean.update(x)`` on the (n, mean) pair at ``means[k, col:col + 2]``."""
    means[k, col] += 1.0
    means[k, col + 1] += (1.0 / means[k, col]) * (x - means[k, col + 1])


@njit(cache=True)
def _score(counts, means, k, y, prediction, regression, two) -> None:  # pragma: no cover
    """One label's move of the figures' sums on row ``k`` (see ``score_label``)."""
    counts[k, N] += 1
    if regression:
        d = y - prediction
        _mean_add(means, k, 0, abs(d))
        _mean_add(means, k, 2, _libm_pow(d, two))
    else:
        said_up = prediction > 1.0 - prediction  # max({False: 1 - p, True: p}, key=get)
        went_up = y == 1.0
        counts[k, CORRECT] += said_up == went_up
        counts[k, SAID_UP] += said_up
        counts[k, WENT_UP] += went_up
        counts[k, BOTH_UP] += said_up and went_up
        p = P_MAX if prediction > P_MAX else prediction  # Python's min, then max: NaN stays
        p = P_MIN if p < P_MIN else p
        _mean_add(means, k, 0, -math.log(p) if went_up else -math.log(1 - p))


@njit(cache=True)
def score_label(
    counts, means, w_ts, w_y, w_pred, w_head, w_len,
    k, ts, y, prediction, regression, window_ns, two,
):  # pragma: no cover - compiled  # fmt: skip
    """``Prequential.update(ts, y, prediction)`` on instrument ``k``: the overall figures move
    and the label joins the window, whose labels at or before ``ts - window_ns`` leave it.

    ``y`` is 1.0 (up) or 0.0 and ``prediction`` P(up) for classification. ``two`` is 2.0,
    passed in as data: ``MSE`` squares by Python's ``d ** 2``, libm's ``pow``, which rounds
    differently from ``d * d`` about once in 1,200 values, and LLVM rewrites ``pow(d, 2.0)``
    into ``d * d`` when it sees the constant. The window ring must have room for one more.
    """
    _score(counts, means, k, y, prediction, regression, two)
    cap = w_ts.shape[1]
    tail = (w_head[k] + w_len[k]) % cap
    w_ts[k, tail] = ts
    w_y[k, tail] = y
    w_pred[k, tail] = prediction
    w_len[k] += 1
    cutoff = ts - window_ns
    while w_len[k] > 0 and w_ts[k, w_head[k]] <= cutoff:
        w_head[k] = (w_head[k] + 1) % cap
        w_len[k] -= 1


def _ratio(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        return 0.0


def overall(regression: bool, counts: np.ndarray, means: np.ndarray) -> dict[str, float]:
    """The overall figures of one instrument (its rows of ``counts`` and ``means``), as each
    river metric's ``get`` computes them from the same sums."""
    if regression:
        mae, mse = float(means[1]), float(means[3])
        return dict(zip(REGRESSOR_METRICS, (mae, mse**0.5), strict=True))
    n, correct, said_up, went_up, both_up = (float(c) for c in counts)
    precision = _ratio(both_up, both_up + (said_up - both_up))
    recall = _ratio(both_up, both_up + (went_up - both_up))
    b2 = 1.0**2
    f1 = _ratio((1 + b2) * precision * recall, b2 * precision + recall)
    values = (_ratio(correct, n), precision, recall, f1, float(means[1]))
    return dict(zip(CLASSIFIER_METRICS, values, strict=True))


@njit(cache=True)
def _score_all(counts, means, ys, predictions, regression, two) -> None:  # pragma: no cover
    """Every label of ``ys`` and ``predictions`` in order into row 0's sums."""
    for i in range(ys.shape[0]):
        _score(counts, means, 0, ys[i], predictions[i], regression, two)


def window(regression: bool, ys: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """The window's figures, from its labels in order: fresh sums, as fresh river metrics."""
    counts, means = np.zeros((1, N_COUNTS), np.int64), np.zeros((1, 4))
    ys, predictions = (np.ascontiguousarray(a, np.float64) for a in (ys, predictions))
    _score_all(counts, means, ys, predictions, bool(regression), 2.0)
    return overall(regression, counts[0], means[0])


class CarriedPrequential:
    """``Prequential`` for one compiled version of one instrument, carried on from the model
    kernel's sums when the engine hands the stage to ``streams.engine.staged.StagedModel``:
    the kernel's arithmetic is river's, so the figures go on as river's would have.

    Takes what ``Prequential.update`` takes: a label's target (bool or bps) and the
    prediction kept with it (the compiled classifier's ``{False: 1 - p, True: p}``, or the
    forecast)."""

    def __init__(
        self,
        regression: bool,
        window_ns: int,
        counts: np.ndarray,
        means: np.ndarray,
        window: list[tuple[int, float, float]],
    ) -> None:
        self.regression = regression
        self.window_ns = window_ns
        self.counts = counts.reshape(1, N_COUNTS).astype(np.int64)
        self.means = means.reshape(1, 4).astype(np.float64)
        self.window = deque(window)

    @property
    def n(self) -> int:
        return int(self.counts[0, N])

    def update(self, ts_ns: int, y: Any, prediction: Any) -> None:
        """Score one matured label, as ``Prequential.update`` does."""
        target = float(y) if self.regression else (1.0 if y else 0.0)
        p = float(prediction) if self.regression else float(prediction[True])
        _score(self.counts, self.means, 0, target, p, self.regression, 2.0)
        self.window.append((ts_ns, target, p))
        cutoff = ts_ns - self.window_ns
        while self.window and self.window[0][0] <= cutoff:
            self.window.popleft()

    def report(self) -> dict[str, Any]:
        """What ``Prequential.report`` gives."""
        ys = np.array([y for _, y, _ in self.window], np.float64)
        predictions = np.array([p for _, _, p in self.window], np.float64)
        return {
            "n": self.n,
            "overall": overall(self.regression, self.counts[0], self.means[0]),
            "window_n": len(self.window),
            "window": window(self.regression, ys, predictions),
        }
