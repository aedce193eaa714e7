"""river-protocol estimators over the compiled linear kernels: the zoo's default linear models.

``CompiledLogisticRegression`` equals ``StandardScaler() | LogisticRegression(SGD(lr), l2=l2)``
and ``CompiledLinearRegression`` equals ``StandardScaler() | LinearRegression(SGD(lr), l2=l2)``
(with ``z_clip``: a clip of the standardised inputs in between, as the zoo's ``clip_z``). They
speak river's ``learn_one``/``predict_one`` over dicts, so the model stage, the explanation and
``river.evaluate`` use them as they use river's; the maths lives in ``linear_kernel``. Feature
names get a column the first time they appear; a key missing from a dict is absent, as in river.

Examples
--------
>>> from river import linear_model, optim, preprocessing
>>> theirs = preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.1))
>>> ours = CompiledLogisticRegression(learning_rate=0.1)
>>> ours.predict_proba_one({"x": 1.0})
{False: 0.5, True: 0.5}
>>> for v, y in [(1.0, True), (-1.0, False), (2.0, True)]:
...     ours.learn_one({"x": v}, y)
...     theirs.learn_one({"x": v}, y)
>>> ours.predict_proba_one({"x": 1.5}) == theirs.predict_proba_one({"x": 1.5})
True
>>> ours.weights == theirs["LogisticRegression"].weights
True
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from river import base

from tickwise.streams.operators.models.linear_kernel import (
    LOG,
    SQUARED,
    LinearState,
    learn_one,
    new_state,
    predict_one,
    transform_one,
    widen,
)


class CompiledLinear:
    """Feature names to columns, dicts to rows, and one model's state (row 0 of the arrays)."""

    _loss: float
    # the zoo's mark: scores raw inputs (no river scaler in front), explains via transform_one
    standardises_inside: ClassVar[bool] = True

    def __init__(
        self,
        learning_rate: float = 0.01,
        l2: float = 0.0,
        intercept_lr: float = 0.01,
        intercept_init: float = 0.0,
        clip_gradient: float = 1e12,
        z_clip: float = math.inf,
    ) -> None:
        self.learning_rate = learning_rate
        self.l2 = l2
        self.intercept_lr = intercept_lr
        self.intercept_init = intercept_init
        self.clip_gradient = clip_gradient
        self.z_clip = z_clip
        self._names: tuple[str, ...] = ()
        self._index: dict[str, int] = {}
        self._state = new_state(
            1,
            0,
            self._loss,
            learning_rate=learning_rate,
            l2=l2,
            intercept_lr=intercept_lr,
            intercept_init=intercept_init,
            clip_gradient=clip_gradient,
            z_clip=z_clip,
        )

    @property
    def state(self) -> LinearState:
        """The kernel's arrays (one model row); columns follow ``names``."""
        return self._state

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names in column order (the order they first appeared)."""
        return self._names

    @property
    def weights(self) -> dict[str, float]:
        """The weight of every feature learned so far (river's ``weights``)."""
        w = self._state.weights[0].tolist()
        seen = self._state.counts[0].tolist()
        return {n: w[j] for j, n in enumerate(self._names) if seen[j]}

    @property
    def intercept(self) -> float:
        return float(self._state.intercept[0])

    def _row(self, x: dict[str, float]) -> np.ndarray:
        """``x`` as a row over ``names`` (NaN where absent), adding columns for new names."""
        names = self._names
        if len(x) == len(names) and tuple(x) == names:
            return np.fromiter(x.values(), np.float64, len(names))
        new = [k for k in x if k not in self._index]
        if new:
            for k in new:
                self._index[k] = len(self._index)
            self._names = (*names, *new)
            self._state = widen(self._state, len(self._names))
        row = np.full(len(self._names), np.nan)
        for k, v in x.items():
            row[self._index[k]] = v
        return row

    def _score(self, x: dict[str, float]) -> float:
        row = self._row(x)  # first: it may widen the state
        s = self._state
        return predict_one(s.hyper, s.weights, s.intercept, s.means, s.variances, 0, row)

    def learn_one(self, x: dict[str, float], y: float) -> None:
        """Learn ``(x, y)``: the scaler first, then one SGD step on the scaled inputs."""
        row = self._row(x)  # first: it may widen the state
        s = self._state
        learn_one(s.hyper, s.weights, s.intercept, s.counts, s.means, s.variances, 0, row, float(y))

    def terms(self, x: dict[str, float]) -> list[tuple[float, str, float]]:
        """(weight x standardised input, feature, weight) for each feature of ``x``, in ``x``'s
        order: what ``explain_linear`` ranks, from the arrays at once rather than through the
        ``weights`` and ``transform_one`` dicts (the same products: a feature never learned
        weighs 0.0)."""
        row = self._row(x)
        s = self._state
        z = np.empty(row.shape[0])
        transform_one(s.hyper, s.weights, s.intercept, s.means, s.variances, 0, row, z)
        w = np.where(s.counts[0] > 0, s.weights[0], 0.0)
        products, weights, index = (w * z).tolist(), w.tolist(), self._index
        return [(products[index[n]], n, weights[index[n]]) for n in x]

    def transform_one(self, x: dict[str, float]) -> dict[str, float]:
        """The standardised (and clipped) inputs the weights multiply, by feature."""
        row = self._row(x)
        s = self._state
        out = np.empty(row.shape[0])
        transform_one(s.hyper, s.weights, s.intercept, s.means, s.variances, 0, row, out)
        z = out.tolist()
        return {k: z[self._index[k]] for k in x}


class CompiledLogisticRegression(CompiledLinear, base.Classifier):
    """river's ``StandardScaler() | LogisticRegression()``, compiled; labels are booleans."""

    _loss = LOG

    def predict_proba_one(self, x: dict[str, float]) -> dict[bool, float]:
        p = self._score(x)
        return {False: 1.0 - p, True: p}


class CompiledLinearRegression(CompiledLinear, base.Regressor):
    """river's ``StandardScaler() | LinearRegression()``, compiled."""

    _loss = SQUARED

    def predict_one(self, x: dict[str, float]) -> float:
        return self._score(x)
