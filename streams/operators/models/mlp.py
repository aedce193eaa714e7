"""A small online multi-layer perceptron with river's ``learn_one``/``predict_one`` protocol.

river 0.26 no longer ships ``river.neural_net`` and its successor (deep-river) needs PyTorch,
a dependency two orders of magnitude larger than tickwise. One hidden tanh layer trained by
plain SGD, one row at a time, is all a per-tick model can afford anyway, so it lives here in
~100 lines of numpy. Weights are seeded, so live and replay start from the same network.
"""

from __future__ import annotations

import math
import random

import numpy as np
from river import base

GRAD_CLIP = 5.0


class _Net:
    """One hidden tanh layer; inputs are taken in the order features are first seen."""

    def __init__(self, hidden: int, learning_rate: float, seed: int) -> None:
        self.hidden = hidden
        self.learning_rate = learning_rate
        self.rng = random.Random(seed)
        self.names: list[str] = []
        self.w1 = np.zeros((0, hidden))
        self.b1 = np.zeros(hidden)
        self.w2 = np.array([self.rng.gauss(0.0, 1.0 / math.sqrt(hidden)) for _ in range(hidden)])
        self.b2 = 0.0

    def _vector(self, x: dict[str, float], grow: bool) -> np.ndarray:
        if grow:
            for name in x:
                if name not in self.names:
                    self.names.append(name)
                    row = [self.rng.gauss(0.0, 1.0 / math.sqrt(len(x))) for _ in range(self.hidden)]
                    self.w1 = np.vstack([self.w1, np.array(row)])
        return np.array([float(x.get(name, 0.0)) for name in self.names])

    def forward(self, x: dict[str, float]) -> float:
        v = self._vector(x, grow=False)
        h = np.tanh(v @ self.w1 + self.b1)
        return float(h @ self.w2 + self.b2)

    def step(self, x: dict[str, float], grad_out: float) -> None:
        """Back-propagate d(loss)/d(output) = ``grad_out`` and take one SGD step."""
        v = self._vector(x, grow=True)
        h = np.tanh(v @ self.w1 + self.b1)
        g = max(-GRAD_CLIP, min(GRAD_CLIP, grad_out))
        g_hidden = g * self.w2 * (1.0 - h * h)
        lr = self.learning_rate
        self.w2 -= lr * g * h
        self.b2 -= lr * g
        self.w1 -= lr * np.outer(v, g_hidden)
        self.b1 -= lr * g_hidden


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


class MLPClassifier(base.Classifier):
    """Binary MLP classifier (log loss).

    Examples
    --------
    >>> m = MLPClassifier(hidden=4, learning_rate=0.1, seed=1)
    >>> for _ in range(200):
    ...     m.learn_one({"a": 1.0}, True); m.learn_one({"a": -1.0}, False)
    >>> m.predict_one({"a": 1.0}), m.predict_one({"a": -1.0})
    (True, False)
    """

    def __init__(self, hidden: int = 16, learning_rate: float = 0.01, seed: int = 7) -> None:
        self.hidden = hidden
        self.learning_rate = learning_rate
        self.seed = seed
        self._net = _Net(hidden, learning_rate, seed)

    def learn_one(self, x: dict, y: bool) -> None:
        self._net._vector(x, grow=True)
        p = _sigmoid(self._net.forward(x))
        self._net.step(x, p - float(bool(y)))

    def predict_proba_one(self, x: dict) -> dict[bool, float]:
        p = _sigmoid(self._net.forward(x))
        return {False: 1.0 - p, True: p}


class MLPRegressor(base.Regressor):
    """MLP regressor (squared loss).

    Examples
    --------
    >>> m = MLPRegressor(hidden=4, learning_rate=0.05, seed=1)
    >>> for _ in range(300):
    ...     m.learn_one({"a": 1.0}, 2.0); m.learn_one({"a": -1.0}, -2.0)
    >>> round(m.predict_one({"a": 1.0}))
    2
    """

    def __init__(self, hidden: int = 16, learning_rate: float = 0.01, seed: int = 7) -> None:
        self.hidden = hidden
        self.learning_rate = learning_rate
        self.seed = seed
        self._net = _Net(hidden, learning_rate, seed)

    def learn_one(self, x: dict, y: float) -> None:
        self._net._vector(x, grow=True)
        self._net.step(x, self._net.forward(x) - float(y))

    def predict_one(self, x: dict) -> float:
        return self._net.forward(x)
